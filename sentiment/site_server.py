"""The web page on one machine: ``frontend/`` plus a generated ``config.json``.

The files are served as they are deployed to S3, with the security headers the CloudFront
distribution adds (``contract.web_page``): the same Content-Security-Policy — scripts and styles
from the page's own origin only, and no connections but to the prediction API — and the same
framing, sniffing and referrer rules. ``config.json`` names the local API, as the deployment's
generated one names API Gateway.

Paths map to files as CloudFront's S3 origin maps them to object keys: ``/`` is the default
root object, ``index.html``, and any other path is one exact key. So there is no redirect
(which would echo the request's Host header back), no directory index, and a path that only
normalizes to a file (``/index.html/``, ``/./app.js``) is not found.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract import web_page
from contract.layout import PROJECT_ROOT
from sentiment import uvicorn_server

FRONTEND_DIR = PROJECT_ROOT / "frontend"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


# CloudFront's quota on a request without its body, headers and query string included
# (Amazon CloudFront Developer Guide, Quotas: 20,480 bytes).
LIMITS = uvicorn_server.ConnectionLimits(max_header_bytes=20_480)


def security_headers(api_url: str) -> dict[str, str]:
    """The response headers policy of the deployed distribution, for a page calling ``api_url``.

    Browsers ignore HSTS over plain HTTP; it is sent anyway so that the headers match.
    """
    return {
        **web_page.security_headers(origin_of(api_url)),
        # Unlike the CDN, always revalidate: edits to frontend/ show on the next reload.
        "Cache-Control": "no-cache",
    }


DEFAULT_ROOT_OBJECT = "index.html"


def object_key(path: str) -> str | None:
    """The S3 key a request path names, or None when it can name no file here."""
    key = DEFAULT_ROOT_OBJECT if path == "/" else path.removeprefix("/")
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") for part in parts):
        return None
    return key


class _ExactKeys:
    """Hands StaticFiles only paths that are exact keys, the root as its default object."""

    def __init__(self, files: StaticFiles) -> None:
        self.files = files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = object_key(scope["path"])
        if key is None:
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.files({**scope, "path": f"/{key}", "root_path": ""}, receive, send)


class _SecurityHeaders:
    """ASGI middleware adding fixed headers to every response, errors included."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    api_url: str,
    frontend_dir: Path = FRONTEND_DIR,
    capture_retention_days: int | None = None,
    feedback_url: str | None = None,
) -> ASGIApp:
    config = web_page.page_settings(api_url, capture_retention_days, feedback_url)

    async def config_json(_: Request) -> Response:
        return JSONResponse(config)

    app = Starlette(
        routes=[
            Route(f"/{web_page.CONFIG_FILE}", config_json, methods=["GET", "HEAD"]),
            Mount("/", _ExactKeys(StaticFiles(directory=frontend_dir))),
        ]
    )
    return _SecurityHeaders(app, security_headers(api_url))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sentiment.site_server", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--api-url", required=True, help="the prediction API, e.g. .../predict")
    parser.add_argument("--frontend", type=Path, default=FRONTEND_DIR)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--capture-retention-days",
        type=int,
        help="tell visitors their reviews are recorded and kept this many days",
    )
    parser.add_argument(
        "--feedback-url", help="where the page sends feedback on a verdict (none: it asks none)"
    )
    uvicorn_server.add_limit_arguments(parser, LIMITS)
    args = parser.parse_args(argv)
    uvicorn_server.configure_logging()
    uvicorn_server.serve(
        uvicorn_server.server_config(
            create_app(args.api_url, args.frontend, args.capture_retention_days, args.feedback_url),
            args.host,
            args.port,
            uvicorn_server.limits_from(args),
            security_headers(args.api_url),
        )
    )


if __name__ == "__main__":
    main()
