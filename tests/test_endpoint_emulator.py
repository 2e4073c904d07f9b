"""The endpoint emulator's payload limit, as the SageMaker runtime applies it per endpoint mode.

(The emulator over HTTP with boto3 and the real stack: tests/test_local_stack.py.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from model_artifacts import write_model_dir

from contract.packaging import build_tarball
from sentiment import endpoint_emulator
from sentiment.endpoint_emulator import MAX_PAYLOAD_BYTES
from sentiment.model_slot import ModelSlot

ENDPOINT = "emulated"


@pytest.fixture(scope="module")
def slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelSlot]:
    root = tmp_path_factory.mktemp("endpoint")
    artifact = build_tarball(write_model_dir(root / "model"), root / "model.tar.gz")
    slot = ModelSlot(artifact)
    yield slot
    slot.close()


def _post(slot: ModelSlot, mode: str, path: str, content: Any) -> httpx.Response:
    """A JSON POST to the emulator's ASGI app for an endpoint of `mode`, in process."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=endpoint_emulator.create_app(slot, ENDPOINT, mode))
        async with httpx.AsyncClient(transport=transport, base_url="http://endpoint") as client:
            return await client.post(
                path, content=content, headers={"Content-Type": "application/json"}
            )

    return asyncio.run(send())


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 65536):
        yield body[start : start + 65536]


def _review_of(size: int) -> bytes:
    """A JSON review body of exactly `size` bytes."""
    frame = json.dumps({"review": ""}).encode()
    return json.dumps({"review": "a" * (size - len(frame))}).encode()


@pytest.mark.parametrize("mode", sorted(MAX_PAYLOAD_BYTES))
def test_a_payload_at_the_modes_limit_reaches_the_model(slot: ModelSlot, mode: str) -> None:
    response = _post(
        slot, mode, f"/endpoints/{ENDPOINT}/invocations", _review_of(MAX_PAYLOAD_BYTES[mode])
    )
    # The model's own answer (the review is far over its character limit), not the runtime's.
    assert response.headers["x-amzn-errortype"] == "ModelError"
    assert response.json()["OriginalStatusCode"] == 413


@pytest.mark.parametrize(
    ("mode", "status", "message"),
    [
        ("realtime", 413, f"HTTP content length exceeded {MAX_PAYLOAD_BYTES['realtime']} bytes."),
        ("serverless", 400, "has oversize body."),
    ],
)
def test_a_payload_over_the_modes_limit_is_refused_as_the_runtime_refuses_it(
    slot: ModelSlot, mode: str, status: int, message: str
) -> None:
    body = _review_of(MAX_PAYLOAD_BYTES[mode] + 1)
    runtime = _post(slot, mode, f"/endpoints/{ENDPOINT}/invocations", body)
    # Streamed in chunks without a Content-Length: refused while it arrives.
    container = _post(slot, mode, "/invocations", _chunks(body))
    for response in (runtime, container):
        assert response.status_code == status
        assert response.headers["x-amzn-errortype"] == "ValidationError"
        assert response.json()["message"].endswith(message)
