// The page's behaviour: read config.json, send the review to the prediction API, show the verdict.
// Everything the user typed or the API answered reaches the page through textContent (or text
// nodes and elements built here) only, never as HTML.

// API Gateway gives up after 29 s; wait a little longer so its own answer can still arrive.
const REQUEST_TIMEOUT_MS = 30000;
const EXCERPT_CHARS = 180;
// Marks: a word's strength is its |contribution| against the review's largest one. Below the
// weakest step, or below what two decimals can show, a word the model read is left unmarked:
// it barely moved the verdict.
const STRENGTHS = [
  [0.6, "strong"],
  [0.3, "moderate"],
  [0.1, "weak"],
];
const SMALLEST_SHOWN = 0.005;
// Words listed on each side of the verdict.
const STRONGEST_SHOWN = 5;
const WORD_STATUSES = new Set(["read", "dropped", "not_read"]);

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
const explanation = document.getElementById("explanation");
const legendNotRead = document.getElementById("legend-not-read");
const notReadNote = document.getElementById("not-read-note");
const markedHint = document.getElementById("marked-hint");
const markedReview = document.getElementById("marked-review");
const wordDetail = document.getElementById("word-detail");
const explanationScale = document.getElementById("explanation-scale");
const strongest = {
  positive: {
    list: document.getElementById("toward-positive"),
    none: document.getElementById("toward-positive-none"),
  },
  negative: {
    list: document.getElementById("toward-negative"),
    none: document.getElementById("toward-negative-none"),
  },
};
const error = document.getElementById("error");
const feedback = document.getElementById("feedback");
const feedbackQuestion = document.getElementById("feedback-question");
const feedbackChoices = document.getElementById("feedback-choices");
const feedbackButtons = [
  document.getElementById("feedback-first"),
  document.getElementById("feedback-second"),
];
const feedbackStatus = document.getElementById("feedback-status");
const feedbackUndo = document.getElementById("feedback-undo");

const numberFormat = new Intl.NumberFormat("en");
const contributionFormat = new Intl.NumberFormat("en", {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
  signDisplay: "exceptZero",
});

let config = null;
let busy = false;
let wasTooLong = false;
// The verdict feedback would be about: its prediction id, and whether feedback is on record.
let asked = null;
// The marked words of the explanation shown, in text order, and what each one did in words.
let markedWords = [];
const wordDetails = new WeakMap();

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
  // Absent or null when the deployment takes no feedback.
  const feedbackUrl = typeof data.feedbackUrl === "string" && data.feedbackUrl !== ""
    ? new URL(data.feedbackUrl, document.baseURI).href
    : null;
  return {
    apiUrl: new URL(data.apiUrl, document.baseURI).href,
    maxChars: data.maxReviewChars,
    captureDays: days,
    feedbackUrl,
    feedbackDays: Number.isInteger(data.feedbackRetentionDays) && data.feedbackRetentionDays > 0
      ? data.feedbackRetentionDays
      : null,
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

function showFeedbackNotice(url, days) {
  const notice = document.getElementById("feedback-notice");
  if (url === null) return;
  const kept = days === null
    ? ""
    : `, and deleted after ${numberFormat.format(days)} ${days === 1 ? "day" : "days"}`;
  notice.textContent = "If you say whether a verdict was right, your answer is kept with the "
    + `review to train the next model${kept}.`;
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
  explanation.setAttribute("aria-busy", String(value));
  submit.classList.toggle("is-busy", value);
  submitLabel.textContent = value ? "Analyzing…" : "Analyze sentiment";
  review.readOnly = value;
  refreshForm();
}

function showError(message) {
  result.hidden = true;
  hideExplanation();
  feedback.hidden = true;
  asked = null;
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

/** A contribution as the page writes it: two decimals, a sign, and a true minus. */
function formatContribution(value) {
  return contributionFormat.format(value).replace("-", "\u2212");
}

/** The answer's explanation if this page can draw it over a review of `length` code points. */
function readExplanation(value, length) {
  if (typeof value !== "object" || value === null || !Array.isArray(value.words)) return null;
  if (!Number.isFinite(value.logit) || !Number.isFinite(value.base)) return null;
  let previousEnd = 0;
  for (const word of value.words) {
    if (typeof word !== "object" || word === null) return null;
    const { start, end, status, contribution } = word;
    // In text order, apart, and within the review: anything else would mark the wrong words.
    if (!Number.isInteger(start) || !Number.isInteger(end)) return null;
    if (start < previousEnd || end <= start || end > length) return null;
    if (!WORD_STATUSES.has(status)) return null;
    if (status === "read" ? !Number.isFinite(contribution) : contribution !== null) return null;
    previousEnd = end;
  }
  return value;
}

/** "strong", "moderate", "weak", or null for a word that barely moved the verdict. */
function strengthOf(contribution, largest) {
  if (Math.abs(contribution) < SMALLEST_SHOWN) return null;
  const share = Math.abs(contribution) / largest;
  return STRENGTHS.find(([least]) => share >= least)?.[1] ?? null;
}

function textSpan(className, text) {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  return span;
}

/** The words that carried the most, each word (as lower case) summed over its occurrences. */
function strongestWords(chars, read) {
  const totals = new Map();
  for (const word of read) {
    const shown = chars.slice(word.start, word.end).join("");
    const key = shown.toLocaleLowerCase("en");
    const entry = totals.get(key) ?? { shown, total: 0, times: 0 };
    entry.total += word.contribution;
    entry.times += 1;
    totals.set(key, entry);
  }
  // What would read "+0.00" says nothing: left out.
  const entries = [...totals.values()].filter(({ total }) => Math.abs(total) >= SMALLEST_SHOWN);
  return {
    positive: entries.filter((e) => e.total > 0).sort((a, b) => b.total - a.total),
    negative: entries.filter((e) => e.total < 0).sort((a, b) => a.total - b.total),
  };
}

function showStrongest({ list, none }, entries) {
  list.replaceChildren(
    ...entries.slice(0, STRONGEST_SHOWN).map(({ shown, total, times }) => {
      const item = document.createElement("li");
      const word = textSpan("strongest-word", shown);
      if (times > 1) word.append(textSpan("strongest-times", ` (${times}×)`));
      item.append(word, " ", textSpan("strongest-amount", formatContribution(total)));
      return item;
    }),
  );
  list.hidden = entries.length === 0;
  none.hidden = entries.length > 0;
}

/** A marked word: a button, so that the keyboard reaches it and its name says what it did. */
function markedWord(shown, contribution, strength) {
  const direction = contribution > 0 ? "positive" : "negative";
  const mark = document.createElement("button");
  mark.type = "button";
  mark.className = `word is-${direction} is-${strength}`;
  mark.textContent = shown;
  mark.tabIndex = -1;
  mark.setAttribute("aria-label", `${shown}, pushes toward ${direction}, ${strength}`);
  wordDetails.set(
    mark,
    `“${shown}”: ${formatContribution(contribution)}, pushes toward ${direction} (${strength})`,
  );
  return mark;
}

/** Draw the review with its words marked; false (and nothing shown) without an explanation. */
function showExplanation(text, value) {
  const chars = Array.from(text);
  const explained = readExplanation(value, chars.length);
  if (explained === null) {
    hideExplanation();
    return false;
  }
  const read = explained.words.filter((word) => word.status === "read");
  const largest = read.reduce((most, word) => Math.max(most, Math.abs(word.contribution)), 0);
  // The review as typed, less the blank lines and spaces around it.
  let at = chars.findIndex((char) => !/\s/u.test(char));
  let last = chars.findLastIndex((char) => !/\s/u.test(char)) + 1;
  if (at < 0) [at, last] = [0, 0];
  const pieces = [];
  const marks = [];
  let notRead = 0;
  for (const word of explained.words) {
    if (word.start > at) pieces.push(chars.slice(at, word.start).join(""));
    const shown = chars.slice(word.start, word.end).join("");
    if (word.status === "not_read") {
      if (notRead === 0) pieces.push(textSpan("not-read-marker", "not read from here on:"), " ");
      notRead += 1;
      pieces.push(textSpan("is-not-read", shown));
    } else if (word.status === "dropped") {
      pieces.push(textSpan("is-dropped", shown));
    } else {
      const strength = strengthOf(word.contribution, largest);
      if (strength === null) {
        pieces.push(shown);
      } else {
        const mark = markedWord(shown, word.contribution, strength);
        marks.push(mark);
        pieces.push(mark);
      }
    }
    at = Math.max(at, word.end);
  }
  if (last > at) pieces.push(chars.slice(at, last).join(""));
  markedReview.replaceChildren(...pieces);
  markedWords = marks;
  // One stop for the Tab key; the arrow keys go from word to word (roving tabindex).
  if (marks.length > 0) marks[0].tabIndex = 0;
  markedHint.hidden = marks.length === 0;
  wordDetail.textContent = "";
  legendNotRead.hidden = notRead === 0;
  notReadNote.hidden = notRead === 0;

  const totals = strongestWords(chars, read);
  showStrongest(strongest.positive, totals.positive);
  showStrongest(strongest.negative, totals.negative);
  explanationScale.textContent = "Each number is how far the word moved the model’s log-odds, "
    + "its score before it becomes a percentage: above zero toward positive, below zero toward "
    + `negative. With a starting point of ${formatContribution(explained.base)} that no word `
    + `carries, all the words add up to ${formatContribution(explained.logit)}.`;
  explanation.hidden = false;
  return true;
}

function hideExplanation() {
  explanation.hidden = true;
  markedReview.replaceChildren();
  markedWords = [];
  wordDetail.textContent = "";
  for (const side of Object.values(strongest)) side.list.replaceChildren();
}

function showWordDetail(target) {
  const detail = wordDetails.get(target);
  if (detail !== undefined) wordDetail.textContent = detail;
}

function focusWord(event) {
  const index = markedWords.indexOf(event.target);
  if (index < 0) return;
  const next = {
    ArrowRight: index + 1,
    ArrowDown: index + 1,
    ArrowLeft: index - 1,
    ArrowUp: index - 1,
    Home: 0,
    End: markedWords.length - 1,
  }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  markedWords[Math.min(markedWords.length - 1, Math.max(0, next))].focus();
}

/** Ask whether the verdict was right: one click says so, or gives the other label. */
function askFeedback({ sentiment, low_confidence: guess, prediction_id: predictionId }) {
  asked = null;
  feedback.hidden = true;
  if (config.feedbackUrl === null || typeof predictionId !== "string") return;
  const other = sentiment === "positive" ? "negative" : "positive";
  // A guess is better answered by naming the label than by judging the guess.
  const choices = guess === true
    ? [["It's positive", "positive"], ["It's negative", "negative"]]
    : [["Yes, it's right", sentiment], [`No, it's ${other}`, other]];
  feedbackQuestion.textContent = guess === true
    ? "The model was not sure. Which is it?"
    : "Was this verdict right?";
  choices.forEach(([text, label], i) => {
    feedbackButtons[i].textContent = text;
    feedbackButtons[i].dataset.label = label;
  });
  asked = { predictionId };
  showFeedbackChoices("");
  feedback.hidden = false;
}

function showFeedbackChoices(status) {
  feedbackChoices.hidden = false;
  feedbackUndo.hidden = true;
  feedbackStatus.textContent = status;
}

async function sendFeedback(label) {
  const response = await fetch(config.feedbackUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ prediction_id: asked.predictionId, label }),
    credentials: "omit",
    cache: "no-store",
  }).catch(() => {
    throw new Problem("Could not reach the sentiment API to send that. Please try again.");
  });
  if (!response.ok) throw new Problem(apiErrorMessage(await readJson(response), response.status));
}

async function giveFeedback(button) {
  if (asked === null || feedback.getAttribute("aria-busy") === "true") return;
  const label = button.dataset.label;
  feedback.setAttribute("aria-busy", "true");
  try {
    await sendFeedback(label);
    feedbackChoices.hidden = true;
    feedbackUndo.hidden = false;
    feedbackStatus.textContent = `Thank you: recorded as ${label}. It helps train the next model.`;
    // The clicked button is gone: keep the keyboard user's place on what replaced it.
    feedbackUndo.focus();
  } catch (failure) {
    feedbackStatus.textContent = failure.message;
  } finally {
    feedback.removeAttribute("aria-busy");
  }
}

async function takeFeedbackBack() {
  if (asked === null || feedback.getAttribute("aria-busy") === "true") return;
  feedback.setAttribute("aria-busy", "true");
  try {
    await sendFeedback(null);
    showFeedbackChoices("Taken back: nothing is recorded for this verdict.");
    feedbackButtons[0].focus();
  } catch (failure) {
    feedbackStatus.textContent = failure.message;
  } finally {
    feedback.removeAttribute("aria-busy");
  }
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
      // Always with the words that moved the verdict; an answer without them still shows.
      body: JSON.stringify({ review: text, explain: true }),
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
    const answer = await requestVerdict(text);
    showVerdict(text, answer);
    // The marked review replaces the excerpt when there is one.
    excerpt.hidden = showExplanation(text, answer.explanation);
    askFeedback(answer);
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

for (const button of feedbackButtons) {
  button.addEventListener("click", () => giveFeedback(button));
}
feedbackUndo.addEventListener("click", takeFeedbackBack);

markedReview.addEventListener("keydown", focusWord);
markedReview.addEventListener("focusin", (event) => {
  if (!markedWords.includes(event.target)) return;
  for (const mark of markedWords) mark.tabIndex = mark === event.target ? 0 : -1;
  showWordDetail(event.target);
});
markedReview.addEventListener("pointerover", (event) => showWordDetail(event.target));
markedReview.addEventListener("click", (event) => showWordDetail(event.target));

refreshForm();
try {
  config = await loadConfig();
  showCaptureNotice(config.captureDays);
  showFeedbackNotice(config.feedbackUrl, config.feedbackDays);
  refreshForm();
} catch (failure) {
  showError(failure.message);
}
