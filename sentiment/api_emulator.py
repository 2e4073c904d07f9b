"""API Gateway on one machine: ``POST /predict`` and ``POST /feedback`` into the unmodified
Lambda handlers.

Each request becomes the REST API proxy event (payload format 1.0) that API Gateway sends the
Lambda, with a context carrying a fresh ``aws_request_id``, and the handler's answer becomes the
HTTP response. A body that is not UTF-8 arrives base64-encoded with ``isBase64Encoded``, as API
Gateway sends binary bodies. What the deployed gateway answers by itself is answered here too,
with the same CORS headers as the stack's gateway responses: the CORS preflight for the page's
origin, 403 ``Missing Authentication Token`` for any other route, 413 for a body over the
gateway's 10 MB, and 502 ``Internal server error`` when the function fails, times out (after the
stack's 25 s) or answers something that is not a proxy response.

The handler reaches the endpoint emulator through boto3 (``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``),
signing with placeholder credentials: nothing here ever reads or sends real AWS credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract import api
from contract.capture import DEFAULT_CAPTURE_PERCENT, DEFAULT_CAPTURE_RETENTION_DAYS
from contract.feedback import DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY
from lambda_src.prediction.responses import SECURITY_HEADERS
from sentiment import uvicorn_server
from sentiment.local_stack import LOCAL_ACCOUNT, LOCAL_REGION

ROUTE = f"/{api.ROUTE}"
FEEDBACK_ROUTE = f"/{api.FEEDBACK_ROUTE}"
STAGE = "local"
FUNCTION_NAME = "predict-api-local"
# API Gateway's payload limit.
MAX_BODY_BYTES = 10 * 1024 * 1024
# API Gateway's quota on a REST API request's line and headers together (API Gateway
# Developer Guide, quotas for configuring and running a REST API: 10,240 bytes).
LIMITS = uvicorn_server.ConnectionLimits(max_header_bytes=10_240)
# Concurrent invocations: Lambda would start containers; here they are threads.
CONCURRENCY = 32

Handler = Callable[[dict[str, Any], Any], Any]

_logger = logging.getLogger("sentiment.api")


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers commonly read."""

    aws_request_id: str
    deadline: float = field(repr=False)
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    invoked_function_arn: str = (
        f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{FUNCTION_NAME}"
    )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def lambda_environment(
    environ: Mapping[str, str], *, endpoint_url: str, endpoint_name: str, allowed_origin: str
) -> dict[str, str]:
    """The handler's environment: the endpoint emulator as SageMaker, placeholder credentials.

    The handler's own tuning variables (MAX_REVIEW_CHARS, SAGEMAKER_*_TIMEOUT, ...) pass
    through; every AWS credential source is replaced so a developer's real keys are never used.
    """
    credential_sources = {
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ENDPOINT_URL",
    }
    environment = {name: value for name, value in environ.items() if name not in credential_sources}
    environment.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
            "ENDPOINT_NAME": endpoint_name,
            "ALLOWED_ORIGIN": allowed_origin,
        }
    )
    return environment


def proxy_event(request: Request, body: bytes, request_id: str) -> dict[str, Any]:
    """The REST API (payload format 1.0) proxy event for one request."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        multi_headers.setdefault(name, []).append(value)
    client = request.client.host if request.client else "127.0.0.1"
    multi_headers.setdefault("x-forwarded-for", [client])
    query: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        query.setdefault(name, []).append(value)
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    return {
        "resource": request.url.path,
        "path": request.url.path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": "local",
            "domainName": request.headers.get("host", ""),
            "httpMethod": request.method,
            "identity": {"sourceIp": client, "userAgent": request.headers.get("user-agent")},
            "path": f"/{STAGE}{request.url.path}",
            "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
            "requestId": request_id,
            "requestTimeEpoch": int(now * 1000),
            "resourcePath": request.url.path,
            "stage": STAGE,
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


class MalformedProxyResponse(ValueError):
    """The function answered something API Gateway cannot turn into an HTTP response."""


def http_response(result: Any) -> Response:
    """The HTTP response for a Lambda proxy integration result."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise MalformedProxyResponse("the result has no integer statusCode")
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise MalformedProxyResponse("the body is not a string")
    content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    response = Response(content, status_code=result["statusCode"])
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.append(name, str(value))
    return response


def _deployed_handlers() -> dict[str, Handler]:
    # Imported when the app is built, after main() has set the handlers' environment.
    from lambda_src.prediction import feedback, handler

    return {ROUTE: handler.handler, FEEDBACK_ROUTE: feedback.handler}


def create_app(
    allowed_origin: str,
    handler: Handler | None = None,
    function_timeout: float = api.FUNCTION_TIMEOUT_SECONDS,
) -> Starlette:
    """The gateway for the deployed functions' handlers, or for ``handler`` alone at
    ``POST /predict``."""
    routes = {ROUTE: handler} if handler else _deployed_handlers()
    executor = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="lambda")
    cors = {"Access-Control-Allow-Origin": allowed_origin, "Vary": "Origin"}

    def gateway_error(status: int, message: str, request_id: str) -> Response:
        return JSONResponse(
            {"message": message},
            status_code=status,
            headers={**cors, "x-amzn-RequestId": request_id},
        )

    def preflight(request_id: str) -> Response:
        # What the stack's default_cors_preflight_options answer, without calling the function.
        return Response(
            status_code=HTTPStatus.NO_CONTENT,
            headers={**cors, **api.preflight_headers(), "x-amzn-RequestId": request_id},
        )

    async def invoke(request: Request, request_id: str, handler: Handler) -> Response:
        body = await uvicorn_server.read_body(request, MAX_BODY_BYTES)
        if body is None:
            return gateway_error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "Request Too Long",
                request_id,
            )
        event = proxy_event(request, body, request_id)
        context = LambdaContext(str(uuid.uuid4()), time.monotonic() + function_timeout)
        call = asyncio.get_running_loop().run_in_executor(executor, handler, event, context)
        try:
            response = http_response(await asyncio.wait_for(call, function_timeout))
        except Exception as error:
            # The function failed, timed out or answered nonsense: API Gateway answers 502.
            _logger.error(
                "invocation %s failed: %s",
                context.aws_request_id,
                type(error).__name__,
                exc_info=not isinstance(error, TimeoutError),
            )
            return gateway_error(HTTPStatus.BAD_GATEWAY, "Internal server error", request_id)
        response.headers["x-amzn-RequestId"] = request_id
        return response

    async def gateway(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        handler = routes.get(request.url.path)
        if handler is not None and request.method == "POST":
            return await invoke(request, request_id, handler)
        if handler is not None and request.method == "OPTIONS":
            return preflight(request_id)
        return gateway_error(
            HTTPStatus.FORBIDDEN,
            "Missing Authentication Token",
            request_id,
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", gateway, methods=methods)], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sentiment.api_emulator", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--endpoint-url", required=True, help="the endpoint emulator's URL")
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument(
        "--allowed-origin", required=True, help="the page's origin, for CORS (or '*')"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--capture-dir",
        type=Path,
        help="have the handler record the endpoint's traffic here, as it does in AWS for a "
        "serverless endpoint (CAPTURE_DESTINATION)",
    )
    parser.add_argument("--capture-percent", type=float, default=DEFAULT_CAPTURE_PERCENT)
    parser.add_argument(
        "--capture-retention-days",
        type=int,
        default=DEFAULT_CAPTURE_RETENTION_DAYS,
    )
    parser.add_argument(
        "--feedback-dir",
        type=Path,
        help="take feedback on verdicts (POST /feedback) and keep it here, keeping each "
        "prediction in --prediction-database for it to name (without: feedback is refused)",
    )
    parser.add_argument("--prediction-database", type=Path, help="an SQLite file")
    parser.add_argument(
        "--prediction-retention-days",
        type=int,
        default=DEFAULT_CAPTURE_RETENTION_DAYS,
        help="how long a prediction can be given feedback",
    )
    parser.add_argument(
        "--feedback-per-source-per-day", type=int, default=DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY
    )
    uvicorn_server.add_limit_arguments(parser, LIMITS)
    args = parser.parse_args(argv)
    uvicorn_server.configure_logging()
    # boto3 announces at INFO where it found credentials and the endpoint, on every start.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    environment = lambda_environment(
        os.environ,
        endpoint_url=args.endpoint_url,
        endpoint_name=args.endpoint_name,
        allowed_origin=args.allowed_origin,
    )
    if args.capture_dir:
        environment["CAPTURE_DESTINATION"] = str(args.capture_dir.resolve())
        environment["CAPTURE_PERCENT"] = str(args.capture_percent)
        environment["CAPTURE_RETENTION_DAYS"] = str(args.capture_retention_days)
    if args.feedback_dir:
        if not args.prediction_database:
            parser.error("--feedback-dir needs --prediction-database")
        environment["FEEDBACK_DESTINATION"] = str(args.feedback_dir.resolve())
        environment["FEEDBACK_PER_SOURCE_PER_DAY"] = str(args.feedback_per_source_per_day)
        args.prediction_database.parent.mkdir(parents=True, exist_ok=True)
        environment["PREDICTION_DATABASE"] = str(args.prediction_database.resolve())
        environment["PREDICTION_RETENTION_DAYS"] = str(args.prediction_retention_days)
    os.environ.clear()
    os.environ.update(environment)

    uvicorn_server.serve(
        uvicorn_server.server_config(
            create_app(args.allowed_origin),
            args.host,
            args.port,
            uvicorn_server.limits_from(args),
            SECURITY_HEADERS,
        )
    )


if __name__ == "__main__":
    main()
