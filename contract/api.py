"""The prediction API's shape, which the CDK app deploys and the local stack emulates.

API Gateway answers the CORS preflight itself (a mock integration) and refuses every
method but POST on a route before the Lambda runs, so the handlers see only POSTs; the
API emulator answers the same way from these values.
"""

# The two resources, each POST only: a verdict on a review, and feedback on a verdict.
ROUTE = "predict"
FEEDBACK_ROUTE = "feedback"
PREFLIGHT_ALLOWED_METHODS = ("POST",)
PREFLIGHT_ALLOWED_HEADERS = ("Content-Type",)
PREFLIGHT_MAX_AGE_SECONDS = 3600
# The function's timeout: above the handler's SageMaker retries (2 x (2 s connect + 8 s
# read)) and below API Gateway's 29 s integration timeout.
FUNCTION_TIMEOUT_SECONDS = 25
# The endpoint's one production variant, which the runtime names in every answer.
ENDPOINT_VARIANT = "AllTraffic"
# With shadow testing on, the variant that answers a copy of each request; its answers are
# only recorded (data capture, under this name), never returned.
SHADOW_VARIANT = "Shadow"


def preflight_headers() -> dict[str, str]:
    """The preflight answer's CORS headers, beside Access-Control-Allow-Origin."""
    return {
        "Access-Control-Allow-Methods": ", ".join(PREFLIGHT_ALLOWED_METHODS),
        "Access-Control-Allow-Headers": ", ".join(PREFLIGHT_ALLOWED_HEADERS),
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
    }
