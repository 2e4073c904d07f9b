"""A SageMaker endpoint on one machine: a trained model.tar.gz behind the serving contract.

Two faces, one model:

* the serving container's HTTP contract, ``GET /ping`` and ``POST /invocations``, answered the
  way the SageMaker PyTorch serving container answers them (``sentiment.inference_toolkit``);
* the SageMaker runtime API, ``POST /endpoints/{name}/invocations``, so the unmodified
  prediction Lambda reaches it through boto3 with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``: the
  container's answer comes back as is, or as the runtime's ``ModelError`` (HTTP 424, header
  ``x-amzn-ErrorType: ModelError``, ``OriginalStatusCode``/``OriginalMessage`` in the body) when
  the container answers with an error; an unknown endpoint name is a ``ValidationError``.

The model is served by the artifact's own ``code/inference.py`` and swapped in when a new
model.tar.gz lands on the watched path (``sentiment.model_slot``). With ``--capture-dir`` the
runtime's successful invocations are recorded there, as a real-time endpoint's data capture
records them (``contract.capture``). With ``--shadow-model`` a second model answers a copy of
each runtime invocation, unseen, as a shadow variant does (``sentiment.shadow``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path

import torch
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract.api import ENDPOINT_VARIANT, SHADOW_VARIANT
from contract.capture import (
    DEFAULT_CAPTURE_PERCENT,
    DEFAULT_CAPTURE_RETENTION_DAYS,
    DirectoryCaptureWriter,
    TrafficCapture,
)
from contract.promotion import DEFAULT_TOLERANCE
from contract.serving_workers import TORCH_THREADS_PER_WORKER
from sentiment import inference_toolkit, uvicorn_server
from sentiment.local_stack import DEFAULT_ENDPOINT_NAME, LOCAL_ACCOUNT, LOCAL_REGION
from sentiment.model_slot import Gate, ModelSlot
from sentiment.shadow import Exchange, ShadowHost, load_shadow, timed

# The SageMaker runtime's limit on an InvokeEndpoint payload, by endpoint mode (Amazon
# SageMaker endpoints and quotas: 6 MB real-time, 4 MB serverless), and how it refuses one:
# real-time with 413, serverless with a ValidationError.
MAX_PAYLOAD_BYTES = {"realtime": 6 * 1024 * 1024, "serverless": 4 * 1024 * 1024}

_logger = logging.getLogger("sentiment.endpoint")


def _runtime_error(status: int, error_type: str, body: dict[str, object]) -> Response:
    return JSONResponse(
        body,
        status_code=status,
        headers={"x-amzn-ErrorType": error_type, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def model_error(endpoint_name: str, answer: inference_toolkit.ModelResponse) -> Response:
    """The runtime's wrapping of a container error (what boto3 raises as ``ModelError``)."""
    original = answer.body.decode("utf-8", "replace")
    side = "client" if answer.status < HTTPStatus.INTERNAL_SERVER_ERROR else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
    return _runtime_error(
        HTTPStatus.FAILED_DEPENDENCY,
        "ModelError",
        {
            "ErrorCode": f"{side.upper()}_ERROR_FROM_MODEL",
            "LogStreamArn": f"arn:aws:logs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:log-group:{log_group}",
            "Message": f"Received {side} error ({answer.status}) from primary with message "
            f'"{original}". See the endpoint emulator\'s log for more information.',
            "OriginalMessage": original,
            "OriginalStatusCode": answer.status,
        },
    )


def payload_too_large(mode: str) -> Response:
    """The runtime's answer to a payload over MAX_PAYLOAD_BYTES[mode]."""
    if mode == "serverless":
        return _runtime_error(
            HTTPStatus.BAD_REQUEST,
            "ValidationError",
            {"message": f"Request {uuid.uuid4()} has oversize body."},
        )
    return _runtime_error(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "ValidationError",
        {"message": f"HTTP content length exceeded {MAX_PAYLOAD_BYTES[mode]} bytes."},
    )


def create_app(
    slot: ModelSlot,
    endpoint_name: str = DEFAULT_ENDPOINT_NAME,
    mode: str = "realtime",
    capture: TrafficCapture | None = None,
    shadow: ShadowHost | None = None,
) -> Starlette:
    """The endpoint's app; ``capture`` records the runtime's successful invocations, as a
    real-time endpoint's DataCaptureConfig does; ``shadow`` answers a copy of each, unseen."""
    # Like the serving container's model server: one inference worker per core, each with one
    # torch thread, and requests beyond that wait their turn.
    workers = os.cpu_count() or 1
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
    limit = MAX_PAYLOAD_BYTES[mode]

    def invoke_and_record(
        body: bytes, headers: Headers, record: bool
    ) -> inference_toolkit.ModelResponse:
        """The model's answer; with ``record``, a successful exchange captured in the same
        worker thread, so that recording costs the request no extra hop, and a copy queued
        for the shadow model, which answers it on threads of its own."""
        content_type, accept = headers.get("content-type"), headers.get("accept")
        result, took_ms = timed(slot.served, body, content_type, accept)
        inference_id = headers.get("x-amzn-sagemaker-inference-id")
        event_id, recorded = str(uuid.uuid4()), False
        if record and capture is not None and result.status == HTTPStatus.OK:
            try:
                recorded = capture(
                    request=body,
                    request_type=headers.get("content-type", ""),
                    response=result.body,
                    response_type=result.content_type or "",
                    inference_id=inference_id,
                    event_id=event_id,
                )
            except Exception:  # the answer matters more than its record
                _logger.exception("traffic capture failed")
        if record and shadow is not None:
            shadow.mirror(
                Exchange(
                    body, content_type, accept, inference_id, event_id, result, took_ms, recorded
                )
            )
        return result

    async def answer(
        request: Request, record: bool = False
    ) -> inference_toolkit.ModelResponse | None:
        """The model's answer, or None for a payload over the mode's limit (never read whole)."""
        body = await uvicorn_server.read_body(request, limit)
        if body is None:
            return None
        result = await asyncio.get_running_loop().run_in_executor(
            executor, invoke_and_record, body, request.headers, record
        )
        if result.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            # The container's log: what the runtime's ModelError message points to.
            _logger.error("model failed (%d): %s", result.status, result.body.decode("utf-8"))
        return result

    async def ping(_: Request) -> Response:
        return JSONResponse({"status": "Healthy"})

    async def invocations(request: Request) -> Response:
        result = await answer(request)
        if result is None:
            return payload_too_large(mode)
        return Response(result.body, status_code=result.status, media_type=result.content_type)

    async def runtime_invocations(request: Request) -> Response:
        name = request.path_params["name"]
        if name != endpoint_name:
            return _runtime_error(
                HTTPStatus.BAD_REQUEST,
                "ValidationError",
                {"message": f"Endpoint {name} of account {LOCAL_ACCOUNT} not found."},
            )
        # The runtime's route is the endpoint's front door: what data capture records.
        result = await answer(request, record=True)
        if result is None:
            return payload_too_large(mode)
        if result.status != HTTPStatus.OK:
            return model_error(endpoint_name, result)
        return Response(
            result.body,
            media_type=result.content_type,
            headers={
                "x-Amzn-Invoked-Production-Variant": ENDPOINT_VARIANT,
                "x-amzn-RequestId": str(uuid.uuid4()),
            },
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        watcher = threading.Thread(target=slot.watch, args=(stop,), name="model-watch")
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
            executor.shutdown(wait=True)

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/endpoints/{name}/invocations", runtime_invocations, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def directory_capture(
    args: argparse.Namespace, variant: str = ENDPOINT_VARIANT, percent: float | None = None
) -> TrafficCapture | None:
    if args.capture_dir is None:
        return None
    writer = DirectoryCaptureWriter(
        args.capture_dir, args.endpoint_name, variant, args.capture_retention_days
    )
    return TrafficCapture(writer.write, args.capture_percent if percent is None else percent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sentiment.endpoint_emulator", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", type=Path, required=True, help="model.tar.gz to serve and watch")
    parser.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT_NAME)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--endpoint-mode",
        choices=sorted(MAX_PAYLOAD_BYTES),
        default="realtime",
        help="the payload limit of this endpoint mode (cdk.json's sentiment:endpointMode)",
    )
    parser.add_argument(
        "--capture-dir",
        type=Path,
        help="record invocations here, as a real-time endpoint's data capture does "
        "(contract/capture.py); serverless endpoints cannot capture",
    )
    parser.add_argument(
        "--capture-percent",
        type=float,
        default=DEFAULT_CAPTURE_PERCENT,
        help="the share of invocations recorded (default %(default)s)",
    )
    parser.add_argument(
        "--capture-retention-days",
        type=int,
        default=DEFAULT_CAPTURE_RETENTION_DAYS,
        help="records older than this are deleted, as the bucket's lifecycle rule does "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--gate-tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="refuse a new model whose validation accuracy or behaviour suite is worse than "
        "the serving model's by more than this (default %(default)s)",
    )
    parser.add_argument(
        "--force-promotion",
        action="store_true",
        help="swap a new model in even when the promotion gate refuses it (logged)",
    )
    parser.add_argument(
        "--shadow-model",
        type=Path,
        help="a model.tar.gz that answers a copy of each invocation, as a shadow variant: "
        "its answers are recorded (under the shadow variant) and logged, never returned",
    )
    uvicorn_server.add_limit_arguments(parser, uvicorn_server.ConnectionLimits())
    args = parser.parse_args(argv)
    if args.capture_dir and args.endpoint_mode == "serverless":
        parser.error("serverless endpoints cannot capture traffic: the Lambda records it")
    if args.shadow_model and args.endpoint_mode == "serverless":
        parser.error("serverless endpoints support no shadow variant")
    uvicorn_server.configure_logging()
    torch.set_num_threads(TORCH_THREADS_PER_WORKER)
    try:
        slot = ModelSlot(args.model, Gate(args.gate_tolerance, args.force_promotion))
    except (ValueError, OSError) as error:  # a missing, corrupt or incomplete artifact
        _logger.error("cannot serve %s: %s", args.model, error)
        raise SystemExit(1) from None
    # The production draw decides which exchanges are recorded: the shadow records those.
    shadow = (
        load_shadow(args.shadow_model, directory_capture(args, SHADOW_VARIANT, percent=100))
        if args.shadow_model
        else None
    )
    try:
        uvicorn_server.serve(
            uvicorn_server.server_config(
                create_app(
                    slot,
                    args.endpoint_name,
                    args.endpoint_mode,
                    directory_capture(args),
                    shadow,
                ),
                args.host,
                args.port,
                uvicorn_server.limits_from(args),
                {"X-Content-Type-Options": "nosniff"},
            )
        )
    finally:
        if shadow is not None:
            shadow.close()
        slot.close()


if __name__ == "__main__":
    main()
