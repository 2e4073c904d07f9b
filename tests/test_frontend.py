"""The web page in headless Chromium: verdicts, errors, busy state, markup as text, layout.

The page is served over HTTP with the Content-Security-Policy the deployed site sends, and
talks to a small stand-in for the prediction API: a real HTTP server on loopback, on another
origin (so CORS is exercised), answering as the Lambda does. The page against the real local
stack is tested with `sentiment up`.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from contract import web_page
from contract.web_page import content_security_policy

pytestmark = pytest.mark.browser

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

MODEL_FAILURE = {
    "error": {"code": "model_error", "message": "The model failed to score this review."}
}
# What a reader (and a screen reader) gets under a verdict flagged low_confidence.
LOW_CONFIDENCE_NOTE = (
    "Low confidence. The model found little to go on in this review (few words it knows, or no "
    "clear opinion), so treat this verdict as a guess."
)


@dataclass
class FakeApi:
    """Answers POST /predict by keywords in the review; remembers what it was sent."""

    origin: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, review: str) -> tuple[int, dict[str, Any]]:
        if "HANG" in review:
            time.sleep(3)
        if "SLOW" in review:
            time.sleep(0.8)
        if "FAIL" in review:
            return 502, MODEL_FAILURE
        if "GATEWAY" in review:
            return 504, {"message": "Endpoint request timed out"}
        if "BROKEN" in review:
            return 200, {"sentiment": "maybe"}
        if "BADFLAG" in review:
            return 200, {"sentiment": "positive", "score": 0.93, "low_confidence": "no"}
        if "UNSURE" in review:
            return 200, {"sentiment": "positive", "score": 0.56, "low_confidence": True}
        if "SURE" in review:
            return 200, {"sentiment": "negative", "score": 0.0047, "low_confidence": False}
        if "CERTAIN" in review:
            return 200, {"sentiment": "positive", "score": 0.93, "low_confidence": False}
        if "awful" in review or "<img" in review:
            return 200, {"sentiment": "negative", "score": 0.12}
        return 200, {"sentiment": "positive", "score": 0.93}


def _api_handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", api.origin)
            self.send_header("Vary", "Origin")

        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "OPTIONS, POST")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")
            self.end_headers()

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = json.loads(raw)
            api.requests.append({"content_type": self.headers["Content-Type"], "body": body})
            status, answer = api.answer(body["review"])
            payload = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self._cors()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the page gave up waiting (the timeout test)

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


class _SiteHandler(SimpleHTTPRequestHandler):
    csp = ""

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", self.csp)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[str]:
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Site:
    url: str
    root: Path
    api: FakeApi
    api_url: str
    down_api_url: str

    def configure(self, **config: Any) -> None:
        settings = {**web_page.page_settings(self.api_url), **config}
        (self.root / "config.json").write_text(
            json.dumps({name: value for name, value in settings.items() if value is not None})
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    api = FakeApi()
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(FRONTEND, root, dirs_exist_ok=True)
    down_origin = f"http://127.0.0.1:{unused_port()}"
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _api_handler(api))) as api_origin:
        # The very policy CloudFront sends: nothing inline, and no origin but the API's (here
        # two: the stand-in, and one where nothing listens).
        policy = content_security_policy(f"{api_origin} {down_origin}")
        handler = type("Handler", (_SiteHandler,), {"csp": policy})
        site_server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
        with serving(site_server) as url:
            api.origin = url
            yield Site(
                url=url + "/",
                root=root,
                api=api,
                api_url=f"{api_origin}/predict",
                down_api_url=f"{down_origin}/predict",
            )


@dataclass
class OpenedPage:
    page: Any
    console_errors: list[str]


@pytest.fixture
def open_page(browser: Any, site: Site) -> Iterator[Any]:
    contexts = []

    def open_(
        viewport: dict[str, int] | None = None,
        color_scheme: str = "light",
        bypass_csp: bool = False,
        **config: Any,
    ) -> OpenedPage:
        site.configure(**config)
        site.api.requests.clear()
        context = browser.new_context(
            viewport=viewport or {"width": 1280, "height": 900},
            color_scheme=color_scheme,
            bypass_csp=bypass_csp,
        )
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(site.url)
        return OpenedPage(page, errors)

    yield open_
    for context in contexts:
        context.close()


def submit_review(page: Any, text: str) -> None:
    page.get_by_label("Your review").fill(text)
    page.get_by_role("button", name="Analyze sentiment").click()


def assert_no_policy_violations(opened: OpenedPage) -> None:
    violations = [e for e in opened.console_errors if "Content Security Policy" in e]
    page_errors = [e for e in opened.console_errors if "Failed to load resource" not in e]
    assert violations == []
    assert page_errors == []


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_positive_verdict_with_confidence_bar(open_page: Any, site: Site) -> None:
    opened = open_page()
    page = opened.page
    review = "A gripping story, wonderful acting and a score I still hum."

    submit_review(page, review)

    result = page.locator("#result")
    result.wait_for(state="visible")
    assert page.locator("#verdict").text_content() == "POSITIVE"
    assert page.locator("#confidence-value").text_content() == "93%"
    page.wait_for_timeout(500)  # the bar's width transition
    fill = page.locator("#confidence-bar").bounding_box()["width"]
    track = page.locator(".bar").bounding_box()["width"]
    assert fill / track == pytest.approx(0.93, abs=0.01)
    assert site.api.requests == [{"content_type": "application/json", "body": {"review": review}}]
    assert_no_policy_violations(opened)
    screenshot(page, "frontend-desktop-positive.png")


def test_confidence_never_reads_100_percent(open_page: Any) -> None:
    # A score of 0.0047 is a 99.53 % confident NEGATIVE: rounded, that would claim certainty.
    page = open_page().page
    submit_review(page, "Dreadful from start to end. SURE")

    page.locator("#result").wait_for(state="visible")
    assert page.locator("#verdict").text_content() == "NEGATIVE"
    assert page.locator("#confidence-value").text_content() == "99%"


def test_ctrl_enter_submits_and_negative_confidence_is_one_minus_score(open_page: Any) -> None:
    page = open_page().page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "review"

    page.keyboard.type("An awful, tedious film.")
    # Until config.json has loaded the form is not ready (its button disabled) and the
    # shortcut, like the button, does nothing: wait as a user would see it.
    page.wait_for_selector("#submit:enabled")
    page.keyboard.press("Control+Enter")

    page.locator("#result").wait_for(state="visible")
    assert page.locator("#verdict").text_content() == "NEGATIVE"
    assert page.locator("#confidence-value").text_content() == "88%"
    assert page.locator("#result").get_attribute("class").split() == [
        "card",
        "result",
        "is-negative",
    ]


def test_markup_in_a_review_is_shown_as_text_and_never_runs(open_page: Any) -> None:
    opened = open_page()
    page = opened.page
    attack = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> meh'

    submit_review(page, attack)

    page.locator("#result").wait_for(state="visible")
    assert page.locator("#excerpt").text_content() == attack
    assert page.locator("img").count() == 0
    assert page.locator("#result script").count() == 0
    assert page.evaluate("window.pwned") is None
    assert_no_policy_violations(opened)
    screenshot(page, "frontend-markup-as-text.png")


def test_busy_state_while_waiting(open_page: Any, site: Site) -> None:
    page = open_page().page
    button = page.locator("#submit")

    submit_review(page, "SLOW but fine.")

    # Busy, the button says it is unavailable but keeps the focus (aria-disabled), and a
    # second press sends nothing.
    assert button.get_attribute("aria-disabled") == "true"
    button.click(force=True)  # Playwright would wait for an aria-disabled button; a user need not
    assert page.locator("#submit-label").text_content() == "Analyzing…"
    assert page.locator("#result-region").get_attribute("aria-busy") == "true"
    assert page.locator("#review").evaluate("element => element.readOnly")
    screenshot(page, "frontend-busy.png")
    page.locator("#result").wait_for(state="visible")
    assert button.get_attribute("aria-disabled") == "false"
    assert page.locator("#submit-label").text_content() == "Analyze sentiment"
    assert page.locator("#result-region").get_attribute("aria-busy") == "false"
    assert len(site.api.requests) == 1


@pytest.mark.parametrize(
    ("review", "message"),
    [
        ("FAIL please", "The model failed to score this review."),
        ("GATEWAY please", "Endpoint request timed out"),
        ("BROKEN please", "The sentiment API sent an answer this page cannot read."),
        ("BADFLAG please", "The sentiment API sent an answer this page cannot read."),
    ],
    ids=["our error body", "API Gateway error body", "unreadable answer", "unreadable flag"],
)
def test_api_failure_shows_its_message(open_page: Any, review: str, message: str) -> None:
    page = open_page().page
    submit_review(page, "A fine film.")
    page.locator("#result").wait_for(state="visible")

    submit_review(page, review)

    error = page.get_by_role("alert").locator("#error")
    error.wait_for(state="visible")
    assert error.text_content() == message
    assert page.locator("#result").is_hidden()
    assert page.locator("#submit").is_enabled()


def note_text(page: Any) -> str:
    return " ".join(page.locator("#low-confidence").text_content().split())


def test_low_confidence_note_is_announced_with_the_verdict_and_only_then(open_page: Any) -> None:
    opened = open_page()
    page = opened.page
    region = page.locator("#result-region")
    note = region.locator("#low-confidence")
    # The region that announces each verdict, whole, holds the note.
    assert (region.get_attribute("aria-live"), region.get_attribute("aria-atomic")) == (
        "polite",
        "true",
    )

    for review, shown in [
        ("UNSURE about this one", True),
        ("CERTAIN it is good", False),
        ("UNSURE again", True),
        ("A fine film, from a model that sends no flag", False),
    ]:
        submit_review(page, review)
        page.wait_for_function(
            "text => document.getElementById('excerpt').textContent === text", arg=review
        )
        assert note.is_visible() is shown, review
        # What assistive technology is given: the note's words, or nothing of them.
        assert ("treat this verdict as a guess" in region.aria_snapshot()) is shown, review
        if shown:
            assert note_text(page) == LOW_CONFIDENCE_NOTE
            assert page.locator("#verdict").text_content() == "POSITIVE"
            screenshot(page, "frontend-low-confidence.png")
    assert_no_policy_violations(opened)


def test_unreachable_api_is_explained(open_page: Any, site: Site) -> None:
    opened = open_page(apiUrl=site.down_api_url)
    page = opened.page

    submit_review(page, "A fine film.")

    error = page.locator("#error")
    error.wait_for(state="visible")
    assert error.text_content().startswith("Could not reach the sentiment API")
    screenshot(page, "frontend-desktop-unreachable.png")


def test_slow_api_times_out_with_a_readable_message(open_page: Any) -> None:
    opened = open_page()
    page = opened.page
    page.clock.install()
    page.reload()

    submit_review(page, "HANG on")
    page.clock.run_for(31_000)

    error = page.locator("#error")
    error.wait_for(state="visible")
    assert error.text_content() == (
        "The sentiment API did not answer within 30 seconds. Please try again."
    )


def test_submit_needs_a_review_within_the_limit(open_page: Any) -> None:
    page = open_page(maxReviewChars=10).page
    page.wait_for_selector("#review-count:has-text('/ 10')")  # config.json read
    button = page.locator("#submit")
    review = page.get_by_label("Your review")
    count = page.locator("#review-count")

    assert button.is_disabled()
    review.fill("   \n ")
    assert button.is_disabled()
    review.fill("🎬" * 10)
    assert count.text_content() == "10 / 10 characters"
    assert button.is_enabled()
    review.fill("🎬" * 11)
    assert count.text_content() == "1 character over the 10 limit"
    assert button.is_disabled()
    review.press("Control+Enter")
    page.wait_for_timeout(200)
    assert page.locator("#result").is_hidden()


def test_crossing_the_limit_is_announced_once_each_way(open_page: Any) -> None:
    page = open_page(maxReviewChars=10).page
    review = page.get_by_label("Your review")
    status = page.get_by_role("status")
    page.wait_for_selector("#review-count:has-text('/ 10')")

    review.fill("x" * 11)
    assert status.text_content() == "1 character over the 10 limit"
    review.fill("x" * 12)  # further over: the count changes, the announcement does not
    assert status.text_content() == "1 character over the 10 limit"
    review.fill("x" * 9)
    assert status.text_content() == "Back within the 10-character limit."
    assert status.bounding_box()["width"] <= 1  # for screen readers; the count shows it


@pytest.mark.parametrize("key", ["Enter", "Space"])
def test_submitting_from_the_button_keeps_the_focus_on_it(open_page: Any, key: str) -> None:
    page = open_page().page
    page.get_by_label("Your review").fill("A fine film, if SLOW to start.")
    page.wait_for_selector("#submit:enabled")
    page.locator("#submit").focus()

    page.keyboard.press(key)
    page.wait_for_selector("#submit.is-busy")
    assert page.evaluate("document.activeElement.id") == "submit"
    assert page.locator("#submit").get_attribute("aria-disabled") == "true"
    page.locator("#result").wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "submit"
    assert page.locator("#submit").get_attribute("aria-disabled") == "false"


def test_missing_configuration_is_reported(open_page: Any, site: Site) -> None:
    opened = open_page()
    (site.root / "config.json").unlink()
    page = opened.page
    page.reload()

    page.locator("#error").wait_for(state="visible")
    assert "config.json" in page.locator("#error").text_content()
    page.get_by_label("Your review").fill("A fine film.")
    assert page.locator("#submit").is_disabled()


def test_settings_without_the_review_limit_are_reported(open_page: Any) -> None:
    # The limit comes from config.json alone (contract/limits.py): no guess when it is missing.
    page = open_page(maxReviewChars=None).page

    page.locator("#error").wait_for(state="visible")
    assert "length limit" in page.locator("#error").text_content()
    page.get_by_label("Your review").fill("A fine film.")
    assert page.locator("#review-count").text_content() == "12 characters"
    assert page.locator("#submit").is_disabled()


@pytest.mark.parametrize("days", [30, 1, None])
def test_visitors_are_told_that_their_reviews_are_recorded_and_for_how_long(
    open_page: Any, days: int | None
) -> None:
    page = open_page(captureRetentionDays=days).page
    page.wait_for_selector("#submit:not([aria-disabled='true'])")
    page.wait_for_selector("#review-count:has-text('/ ')")  # config.json read

    notice = page.locator("#capture-notice")
    if days is None:
        assert notice.is_hidden()
    else:
        assert notice.is_visible()
        unit = "day" if days == 1 else "days"
        assert notice.text_content() == (
            "Reviews sent for scoring are recorded with their verdict, to check how well the "
            f"model does, and deleted after {days} {unit}."
        )


@pytest.mark.parametrize(
    ("url", "days", "told"),
    [
        ("https://api.example/feedback", 365, ", and deleted after 365 days."),
        # A developer's machine deletes nothing by itself: no time is promised.
        ("https://api.example/feedback", None, "."),
        (None, 365, None),
    ],
)
def test_visitors_are_told_what_feedback_keeps(
    open_page: Any, url: str | None, days: int | None, told: str | None
) -> None:
    page = open_page(feedbackUrl=url, feedbackRetentionDays=days).page
    page.wait_for_selector("#review-count:has-text('/ ')")  # config.json read

    notice = page.locator("#feedback-notice")
    if told is None:
        assert notice.is_hidden()
    else:
        assert notice.text_content() == (
            "If you say whether a verdict was right, your answer is kept with the review to "
            f"train the next model{told}"
        )


def test_phone_layout_fits_the_screen(open_page: Any) -> None:
    opened = open_page(viewport={"width": 390, "height": 844})
    page = opened.page

    submit_review(page, "A gripping story, wonderful acting and a score I still hum. " * 4)

    page.locator("#result").wait_for(state="visible")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    button = page.locator("#submit").bounding_box()
    assert button["width"] > 300 and button["height"] >= 44
    assert page.locator("#review").evaluate("e => getComputedStyle(e).fontSize") == "16px"
    page.wait_for_timeout(500)
    screenshot(page, "frontend-phone-positive.png")


def test_low_confidence_note_fits_the_narrowest_screen(open_page: Any) -> None:
    page = open_page(viewport={"width": 320, "height": 640}).page

    submit_review(page, "UNSURE " + "supercalifragilisticexpialidocious" * 4)

    note = page.locator("#low-confidence")
    note.wait_for(state="visible")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    box = note.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 320
    assert note_text(page) == LOW_CONFIDENCE_NOTE
    screenshot(page, "frontend-320px-low-confidence.png")


CONTRAST = """([foreground, background]) => {
  const rgb = (selector, property) => getComputedStyle(document.querySelector(selector))[property]
    .match(/[\\d.]+/g).slice(0, 3).map(Number);
  const luminance = (channels) => {
    const [r, g, b] = channels.map((c) => {
      const s = c / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [luminance(rgb(...foreground)), luminance(rgb(...background))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


# Text/background pairs to measure once the page shows each outcome.
CONTRAST_CASES = {
    "positive": (
        "A fine film.",
        [
            (("#verdict", "color"), ("#verdict", "backgroundColor")),
            (("#submit", "color"), ("#submit", "backgroundColor")),
            ((".intro p", "color"), ("body", "backgroundColor")),
            (("#review-count", "color"), ("#review-form", "backgroundColor")),
        ],
    ),
    "negative": ("An awful film.", [(("#verdict", "color"), ("#verdict", "backgroundColor"))]),
    "error": ("FAIL", [(("#error", "color"), ("#error", "backgroundColor"))]),
    "low-confidence": (
        "UNSURE",
        [(("#low-confidence", "color"), ("#low-confidence", "backgroundColor"))],
    ),
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("outcome", CONTRAST_CASES)
def test_text_contrast_meets_wcag_aa(open_page: Any, scheme: str, outcome: str) -> None:
    review, pairs = CONTRAST_CASES[outcome]
    page = open_page(color_scheme=scheme).page
    submit_review(page, review)
    page.locator("#result:visible, #error:visible").wait_for()
    screenshot(page, f"frontend-{scheme}-{outcome}.png")

    for foreground, background in pairs:
        ratio = page.evaluate(CONTRAST, [list(foreground), list(background)])
        assert ratio >= 4.5, f"{foreground} on {background} in {scheme}: {ratio:.2f}"


# axe-core (pinned in package.json), the accessibility engine browsers' own audits run on.
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("outcome", ["empty", *CONTRAST_CASES])
def test_axe_finds_no_accessibility_violation(open_page: Any, scheme: str, outcome: str) -> None:
    # The page's CSP refuses injected scripts, rightly: this context alone lets axe in.
    page = open_page(color_scheme=scheme, bypass_csp=True).page
    page.wait_for_load_state("networkidle")  # config.json read: the form as a visitor meets it
    if outcome != "empty":
        submit_review(page, CONTRAST_CASES[outcome][0])
        page.locator("#result:visible, #error:visible").wait_for()
    page.add_script_tag(path=str(AXE))

    results = page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
    )

    violations = [
        f"{violation['id']}: {violation['help']} ({len(violation['nodes'])} nodes: "
        f"{[node['target'] for node in violation['nodes']][:3]})"
        for violation in results["violations"]
    ]
    assert violations == []
