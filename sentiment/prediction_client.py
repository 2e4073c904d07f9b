"""``sentiment predict``: one review sent to the prediction API, local or deployed."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

# A little over API Gateway's 29 s integration timeout, so its own answer can still arrive.
TIMEOUT_SECONDS = 30.0
LOW_CONFIDENCE_NOTE = (
    "The model found little to go on in this review (few words it knows, or no clear opinion), "
    "so treat this verdict as a guess."
)


@dataclass(frozen=True)
class Verdict:
    sentiment: str
    score: float
    low_confidence: bool = False

    def __str__(self) -> str:
        verdict = f"{self.sentiment.upper()} (score {self.score:.4f})"
        return f"{verdict}\n{LOW_CONFIDENCE_NOTE}" if self.low_confidence else verdict


class PredictionError(Exception):
    """The API could not be reached or answered with an error; the message says which."""


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    # The Lambda answers {"error": {"message"}}; API Gateway's own errors {"message"}.
    if not isinstance(body, dict):
        body = {}
    error = body.get("error")
    message = (error if isinstance(error, dict) else body).get("message")
    if not isinstance(message, str) or not message.strip():
        message = "the API answered without an explanation"
    return f"{message} (HTTP {response.status_code})"


def predict(api_url: str, review: str, timeout: float = TIMEOUT_SECONDS) -> Verdict:
    try:
        response = httpx.post(api_url, json={"review": review}, timeout=timeout)
    except httpx.TimeoutException:
        raise PredictionError(f"{api_url} did not answer within {timeout:.0f} s") from None
    except httpx.HTTPError as error:
        raise PredictionError(f"could not reach {api_url}: {error}") from None
    if response.is_error:
        raise PredictionError(_error_message(response))
    try:
        body = response.json()
        verdict = Verdict(
            str(body["sentiment"]), float(body["score"]), body.get("low_confidence") is True
        )
    except (ValueError, TypeError, KeyError):
        raise PredictionError(f"{api_url} sent an answer that is not a verdict") from None
    return verdict
