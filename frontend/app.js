// The page's behaviour: read config.json, send the review to the prediction API, show the verdict.
// Everything the user typed or the API answered reaches the page through textContent only.

// API Gateway gives up after 29 s; wait a little longer so its own answer can still arrive.
const REQUEST_TIMEOUT_MS = 30000;
const EXCERPT_CHARS = 180;

const form = document.getElementById("review-form");
const review = document.getElementById("review");
const count = document.getElementById("review-count");
const limitStatus = document.getElementById("review-limit");
const submit = document.getElementById("submit");
const submitLabel = document.getElementById("submit-label");
const resultRegion = document.getElementById("result-region");
const result = document.getElementById("result");
const verdict = document.getElementById("verdict");
const lowConfidence = document.getElementById("low-confidence");
const confidenceValue = document.getElementById("confidence-value");
const confidenceBar = document.getElementById("confidence-bar");
const excerpt = document.getElementById("excerpt");
const error = document.getElementById("error");

const numberFormat = new Intl.NumberFormat("en");

let config = null;
let busy = false;
let wasTooLong = false;

/** A failure worth telling the user about, in words they can act on. */
class Problem extends Error {}

/** Characters as the API counts them: code points, so an emoji is one, not two. */
function characterCount(text) {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

async function loadConfig() {
  let data;
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    data = await response.json();
  } catch {
    throw new Problem("This page could not load its settings (config.json). Reload to try again.");
  }
  if (typeof data?.apiUrl !== "string" || data.apiUrl === "") {
    throw new Problem("This page's settings (config.json) do not name the sentiment API.");
  }
  // The API's own limit, generated with the page (contract/limits.py): no copy lives here.
  if (!Number.isInteger(data.maxReviewChars) || data.maxReviewChars < 1) {
    throw new Problem("This page's settings (config.json) do not give the review length limit.");
  }
  // Absent or null when the reviews are not recorded.
  const days = Number.isInteger(data.captureRetentionDays) && data.captureRetentionDays > 0
    ? data.captureRetentionDays
    : null;
  return {
    apiUrl: new URL(data.apiUrl, document.baseURI).href,
    maxChars: data.maxReviewChars,
    captureDays: days,
  };
}

function showCaptureNotice(days) {
  const notice = document.getElementById("capture-notice");
  if (days === null) return;
  notice.textContent = `Reviews sent for scoring are recorded with their verdict, to check how `
    + `well the model does, and deleted after ${numberFormat.format(days)} `
    + `${days === 1 ? "day" : "days"}.`;
  notice.hidden = false;
}

function reviewState() {
  const text = review.value;
  const chars = characterCount(text);
  // Until config.json arrives the limit is unknown: count, refuse nothing (submit stays off).
  const maxChars = config?.maxChars ?? Infinity;
  return { text, chars, maxChars, blank: text.trim() === "", tooLong: chars > maxChars };
}

function refreshForm() {
  const { chars, maxChars, blank, tooLong } = reviewState();
  const over = chars - maxChars;
  count.textContent = tooLong
    ? `${numberFormat.format(over)} ${over === 1 ? "character" : "characters"} over the ${numberFormat.format(maxChars)} limit`
    : maxChars === Infinity
      ? `${numberFormat.format(chars)} ${chars === 1 ? "character" : "characters"}`
      : `${numberFormat.format(chars)} / ${numberFormat.format(maxChars)} characters`;
  count.classList.toggle("is-over", tooLong);
  // Said once as the limit is crossed, either way, not on every keystroke beyond it.
  if (tooLong !== wasTooLong) {
    limitStatus.textContent = tooLong
      ? count.textContent
      : `Back within the ${numberFormat.format(maxChars)}-character limit.`;
    wasTooLong = tooLong;
  }
  // Busy, the button stays focusable (aria-disabled, not disabled): a keyboard user who
  // submitted with it keeps their place, where a disabled button would drop focus to <body>.
  submit.disabled = config === null || blank || tooLong;
  submit.setAttribute("aria-disabled", String(busy));
}

function setBusy(value) {
  busy = value;
  form.setAttribute("aria-busy", String(value));
  resultRegion.setAttribute("aria-busy", String(value));
  submit.classList.toggle("is-busy", value);
  submitLabel.textContent = value ? "Analyzing…" : "Analyze sentiment";
  review.readOnly = value;
  refreshForm();
}

function showError(message) {
  result.hidden = true;
  error.textContent = message;
  error.hidden = false;
  error.scrollIntoView({ block: "nearest" });
}

function clearError() {
  error.hidden = true;
  error.textContent = "";
}

function showVerdict(text, { sentiment, score, low_confidence: guess }) {
  const positive = sentiment === "positive";
  // score is the probability of "positive"; the confidence is in whichever verdict was given.
  // Never show a certainty the model does not have: 0.9953 reads 99 %, and 0 % cannot appear.
  const percent = Math.min(99, Math.max(1, Math.round((positive ? score : 1 - score) * 100)));
  verdict.textContent = positive ? "POSITIVE" : "NEGATIVE";
  result.classList.toggle("is-positive", positive);
  result.classList.toggle("is-negative", !positive);
  // Older models do not send the flag: their verdicts get no note, as confident ones do.
  lowConfidence.hidden = guess !== true;
  confidenceValue.textContent = `${percent}%`;
  // A CSSOM property, not a style attribute: allowed by a style-src 'self' policy.
  confidenceBar.style.width = `${percent}%`;
  const chars = [...text.trim()];
  excerpt.textContent = chars.length > EXCERPT_CHARS
    ? `${chars.slice(0, EXCERPT_CHARS).join("").replace(/[\s.,;:!?]+$/u, "")}…`
    : chars.join("");
  clearError();
  result.hidden = false;
  result.scrollIntoView({ block: "nearest" });
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function apiErrorMessage(body, status) {
  // Our API answers {"error": {"message"}}; API Gateway's own responses {"message"}.
  const message = body?.error?.message ?? body?.message;
  if (typeof message === "string" && message.trim() !== "") return message;
  return `The sentiment API could not answer (HTTP ${status}). Please try again.`;
}

function isVerdict(body) {
  return (body?.sentiment === "positive" || body?.sentiment === "negative")
    && typeof body.score === "number" && body.score >= 0 && body.score <= 1
    && (body.low_confidence === undefined || typeof body.low_confidence === "boolean");
}

async function requestVerdict(text) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  let body;
  try {
    response = await fetch(config.apiUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ review: text }),
      signal: controller.signal,
      credentials: "omit",
      cache: "no-store",
    });
    body = await readJson(response);
  } catch {
    if (controller.signal.aborted) {
      throw new Problem(
        `The sentiment API did not answer within ${REQUEST_TIMEOUT_MS / 1000} seconds. Please try again.`,
      );
    }
    throw new Problem("Could not reach the sentiment API. Check your connection and try again.");
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) throw new Problem(apiErrorMessage(body, response.status));
  if (!isVerdict(body)) throw new Problem("The sentiment API sent an answer this page cannot read.");
  return body;
}

async function analyze() {
  const { text, blank, tooLong } = reviewState();
  if (busy || config === null || blank || tooLong) return;
  setBusy(true);
  try {
    showVerdict(text, await requestVerdict(text));
  } catch (failure) {
    showError(failure instanceof Problem ? failure.message : "Something went wrong. Please try again.");
  } finally {
    setBusy(false);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  analyze();
});

review.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    analyze();
  }
});

review.addEventListener("input", refreshForm);

refreshForm();
try {
  config = await loadConfig();
  showCaptureNotice(config.captureDays);
  refreshForm();
} catch (failure) {
  showError(failure.message);
}
