"""SageMaker inference handlers, loaded by the PyTorch serving container from code/.

The container imports this module from /opt/ml/model/code (SAGEMAKER_PROGRAM) and calls
model_fn once, then input_fn → predict_fn → output_fn per request. Everything the
model needs comes from the artifact: weights, network settings, vocabulary and
preprocessing settings. Nothing is downloaded or guessed.

Requests: `text/plain` (one review) or `application/json` with `{"review": "..."}`
or `{"reviews": [...]}` (at most 64). Responses: `{"sentiment": "positive" |
"negative", "score": P(positive)}`, or `{"predictions": [...]}` for a batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from network import NetworkConfig, SentimentNetwork
from preprocess import PAD_ID, Tokenizer, Vocabulary

JSON = "application/json"
TEXT = "text/plain"
MAX_BATCH = 64
MAX_REVIEW_CHARS = int(os.environ.get("MAX_REVIEW_CHARS", "20000"))
WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "model_config.json"
VOCABULARY_FILE = "vocabulary.json"

try:
    # The serving container answers with this error's status code and message;
    # any other exception becomes a 500.
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ServingError
except ImportError:  # outside the container: same attributes, same meaning

    class _ServingError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            super().__init__(status_code, message, phrase)
            self.status_code = status_code
            self.message = message
            self.phrase = phrase


class RequestError(_ServingError):
    """A request the model cannot answer; `status_code` says why (400, 406, 413, 415)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message, message)

    def __str__(self) -> str:
        return self.message


class ArtifactError(RuntimeError):
    """A model artifact file that is missing or cannot be read."""


@dataclass(frozen=True)
class Request:
    reviews: list[str]
    batch: bool


@dataclass(frozen=True)
class Prediction:
    results: list[dict]
    batch: bool


@dataclass
class LoadedModel:
    network: SentimentNetwork
    vocabulary: Vocabulary
    tokenizer: Tokenizer


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"model artifact file missing: {path}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"model artifact file corrupt: {path}: {error}") from None


def _read_settings(path: Path, parse):
    """`parse` of a JSON file; a file of the wrong shape is an error that names it."""
    try:
        return parse(_read_json(path))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, ArtifactError):
            raise
        raise ArtifactError(f"model artifact file invalid: {path}: {error!r}") from None


def model_fn(model_dir: str) -> LoadedModel:
    directory = Path(model_dir)
    vocabulary = _read_settings(directory / VOCABULARY_FILE, Vocabulary.from_json)
    config = _read_settings(directory / CONFIG_FILE, NetworkConfig.from_json)
    if config.vocabulary_size != len(vocabulary):
        raise ArtifactError(
            f"{CONFIG_FILE} expects {config.vocabulary_size} word ids, "
            f"{VOCABULARY_FILE} has {len(vocabulary)}"
        )
    weights = directory / WEIGHTS_FILE
    network = SentimentNetwork(config)
    try:
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except FileNotFoundError:
        raise ArtifactError(f"model artifact file missing: {weights}") from None
    except Exception as error:  # torch raises several types for a damaged file
        raise ArtifactError(f"model artifact file corrupt: {weights}: {error}") from None
    network.eval()
    return LoadedModel(network, vocabulary, Tokenizer(vocabulary.settings))


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _check_review(review: object, where: str) -> str:
    if not isinstance(review, str):
        raise RequestError(400, f"{where} must be a string")
    if not review.strip():
        raise RequestError(400, f"{where} is empty")
    if len(review) > MAX_REVIEW_CHARS:
        raise RequestError(
            413, f"{where} has {len(review)} characters; the limit is {MAX_REVIEW_CHARS}"
        )
    return review


def input_fn(request_body: bytes | str, request_content_type: str) -> Request:
    media_type = _media_type(request_content_type)
    if media_type not in (JSON, TEXT):
        raise RequestError(
            415, f"unsupported content type {request_content_type!r}; send {JSON} or {TEXT}"
        )
    if isinstance(request_body, bytes | bytearray):
        try:
            request_body = bytes(request_body).decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(400, "the request body is not valid UTF-8") from None
    if media_type == TEXT:
        return Request([_check_review(request_body, "the review")], batch=False)
    try:
        document = json.loads(request_body)
    except ValueError:
        raise RequestError(400, "the request body is not valid JSON") from None
    if isinstance(document, dict) and set(document) == {"review"}:
        return Request([_check_review(document["review"], '"review"')], batch=False)
    if isinstance(document, dict) and set(document) == {"reviews"}:
        reviews = document["reviews"]
        if not isinstance(reviews, list) or not reviews:
            raise RequestError(400, '"reviews" must be a non-empty list of strings')
        if len(reviews) > MAX_BATCH:
            raise RequestError(
                400, f'"reviews" has {len(reviews)} reviews; at most {MAX_BATCH} per request'
            )
        checked = [_check_review(review, f'"reviews"[{i}]') for i, review in enumerate(reviews)]
        return Request(checked, batch=True)
    raise RequestError(400, 'send {"review": "..."} or {"reviews": ["...", ...]}')


def encode_batch(reviews: list[str], model: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded word ids and lengths, preprocessed exactly as the training data was."""
    encoded = [model.vocabulary.ids(model.tokenizer(review)) for review in reviews]
    # A review of stopwords only gets one padding step to read, as in training
    # (dataset.padded_batch).
    encoded = [ids or [PAD_ID] for ids in encoded]
    longest = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), longest), PAD_ID, dtype=torch.long)
    for row, review_ids in enumerate(encoded):
        ids[row, : len(review_ids)] = torch.tensor(review_ids, dtype=torch.long)
    return ids, torch.tensor([len(review_ids) for review_ids in encoded], dtype=torch.long)


def predict_fn(request: Request, model: LoadedModel) -> Prediction:
    ids, lengths = encode_batch(request.reviews, model)
    with torch.inference_mode():
        scores = torch.sigmoid(model.network(ids, lengths)).tolist()
    results = [
        {"sentiment": "positive" if score >= 0.5 else "negative", "score": round(score, 6)}
        for score in scores
    ]
    return Prediction(results, request.batch)


def output_fn(prediction: Prediction, accept: str | None) -> tuple[str, str]:
    accepted = [_media_type(part) for part in (accept or JSON).split(",")]
    if not {JSON, "application/*", "*/*"} & set(accepted):
        raise RequestError(406, f"cannot answer in {accept!r}; this model answers in {JSON}")
    body = {"predictions": prediction.results} if prediction.batch else prediction.results[0]
    return json.dumps(body), JSON
