"""Captured traffic for the drift tests: reviews answered by a real artifact's own handlers and
recorded as the endpoint records them (contract/capture.py).

``sample_reviews`` (model_artifacts) is the distribution the hand-made artifact's baseline was
taken from; ``shifted_reviews`` speaks words its vocabulary has never seen.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from model_artifacts import write_model_dir

from contract.capture import DirectoryCaptureWriter, capture_record
from contract.packaging import build_tarball
from sentiment.model_loader import ServedModel

JSON = "application/json"
ENDPOINT = "imdb-sentiment"
VARIANT = "AllTraffic"
START = datetime(2026, 12, 1, 10, tzinfo=UTC)
SHIFTED_WORDS = ("lowkey", "bussin", "vibes", "slay", "rizz", "cringe", "popcorn", "sequel")


def build_artifact(root: Path) -> Path:
    """The hand-made artifact as model.tar.gz, its drift baseline written by train.py's code."""
    return build_tarball(write_model_dir(root / "model"), root / "model.tar.gz")


def shifted_reviews(count: int, seed: int) -> list[str]:
    """Short texts in words the hand-made artifact does not know, now and then one it does."""
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(SHIFTED_WORDS) for _ in range(rng.randint(2, 5)))
        + rng.choice(("!", ".", " film."))
        for _ in range(count)
    ]


def answered_records(
    served: ServedModel, reviews: list[str], start: datetime = START
) -> list[tuple[dict, datetime]]:
    """(record, time) for each review, one a minute from ``start``, answered by the artifact."""
    handlers, records = served.handlers, []
    for index, review in enumerate(reviews):
        body = json.dumps({"review": review}).encode()
        prediction = handlers.predict_fn(handlers.input_fn(body, JSON), served.model)
        answer, answer_type = handlers.output_fn(prediction, JSON)
        time = start + timedelta(minutes=index)
        record = capture_record(
            request=body,
            request_type=JSON,
            response=answer.encode(),
            response_type=answer_type,
            inference_id=str(uuid.uuid4()),
            time=time,
        )
        records.append((record, time))
    return records


def write_capture(
    directory: Path, served: ServedModel, reviews: list[str], start: datetime = START
) -> Path:
    """The reviews' records under ``directory`` as the endpoint emulator writes them."""
    writer = DirectoryCaptureWriter(directory, ENDPOINT, VARIANT)
    for record, time in answered_records(served, reviews, start):
        writer.write(record, time)
    return directory


def write_feedback(directory: Path, verdicts: list[tuple[str, str]], model_version: str) -> Path:
    """One feedback record per (label, predicted), received on START's day."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, (label, predicted) in enumerate(verdicts):
        identifier = str(uuid.UUID(int=index))
        record = {
            "prediction_id": identifier,
            "label": label,
            "predicted": predicted,
            "score": 0.9 if predicted == "positive" else 0.1,
            "model_version": model_version,
            "review": "The film.",
            "received_at": (START + timedelta(minutes=index)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": "5d41402abc4b2a76",
        }
        (directory / f"{identifier}.json").write_text(json.dumps(record))
    return directory
