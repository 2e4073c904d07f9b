"""Running one of the local stack's servers: uvicorn on loopback, logging to stderr.

Each server runs in its own process, started by ``sentiment up`` (or by hand with
``python -m sentiment.<server> --help``). uvicorn drains open connections on SIGINT and SIGTERM;
a server whose parent process goes away (``sentiment up`` killed with SIGKILL) stops too, so no
orphan keeps a port busy.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import uvicorn
from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
# Seconds to finish in-flight requests after SIGINT/SIGTERM before closing connections.
GRACEFUL_SHUTDOWN_SECONDS = 5
_PARENT_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    """What one server accepts of a client that is slow, idle or sends too much.

    The defaults follow the deployed services: API Gateway's integrations time out at
    29 s, and a request whose line and headers exceed the service's limit is refused
    before they are read whole (431 Request Header Fields Too Large: neither API Gateway
    nor CloudFront documents a status of its own). Tests set seconds.
    """

    # The request line and headers together, in bytes.
    max_header_bytes: int = 16 * 1024
    # From a connection's or a request's first byte to the end of its headers.
    header_seconds: float = 10.0
    # From the end of the headers to the end of the body.
    body_seconds: float = 30.0
    # Idle between two requests on one connection.
    keep_alive_seconds: int = 5
    # Open connections and requests in flight together; past it, 503.
    max_connections: int = 200


_HEADERS_END = b"\r\n\r\n"


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ConnectionLimits, and security headers on the
    errors it answers itself (malformed requests, headers too long, too slow).

    uvicorn itself bounds neither the headers' size nor the time a client may take to send
    them or the body: a 50 MB header was parsed on the event loop while every other client
    waited. `guarded_protocol` makes a subclass with the limits and headers of one server.
    """

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    error_headers: ClassVar[tuple[tuple[bytes, bytes], ...]] = ()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._reading_headers = True
        self._header_bytes = 0
        self._tail = b""  # the last bytes counted, so that a split "\r\n\r\n" is found
        self._deadline: asyncio.TimerHandle | None = None
        self._expire_after(self.limits.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._expire_after(None)
        super().connection_lost(exc)

    def _expire_after(self, seconds: float | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None if seconds is None else self.loop.call_later(seconds, self._expired)

    def _expired(self) -> None:
        self._deadline = None
        if self._header_bytes == 0 and self._reading_headers:
            self.transport.close()  # an idle connection: nothing to answer
        else:
            self._refuse(HTTPStatus.REQUEST_TIMEOUT, "Request not received in time.")

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            seen = self._tail + data
            end = seen.find(_HEADERS_END)
            self._header_bytes += (
                len(data) if end < 0 else end + len(_HEADERS_END) - len(self._tail)
            )
            self._tail = seen[-(len(_HEADERS_END) - 1) :]
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    f"The request line and headers exceed {self.limits.max_header_bytes} bytes.",
                )
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._expire_after(self.limits.header_seconds)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._expire_after(self.limits.body_seconds)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # The application has the request; between requests uvicorn's keep-alive applies.
        self._expire_after(None)
        self._reading_headers, self._header_bytes, self._tail = True, 0, b""
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        self._refuse(HTTPStatus.BAD_REQUEST, msg)

    def _refuse(self, status: HTTPStatus, message: str) -> None:
        """Answer `status` with `message` as text and close the connection."""
        self._expire_after(None)
        if self.transport.is_closing():
            return
        body = message.encode("ascii")
        head = [f"HTTP/1.1 {status.value} {status.phrase}".encode("ascii")]
        head += [name + b": " + value for name, value in self.error_headers]
        head += [
            b"content-type: text/plain; charset=utf-8",
            b"content-length: " + str(len(body)).encode("ascii"),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()


def guarded_protocol(
    limits: ConnectionLimits, error_headers: Mapping[str, str] | None = None
) -> type[GuardedProtocol]:
    """A GuardedProtocol class for one server: its limits, and the headers its own errors carry."""
    encoded = tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in (error_headers or {}).items()
    )
    return type("Guarded", (GuardedProtocol,), {"limits": limits, "error_headers": encoded})


def add_limit_arguments(parser: argparse.ArgumentParser, defaults: ConnectionLimits) -> None:
    """Options that change a server's ConnectionLimits (read back by `limits_from`)."""
    group = parser.add_argument_group("connection limits")
    group.add_argument("--max-header-bytes", type=int, default=defaults.max_header_bytes)
    group.add_argument("--header-seconds", type=float, default=defaults.header_seconds)
    group.add_argument("--body-seconds", type=float, default=defaults.body_seconds)
    group.add_argument("--keep-alive-seconds", type=int, default=defaults.keep_alive_seconds)
    group.add_argument("--max-connections", type=int, default=defaults.max_connections)


def limits_from(args: argparse.Namespace) -> ConnectionLimits:
    return ConnectionLimits(
        **{name: getattr(args, name) for name in ConnectionLimits.__dataclass_fields__}
    )


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` bytes: from its
    Content-Length, or while it streams in, so that an oversize body is never held whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    # uvicorn announces every start and stop at INFO; sentiment up prints what matters.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def _stop_when_orphaned(server: uvicorn.Server, parent: int) -> None:
    def watch() -> None:
        while not server.should_exit:
            if os.getppid() != parent:
                logging.getLogger(__name__).warning("parent process %d is gone; stopping", parent)
                server.should_exit = True
                return
            threading.Event().wait(_PARENT_CHECK_SECONDS)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def server_config(
    app: Any,
    host: str,
    port: int,
    limits: ConnectionLimits = ConnectionLimits(),
    error_headers: Mapping[str, str] | None = None,
) -> uvicorn.Config:
    """uvicorn's settings for one local server: connections held to `limits`, and the errors
    the server answers itself, before the application sees a request, with `error_headers`."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits, error_headers),
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=limits.keep_alive_seconds,
        limit_concurrency=limits.max_connections,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def serve(config: uvicorn.Config) -> None:
    """Serve until SIGINT/SIGTERM (or the parent's death); returns after a clean stop.

    `config` comes from server_config.
    """
    server = uvicorn.Server(config)
    _stop_when_orphaned(server, os.getppid())
    # uvicorn re-raises SIGINT/SIGTERM once it has drained its connections, to end the process
    # the way the signal would have; with these handlers that ends it with status 0 instead, so
    # `sentiment up` can tell a clean stop from a crash.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    server.run()
