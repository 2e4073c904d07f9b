"""`sentiment up --shadow-model`: traffic through the real local stack with a shadow model,
then `sentiment compare` on what it captured and logged.

(The shadow host in process, its failures included: tests/test_shadow_host.py.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from local_stack_harness import post_review, start_stack, train_tiny_model

from contract.api import ENDPOINT_VARIANT, SHADOW_VARIANT
from sentiment import cli, inference_toolkit
from sentiment.local_stack import DEFAULT_ENDPOINT_NAME
from sentiment.model_loader import JSON, served_artifact

pytestmark = pytest.mark.slow

REVIEWS = [
    "A wonderful film with a brilliant plot, and the music is superb.",
    "An awful, boring film.",
    "Wonderful and brilliant.",
    "The plot was terrible and the actor boring.",
    "A superb story, a wonderful actor.",
    "Boring music, an awful plot.",
    "Zzyzx qwerty.",
    "The film.",
]


@pytest.fixture(scope="module")
def models(prepared_imdb: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny trained models that answer differently: production, and the new one."""
    root = tmp_path_factory.mktemp("shadow-models")
    return {
        "production": train_tiny_model(prepared_imdb, root / "production", seed=1),
        "shadow": train_tiny_model(prepared_imdb, root / "shadow", 2, "--ngram-c", "5"),
    }


def answers_in_process(artifact: Path) -> list[dict]:
    with served_artifact(artifact) as served:
        return [
            json.loads(
                inference_toolkit.invoke(
                    served, json.dumps({"review": review}).encode(), JSON, JSON
                ).body
            )
            for review in REVIEWS
        ]


def test_the_shadow_answers_each_request_unseen_and_compare_reports_both(
    models: dict[str, Path], tmp_path: Path
) -> None:
    stack = start_stack(models["production"], arguments=("--shadow-model", str(models["shadow"])))
    try:
        stack.wait_for(r"^Shadow model +\S+shadow", timeout=5)
        answers = []
        for review in REVIEWS:
            response = post_review(stack.api_url, review)
            assert response.status_code == 200
            answers.append(response.json())
        deadline = time.monotonic() + 30
        while stack.log_since(0).count("shadow answered") < len(REVIEWS):
            assert time.monotonic() < deadline, stack.log_since(0)
            time.sleep(0.1)
    finally:
        status = stack.stop()
    log = tmp_path / "up.log"
    log.write_text(stack.log_since(0) + "\n", encoding="utf-8")

    assert status == 0, stack.log_since(0)
    # Callers get production's answers, never the shadow's.
    assert [
        {key: value for key, value in answer.items() if key != "prediction_id"}
        for answer in answers
    ] == answers_in_process(models["production"])
    endpoint = stack.capture_dir / DEFAULT_ENDPOINT_NAME
    assert sorted(path.name for path in endpoint.iterdir()) == sorted(
        [ENDPOINT_VARIANT, SHADOW_VARIANT]
    )

    out = tmp_path / "compare"
    assert (
        cli.main(
            [
                "compare",
                *("--capture", str(stack.capture_dir)),
                *("--latency-log", str(log)),
                *("--out", str(out)),
            ]
        )
        == 0
    )
    report = json.loads((out / "compare_report.json").read_text())
    shadow_answers = answers_in_process(models["shadow"])

    assert report["reviews"] == report["records"]["paired_requests"] == len(REVIEWS)
    assert report["records"]["production_only"] == report["records"]["shadow_only"] == 0
    assert report["models"] == {
        "production": [answers[0]["model_version"]],
        "shadow": [shadow_answers[0]["model_version"]],
    }
    assert report["models"]["production"] != report["models"]["shadow"]
    expected_agreement = sum(
        ours["sentiment"] == theirs["sentiment"]
        for ours, theirs in zip(answers, shadow_answers, strict=True)
    ) / len(REVIEWS)
    assert report["agreement"] == pytest.approx(expected_agreement)
    expected_shift = sum(
        theirs["score"] - ours["score"]
        for ours, theirs in zip(answers, shadow_answers, strict=True)
    ) / len(REVIEWS)
    assert report["score_shift"]["mean_signed"] == pytest.approx(expected_shift)
    assert report["latency"]["requests"] == len(REVIEWS)
    assert report["latency"][ENDPOINT_VARIANT]["mean"] > 0
    assert report["latency"][SHADOW_VARIANT]["mean"] > 0
