"""Running one of the local stack's servers: uvicorn on loopback, logging to stderr.

Each server runs in its own process, started by ``sentiment up`` (or by hand with
``python -m sentiment.<server> --help``). uvicorn drains open connections on SIGINT and SIGTERM;
a server whose parent process goes away (``sentiment up`` killed with SIGKILL) stops too, so no
orphan keeps a port busy.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

import uvicorn

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
# Seconds to finish in-flight requests after SIGINT/SIGTERM before closing connections.
GRACEFUL_SHUTDOWN_SECONDS = 5
_PARENT_CHECK_SECONDS = 1.0


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


def serve(app: Any, host: str, port: int) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (or the parent's death); returns after a clean stop."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    _stop_when_orphaned(server, os.getppid())
    # uvicorn re-raises SIGINT/SIGTERM once it has drained its connections, to end the process
    # the way the signal would have; with these handlers that ends it with status 0 instead, so
    # `sentiment up` can tell a clean stop from a crash.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    server.run()
