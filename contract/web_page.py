"""How the web page is served, deployed or local: its generated settings file and security headers.

CloudFront adds these headers to the deployed page (``stacks.website``) and the local site server
sends the very same (``sentiment.site_server``). This module imports nothing from aws_cdk, so that
the local server does not start jsii's Node.js process.
"""

from __future__ import annotations

from contract.limits import MAX_REVIEW_CHARS

# Generated at deployment (page_settings); frontend/app.js reads it by this name.
CONFIG_FILE = "config.json"

# Two years, subdomains included: what browsers' HSTS preload lists require.
HSTS_MAX_AGE_SECONDS = 730 * 24 * 60 * 60
HSTS_INCLUDE_SUBDOMAINS = True
FRAME_OPTION = "DENY"
REFERRER_POLICY = "no-referrer"


def page_settings(
    api_url: str,
    capture_retention_days: int | None = None,
    feedback_url: str | None = None,
    feedback_retention_days: int | None = None,
) -> dict[str, object]:
    """The contents of CONFIG_FILE: where the API is, the review limit it enforces, for how
    many days the reviews sent are kept (None: they are not recorded), where feedback on a
    verdict goes (None: the page asks for none) and for how many days it is kept (None: no
    set time, as on a developer's machine); the page tells its visitors what is kept."""
    return {
        "apiUrl": api_url,
        "maxReviewChars": MAX_REVIEW_CHARS,
        "captureRetentionDays": capture_retention_days,
        "feedbackUrl": feedback_url,
        "feedbackRetentionDays": feedback_retention_days,
    }


def content_security_policy(api_origin: str) -> str:
    """Only this site's own files, and calls to the prediction API; no inline script."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "manifest-src 'self'",
            f"connect-src 'self' {api_origin}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(api_origin: str) -> dict[str, str]:
    """The headers by name, as a browser receives them with a page that calls ``api_origin``."""
    hsts = f"max-age={HSTS_MAX_AGE_SECONDS}"
    if HSTS_INCLUDE_SUBDOMAINS:
        hsts += "; includeSubDomains"
    return {
        "Content-Security-Policy": content_security_policy(api_origin),
        "Strict-Transport-Security": hsts,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": FRAME_OPTION,
        "Referrer-Policy": REFERRER_POLICY,
    }
