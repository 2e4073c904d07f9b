"""Limits every tier enforces alike: defined here once and handed to each tier.

The CDK app sets them as environment variables on the Lambda and the SageMaker model, the
local stack on its emulators, and the page reads them from its generated config.json
(web_page.page_settings). model/ and lambda_src/ run alone in AWS's containers, so each
keeps a fallback for a bare run; tests/test_contract_limits.py holds every copy (the
fallbacks, the page, lambda_src/openapi.json) to the values here.
"""

import json
from collections.abc import Sequence

# The longest review accepted, in characters (Unicode code points, as Python counts them).
MAX_REVIEW_CHARS = 20_000
# The environment variable the inference handlers and the Lambda read it from.
MAX_REVIEW_CHARS_ENV = "MAX_REVIEW_CHARS"
# The largest feedback body, in bytes: an id and a label, with room for spacing and escapes.
# Only the feedback Lambda enforces it, so it travels in the Lambda's asset (contract/).
MAX_FEEDBACK_BYTES = 1024
# The most reviews one request to the endpoint may carry (model/inference.py's MAX_BATCH).
MAX_BATCH_REVIEWS = 64


def batch_requests(texts: Sequence[str]) -> list[str]:
    """The JSON bodies that ask the endpoint about ``texts``, in order, MAX_BATCH_REVIEWS a
    request: how `sentiment evaluate`, the promotion gates and the benches ask a model."""
    return [
        json.dumps({"reviews": list(texts[start : start + MAX_BATCH_REVIEWS])})
        for start in range(0, len(texts), MAX_BATCH_REVIEWS)
    ]


def runtime_environment() -> dict[str, str]:
    """The environment variables that carry these limits to a tier."""
    return {MAX_REVIEW_CHARS_ENV: str(MAX_REVIEW_CHARS)}
