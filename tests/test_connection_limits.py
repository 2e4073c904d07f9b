"""Every local server's connection limits (sentiment/uvicorn_server.py), over loopback sockets:
headers too long, clients too slow or idle, and the errors the server answers itself."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sentiment.uvicorn_server import ConnectionLimits, server_config

LIMITS = ConnectionLimits(
    max_header_bytes=2048,
    header_seconds=0.6,
    body_seconds=0.6,
    keep_alive_seconds=1,
    max_connections=8,
)
ERROR_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'",
}
# Long enough for a timeout of LIMITS to fire, short enough that a missing one fails fast.
WAIT_SECONDS = 5.0


async def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{len(await request.body())} bytes")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    app = Starlette(routes=[Route("/", _echo, methods=["GET", "POST"])])
    server = uvicorn.Server(server_config(app, "127.0.0.1", 0, LIMITS, ERROR_HEADERS))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(10)


def _connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=WAIT_SECONDS)
    return connection


def _read_until_closed(connection: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started, received = time.monotonic(), b""
    while chunk := connection.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def _status_and_headers(response: bytes) -> tuple[int, dict[str, str]]:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), {name.lower(): value for name, value in headers.items()}


def test_a_request_within_the_limits_is_served_even_when_its_body_comes_with_its_headers(port):
    body = b"x" * 100_000  # far more than the header limit, sent in the same writes
    with _connect(port) as connection:
        connection.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        response, _ = _read_until_closed(connection)
    assert _status_and_headers(response)[0] == 200
    assert response.endswith(b"100000 bytes")


def test_headers_over_the_limit_are_refused_with_431_before_they_end(port):
    with _connect(port) as connection:
        # Never finished: the server must answer without waiting for the blank line.
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 4096)
        response, seconds = _read_until_closed(connection)
    status, headers = _status_and_headers(response)
    assert status == 431
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'"
    assert seconds < LIMITS.header_seconds  # refused at once, not timed out


def test_headers_split_across_writes_count_together(port):
    with _connect(port) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(5):
            connection.sendall(b"X-Padding: " + b"a" * 500 + b"\r\n")
            time.sleep(0.01)
        response, _ = _read_until_closed(connection)
    assert _status_and_headers(response)[0] == 431


@pytest.mark.parametrize(
    "partial",
    [
        pytest.param(b"GET / HTTP/1.1\r\n", id="request line alone"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a", id="partial headers"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this", id="short body"
        ),
    ],
)
def test_an_incomplete_request_gets_408_when_its_time_is_up(port, partial: bytes):
    with _connect(port) as connection:
        connection.sendall(partial)
        response, seconds = _read_until_closed(connection)
    status, headers = _status_and_headers(response)
    assert status == 408
    assert headers["x-content-type-options"] == "nosniff"
    assert 0.4 < seconds < WAIT_SECONDS


def test_an_idle_connection_is_closed_without_an_answer(port):
    with _connect(port) as connection:
        response, seconds = _read_until_closed(connection)
    assert response == b""
    assert 0.4 < seconds < WAIT_SECONDS


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_time(port):
    with _connect(port) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response, seconds = _read_until_closed(connection)
    assert _status_and_headers(response)[0] == 200
    assert seconds < LIMITS.keep_alive_seconds + 1  # uvicorn's own default is 5 s


def test_a_malformed_request_gets_400_with_the_security_headers(port):
    with _connect(port) as connection:
        connection.sendall(b"NOT-A-METHOD\x00 / HTTP/1.1\r\nHost: x\r\n\r\n")
        response, _ = _read_until_closed(connection)
    status, headers = _status_and_headers(response)
    assert status == 400
    assert headers["content-security-policy"] == "default-src 'none'"


def test_connections_past_the_bound_get_503(port):
    idle = [_connect(port) for _ in range(LIMITS.max_connections)]
    try:
        time.sleep(0.1)
        with _connect(port) as connection:
            connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            response, _ = _read_until_closed(connection)
        assert _status_and_headers(response)[0] == 503
    finally:
        for connection in idle:
            connection.close()
