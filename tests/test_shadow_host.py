"""The endpoint emulator's shadow model, in process: a copy of each request answered unseen,
recorded beside production's, and never in the way of an answer.

(The same over the real local stack, with `sentiment compare`: tests/test_local_stack_shadow.py.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from local_stack_harness import modified_artifact
from model_artifacts import write_model_dir

from contract.api import ENDPOINT_VARIANT, SHADOW_VARIANT
from contract.capture import DirectoryCaptureWriter, TrafficCapture
from contract.packaging import build_tarball
from contract.smoke import SMOKE_FILE
from sentiment import compare, endpoint_emulator, inference_toolkit, shadow
from sentiment.model_loader import JSON
from sentiment.model_slot import ModelSlot
from sentiment.shadow import Exchange, ShadowHost, load_shadow

ENDPOINT = "emulated"
REVIEWS = [
    "A wonderful film with a brilliant plot.",
    "An awful, boring story.",
    "The music is superb and the actor wonderful.",
    "A terrible plot.",
]
# Scores pulled halfway to 0.5, under a model version of its own: verdicts stay, scores move.
SHRUNK_PREDICT = (
    "+\n\n_trained_predict_fn = predict_fn\n\n"
    "def predict_fn(request, model):\n"
    "    prediction = _trained_predict_fn(request, model)\n"
    "    for result in prediction.results:\n"
    "        result['score'] = 0.5 + (result['score'] - 0.5) / 2\n"
    "        result['model_version'] = 'shrunk-' + result['model_version']\n"
    "    return prediction\n"
)
BROKEN_PREDICT = (
    "+\n\ndef predict_fn(request, model):\n"
    "    raise RuntimeError('this shadow is broken on purpose')\n"
)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shadow")
    production = build_tarball(write_model_dir(root / "model"), root / "model.tar.gz")
    # Without their smoke test: they no longer answer as at training, on purpose.
    return {
        "production": production,
        "shrunk": modified_artifact(
            production,
            root / "shrunk.tar.gz",
            {"code/inference.py": SHRUNK_PREDICT, SMOKE_FILE: None},
        ),
        "broken": modified_artifact(
            production,
            root / "broken.tar.gz",
            {"code/inference.py": BROKEN_PREDICT, SMOKE_FILE: None},
        ),
        "missing": root / "missing.tar.gz",
    }


@pytest.fixture(scope="module")
def slot(artifacts: dict[str, Path]) -> Iterator[ModelSlot]:
    slot = ModelSlot(artifacts["production"])
    yield slot
    slot.close()


def captures(root: Path, variant: str, percent: float = 100) -> TrafficCapture:
    return TrafficCapture(DirectoryCaptureWriter(root, ENDPOINT, variant).write, percent)


def ask(slot: ModelSlot, host: ShadowHost | None, capture: TrafficCapture | None) -> list[dict]:
    """Each review through the runtime route, with an inference id as the Lambda sends it."""

    async def send() -> list[httpx.Response]:
        app = endpoint_emulator.create_app(slot, ENDPOINT, "realtime", capture, host)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://endpoint") as client:
            return [
                await client.post(
                    f"/endpoints/{ENDPOINT}/invocations",
                    json={"review": review},
                    headers={"X-Amzn-SageMaker-Inference-Id": f"prediction-{index}"},
                )
                for index, review in enumerate(REVIEWS)
            ]

    responses = asyncio.run(send())
    assert [response.status_code for response in responses] == [200] * len(REVIEWS)
    return [response.json() for response in responses]


def production_answers(slot: ModelSlot) -> list[dict]:
    return [
        json.loads(
            inference_toolkit.invoke(
                slot.served, json.dumps({"review": review}).encode(), JSON, JSON
            ).body
        )
        for review in REVIEWS
    ]


def test_the_shadow_answers_a_copy_unseen_and_is_recorded_beside_production(
    slot: ModelSlot, artifacts: dict[str, Path], tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, "sentiment.endpoint")
    host = ShadowHost(artifacts["shrunk"], captures(tmp_path, SHADOW_VARIANT))

    answers = ask(slot, host, captures(tmp_path, ENDPOINT_VARIANT))
    host.close()  # answers the copies still queued

    assert answers == production_answers(slot)
    assert (tmp_path / ENDPOINT / SHADOW_VARIANT).is_dir()
    report = compare.compare(compare.CompareOptions(capture=str(tmp_path)))
    assert report["reviews"] == report["records"]["paired_requests"] == len(REVIEWS)
    assert report["agreement"] == 1.0
    assert report["score_shift"]["mean_abs"] > 0.01
    assert all(version.startswith("shrunk-") for version in report["models"]["shadow"])
    assert not any(version.startswith("shrunk-") for version in report["models"]["production"])
    logged = compare.latencies(caplog.messages)
    assert len(logged) == len(REVIEWS)
    assert "agree=1/1 max_shift=" in caplog.text


def test_a_shadow_records_only_what_production_recorded(
    slot: ModelSlot, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    host = ShadowHost(artifacts["shrunk"], captures(tmp_path, SHADOW_VARIANT))

    ask(slot, host, captures(tmp_path, ENDPOINT_VARIANT, percent=0))
    host.close()

    assert not list(tmp_path.rglob("*.jsonl"))


def test_a_failing_shadow_costs_no_answer(
    slot: ModelSlot, artifacts: dict[str, Path], tmp_path: Path, caplog: Any
) -> None:
    host = ShadowHost(artifacts["broken"], captures(tmp_path, SHADOW_VARIANT))

    answers = ask(slot, host, captures(tmp_path, ENDPOINT_VARIANT))
    host.close()

    assert answers == production_answers(slot)
    assert "shadow model failed (500) on event_id=" in caplog.text
    assert not (tmp_path / ENDPOINT / SHADOW_VARIANT).exists()
    with pytest.raises(ValueError, match=r"\(Shadow: 0 records\)"):
        compare.compare(compare.CompareOptions(capture=str(tmp_path)))


def test_a_shadow_that_cannot_load_is_logged_and_left_out(
    artifacts: dict[str, Path], caplog: Any
) -> None:
    assert load_shadow(artifacts["missing"], None) is None
    assert f"no shadow model: {artifacts['missing']} cannot serve" in caplog.text


def test_a_shadow_that_falls_behind_drops_copies_instead_of_queueing_them(
    artifacts: dict[str, Path], monkeypatch: Any, caplog: Any
) -> None:
    release = threading.Event()
    started = threading.Event()
    answer = inference_toolkit.ModelResponse(200, b"{}", JSON)

    def slow(*_: Any) -> tuple[inference_toolkit.ModelResponse, float]:
        started.set()
        release.wait(10)
        return answer, 1.0

    monkeypatch.setattr(shadow, "timed", slow)
    host = ShadowHost(artifacts["shrunk"], workers=1, max_pending=1)
    exchange = Exchange(b"{}", JSON, JSON, None, "event", answer, 1.0, recorded=False)

    assert host.mirror(exchange)
    started.wait(10)
    assert not host.mirror(exchange)
    assert host.dropped == 1
    assert "shadow model falling behind: 1 copies dropped so far" in caplog.text
    release.set()
    host.close()
    assert host.mirror(exchange) is False  # after close: nothing queued, nothing raised


def test_a_serverless_endpoint_hosts_no_shadow_locally_either(
    artifacts: dict[str, Path], capsys: Any
) -> None:
    from sentiment import cli

    arguments = ["up", "--shadow-model", str(artifacts["shrunk"])]

    assert cli.main([*arguments, "--endpoint-mode", "serverless"]) == 2
    assert "serverless endpoints support no shadow variant" in capsys.readouterr().err
    assert cli.main(["up", "--shadow-model", str(artifacts["missing"])]) == 2
    assert "shadow model artifact not found" in capsys.readouterr().err
