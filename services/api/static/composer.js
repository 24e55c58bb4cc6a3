// The campaign composer: live segment counter (POST /api/v1/messages/preview), one-click GSM-7 fix,
// merge-field picker, audience and schedule pickers with the next sends, CSV upload and audience preview
// (/api/v1/audiences), a test send to staff numbers for a saved campaign, and saving through the
// campaigns API (create or edit the draft, then schedule or send it).
import {
  api, clearFieldErrors, confirmAction, csrfToken, formatNumber, idempotencyKey, Problem, showProblem, toast,
} from "./app.js";
import { audienceCard } from "./composer_audience.js";

const config = JSON.parse(document.getElementById("composer-config").textContent);
const form = document.getElementById("composer");
const $ = (id) => document.getElementById(id);
const body = $("body");
const recipients = $("recipients");
const limitInput = $("segment_limit");
const trackLinks = $("track_links");
let campaignId = config.campaign?.id ?? null;
const sendKey = crypto.randomUUID(); // one Idempotency-Key per "send now" intent: a retry cannot send twice
let lastPreview = null;
let audienceEstimate = null; // the last audience preview's answer, for the audience and body it was asked for
let firstOccurrence = null; // of the schedule being chosen (the schedule preview's answer)
let plannedFor = null; // the start the latest audience preview was asked for (null: now)

const debounce = (fn, ms) => {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
};

// ---- Live counter -------------------------------------------------------------------------------------
let previewSeq = 0;

async function refreshPreview() {
  const seq = ++previewSeq;
  const text = body.value;
  if (!text.trim()) {
    showEmpty();
    return;
  }
  const request = {
    body: text, country: config.country, segment_limit: Number(limitInput.value) || null,
    track_links: trackLinks.checked,
  };
  const members = recipients.value === "" ? null : Number(recipients.value);
  if (members !== null && Number.isFinite(members)) request.recipients = members;
  try {
    const result = await api("POST", "/api/v1/messages/preview", request);
    if (seq !== previewSeq) return; // a newer keystroke's answer is on its way
    lastPreview = result;
    showPreview(result);
  } catch (problem) {
    if (seq !== previewSeq || !(problem instanceof Problem)) return;
    showBodyProblem(problem);
  }
}

function showEmpty() {
  lastPreview = null;
  setEncoding("GSM-7");
  $("segments").textContent = "0";
  $("characters").textContent = "0";
  $("remaining").textContent = "160";
  $("counter-status").textContent = "Type your message to count its segments.";
  $("ucs-alert").hidden = true;
  const bubble = $("preview-bubble");
  bubble.textContent = "Your message appears here.";
  bubble.classList.add("placeholder");
  $("body-error").textContent = "";
  body.removeAttribute("aria-invalid");
  showEstimate();
}

function setEncoding(encoding) {
  const badge = $("encoding");
  badge.textContent = encoding === "UCS-2" ? "UCS-2 (Unicode)" : "GSM-7";
  badge.className = "badge " + (encoding === "UCS-2" ? "ucs" : "gsm");
}

function showPreview(result) {
  setEncoding(result.encoding);
  $("segments").textContent = formatNumber(result.segments);
  $("characters").textContent = formatNumber(result.characters);
  $("remaining").textContent = formatNumber(result.remaining_in_segment);
  const plural = result.segments === 1 ? "segment" : "segments";
  $("counter-status").textContent =
    `${result.encoding}, ${result.segments} ${plural}, ${result.remaining_in_segment} characters left in this segment.`;
  $("body-error").textContent = result.refusal?.message ?? ""; // the words send-now refuses it with
  body.toggleAttribute("aria-invalid", Boolean(result.refusal));
  const bubble = $("preview-bubble");
  bubble.textContent = result.body;
  bubble.classList.remove("placeholder");
  showUcs(result);
  showTracking(result);
  showEstimate();
}

// With tracking on, the preview (and the segment count) has every link as the short link a member gets.
function showTracking(result) {
  const hint = $("track-links-hint");
  if (!hint.dataset.plain) hint.dataset.plain = hint.textContent;
  hint.textContent = result.short_link_length
    ? `Each link is sent as a ${result.short_link_length}-character short link, unique to each member; `
      + "the preview and the segment count use it."
    : hint.dataset.plain;
}

function showUcs(result) {
  const alert = $("ucs-alert");
  const list = $("ucs-list");
  list.replaceChildren();
  if (result.encoding !== "UCS-2") {
    alert.hidden = true;
    return;
  }
  for (const item of result.ucs2_characters) {
    const li = document.createElement("li");
    const glyph = document.createElement("span");
    glyph.className = "glyph";
    glyph.textContent = item.character;
    const what = document.createElement("span");
    const times = item.occurrences > 1 ? ` (${item.occurrences} times)` : "";
    if (item.replacement !== null) {
      const arrow = document.createElement("span");
      arrow.className = "arrow";
      arrow.textContent = "→";
      arrow.setAttribute("aria-label", "can become");
      const replacement = document.createElement("span");
      replacement.className = "glyph";
      replacement.textContent = item.replacement;
      what.textContent = `${item.name.toLowerCase()}${times}`;
      li.append(glyph, arrow, replacement, what);
    } else {
      what.textContent = `${item.name.toLowerCase()}${times}: has no GSM-7 equivalent; remove it to save segments`;
      li.append(glyph, what);
    }
    list.append(li);
  }
  const fixable = result.ucs2_characters.filter((c) => c.replacement !== null);
  $("gsm-fix").hidden = fixable.length === 0;
  const smart = result.smart_encoded;
  $("gsm-fix-note").textContent = smart && fixable.length === result.ucs2_characters.length
    ? `${smart.segments} ${smart.segments === 1 ? "segment" : "segments"} instead of ${result.segments}` : "";
  alert.hidden = false;
}

function showBodyProblem(problem) {
  const message = problem.errors.find((e) => e.field === "body")?.message ?? problem.message;
  $("body-error").textContent = message;
  body.setAttribute("aria-invalid", "true");
  $("counter-status").textContent = "The message cannot be counted until this is fixed: " + message;
  lastPreview = null;
  showEstimate();
}

const money = (value, places = 2) =>
  value === null || value === undefined ? "no price known" : "$" + Number(value).toLocaleString("en-US", {
    minimumFractionDigits: places, maximumFractionDigits: places,
  });

// The estimate comes from the audience preview (the real audience, each member's own text) when there is
// one; the typed "expected recipients" figure is only a fallback, and says so.
function estimateFigures() {
  const sampled = audienceEstimate?.estimate;
  if (sampled) {
    const { segments, cost } = sampled;
    const range = (low, high, show) => (low === high ? show(low) : `${show(low)}–${show(high)}`);
    return {
      source: "preview",
      recipients: sampled.recipients,
      recipientsText: `${sampled.exact ? "" : "about "}${formatNumber(sampled.recipients)}`,
      segmentsText: range(segments.low, segments.high, formatNumber),
      costText: range(cost.low, cost.high, (v) => money(v)),
      overLimit: segments.expected > effectiveLimit(),
      note: sampled.exact ? `From the audience preview: all ${formatNumber(audienceEstimate.audience_size)} members.`
        : `From the audience preview: the first ${formatNumber(audienceEstimate.members)} of `
          + `${formatNumber(audienceEstimate.audience_size)} members, scaled to all of them.`,
    };
  }
  const typed = lastPreview?.estimate;
  if (!typed) return null;
  return {
    source: "typed",
    recipients: typed.recipients,
    recipientsText: formatNumber(typed.recipients),
    segmentsText: formatNumber(typed.segments),
    costText: money(typed.send_cost),
    overLimit: typed.over_limit,
    note: "From the expected recipients you typed: preview the audience for the real number.",
  };
}

function showEstimate() {
  const result = lastPreview;
  const figures = result ? estimateFigures() : null;
  $("est-limit").textContent = formatNumber(effectiveLimit());
  $("est-per").textContent = result ? money(result.cost_per_recipient, 4) : "–";
  $("est-recipients").textContent = figures ? figures.recipientsText : "–";
  $("est-segments").textContent = figures ? figures.segmentsText : "–";
  $("est-cost").textContent = figures ? figures.costText : "–";
  $("est-source").textContent = figures ? figures.note : "";
  $("over-limit").hidden = !figures?.overLimit;
  const notes = ["Twilio charges every segment it sends, and $0.001 for each message that fails."];
  if (result?.warnings.includes("pumping_protection_may_apply")) {
    notes.push("Outside the US and Canada, SMS Pumping Protection fees may also apply.");
  }
  if (audienceEstimate?.encodings?.["UCS-2"]) {
    notes.push(`${formatNumber(audienceEstimate.encodings["UCS-2"])} of the members previewed get a Unicode (UCS-2) `
      + "text because of their merge values, which can take more segments.");
  }
  if (result && result.cost_per_recipient === null) notes.push("There is no price for this country yet.");
  $("est-notes").textContent = notes.join(" ");
  const refusal = result?.refusal ?? audienceEstimate?.refusal ?? null;
  $("send-refusal").hidden = !refusal;
  $("send-refusal-text").textContent = refusal?.message ?? "";
  showPlan(audienceEstimate?.plan ?? null);
}

// The send plan of the audience preview: who is texted at once, who waits for their local window (and
// until when), who is not texted, and when the last text goes. Its figures are for the members previewed.
function showPlan(plan) {
  $("plan-figures").hidden = !plan;
  $("plan-empty").hidden = Boolean(plan);
  const list = $("plan-sentences");
  if (!plan) {
    list.replaceChildren();
    return;
  }
  const held = plan.held.reduce((sum, group) => sum + group.count, 0);
  $("plan-now").textContent = formatNumber(plan.sendable_now);
  $("plan-held").textContent = formatNumber(held);
  $("plan-outside").textContent = formatNumber(plan.outside_window);
  $("plan-capped").textContent = formatNumber(plan.frequency_capped);
  $("plan-finish").textContent = plan.finishes_at
    ? new Date(plan.finishes_at).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "–";
  $("plan-when").textContent = plannedFor ? "If sent at " + new Intl.DateTimeFormat("en-GB", {
    timeZone: config.timeZone, weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short" }).format(new Date(plan.start_at)) : "If sent now";
  list.replaceChildren(...plan.sentences.map((sentence) => element("li", "", sentence)));
}

function holdLimitSeconds() {
  const hours = Number($("hold_limit_h").value);
  return Number.isFinite(hours) && $("hold_limit_h").value !== "" ? Math.round(hours * 3600) : 86400;
}

function effectiveLimit() {
  const limit = Number(limitInput.value) || config.orgSegmentLimit;
  return config.accountMaxSegments ? Math.min(limit, config.accountMaxSegments) : limit;
}

// The one-click fix: every character with a GSM-7 replacement is replaced in the template itself.
$("gsm-fix").addEventListener("click", () => {
  if (!lastPreview) return;
  let text = body.value;
  let replaced = 0;
  for (const item of lastPreview.ucs2_characters) {
    if (item.replacement === null) continue;
    replaced += item.occurrences;
    text = text.split(item.character).join(item.replacement);
  }
  body.value = text;
  body.focus();
  toast(`Replaced ${replaced} character${replaced === 1 ? "" : "s"} with GSM-7 ones.`);
  refreshPreview();
});

// Merge fields go in at the cursor.
document.querySelectorAll("[data-insert]").forEach((chip) => {
  chip.addEventListener("click", () => {
    const text = chip.dataset.insert;
    const start = body.selectionStart ?? body.value.length;
    const end = body.selectionEnd ?? start;
    body.setRangeText(text, start, end, "end");
    body.focus();
    refreshPreview();
  });
});

body.addEventListener("input", debounce(refreshPreview, 150));
body.addEventListener("input", debounce(() => refreshAudienceEstimate(), 1000));
recipients.addEventListener("input", debounce(refreshPreview, 250));
trackLinks.addEventListener("change", refreshPreview);
limitInput.addEventListener("input", () => {
  $("limit-warning").hidden = !(Number(limitInput.value) > 30000);
  refreshPreview();
});

// ---- Audience -----------------------------------------------------------------------------------------
const audienceBox = audienceCard(form, config);
const audienceKind = audienceBox.kind;
const audienceValue = audienceBox.value;

function audienceSize() {
  const kind = audienceKind();
  if (kind === "list") return config.audiences.lists.find((l) => l.id === $("list_id").value)?.members ?? null;
  if (kind === "csv") return config.audiences.csv_uploads.find((u) => u.id === $("upload_id").value)?.rows_accepted ?? null;
  return config.audiences.iqa_queries.find((q) => q.query === $("iqa_query").value.trim())?.last_members ?? null;
}

function onAudienceChange() {
  const kind = audienceKind();
  form.querySelectorAll("[data-panel]").forEach((panel) => { panel.hidden = panel.dataset.panel !== kind; });
  const size = audienceSize();
  if (size !== null) recipients.value = size;
  const hint = $("recipients-hint");
  hint.textContent = kind === "iqa" && size !== null
    ? "The query returned this many members last time; the exact number is counted when it is sent."
    : "Only used for the estimate until the audience is previewed.";
  $("audience-preview-result").replaceChildren(); // a preview of another audience would mislead
  refreshPreview();
  refreshAudienceEstimate();
}

form.querySelectorAll("input[name=audience_kind]").forEach((r) => r.addEventListener("change", onAudienceChange));
["list_id", "upload_id"].forEach((id) => $(id).addEventListener("change", onAudienceChange));
$("iqa_query").addEventListener("change", onAudienceChange);
audienceBox.onParametersChange(() => {
  $("audience-preview-result").replaceChildren();
  refreshAudienceEstimate();
});

// ---- CSV upload and audience preview ------------------------------------------------------------------
const REASON_LABELS = {
  missing_mobile: "no mobile number", invalid_number: "the number is not valid",
  duplicate_number: "another member has the same number", duplicate_member: "listed twice", opted_out: "opted out",
  row_ragged: "the row has the wrong number of cells", row_not_utf8: "the row is not UTF-8",
  row_invalid_characters: "the row has control characters", cell_too_long: "a cell is too long",
};
const plural = (n, one, many) => `${formatNumber(n)} ${n === 1 ? one : many}`;

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function reasonList(byReason) {
  const entries = Object.entries(byReason).filter(([, n]) => n > 0);
  if (!entries.length) return element("p", "hint", "Nobody is left out.");
  const list = element("ul", "reason-counts");
  list.setAttribute("aria-label", "Left out, by reason");
  for (const [reason, n] of entries) {
    const li = element("li");
    li.dataset.reason = reason;
    li.append(element("strong", "", formatNumber(n)), element("span", "", REASON_LABELS[reason] ?? reason.replaceAll("_", " ")));
    list.append(li);
  }
  return list;
}

function problemText(problem) {
  const details = problem.errors.map((e) => e.message).filter(Boolean);
  return details.length ? details.join(" ") : problem.message;
}

async function postFile(url, data) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin", body: data,
    headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = { detail: text }; }
  if (!response.ok) throw new Problem(response.status, body || {});
  return body;
}

const fileInput = $("csv_file");
fileInput.addEventListener("change", async () => {
  const file = fileInput.files[0];
  const result = $("upload-result");
  const error = $("csv_file-error");
  error.textContent = "";
  fileInput.removeAttribute("aria-invalid");
  if (!file) return;
  result.replaceChildren(element("p", "hint", `Reading ${file.name}…`));
  fileInput.disabled = true;
  const data = new FormData();
  data.append("file", file, file.name);
  try {
    const upload = await postFile("/api/v1/audiences/csv", data);
    config.audiences.csv_uploads.unshift({ id: upload.id, filename: upload.filename, rows_accepted: upload.rows_accepted,
      rows_rejected: upload.rows_rejected, created_at: upload.created_at });
    const option = element("option", "", `${upload.filename || "Upload"}: ${plural(upload.rows_accepted, "row", "rows")}`
      + (upload.rows_rejected ? `, ${formatNumber(upload.rows_rejected)} rejected` : ""));
    option.value = upload.id;
    $("upload_id").insertBefore(option, $("upload_id").options[1] ?? null);
    $("upload_id").value = upload.id;
    $("no-uploads-hint")?.remove();
    form.querySelector("input[name=audience_kind][value=csv]").checked = true;
    onAudienceChange();
    const box = element("div", "alert ok");
    box.append(element("p", "", `${upload.filename || "The file"} is now this campaign's audience: `
      + `${plural(upload.rows_accepted, "row", "rows")} accepted, ${formatNumber(upload.rows_rejected)} rejected; `
      + `${plural(upload.recipients, "member", "members")} would be texted.`));
    box.append(reasonList(upload.by_reason));
    if (upload.rows_rejected > 0) {
      const link = element("a", "", "Download the rejected rows (CSV)");
      link.href = upload.rejections_url;
      link.setAttribute("download", "");
      const para = element("p");
      para.append(link);
      box.append(para);
    }
    result.replaceChildren(box);
  } catch (problem) {
    result.replaceChildren();
    error.textContent = problem instanceof Problem ? problemText(problem) : "The file could not be uploaded: " + problem.message;
    fileInput.setAttribute("aria-invalid", "true");
  } finally {
    fileInput.disabled = false;
  }
});

// The audience preview: run when the audience, body or sender changes, and on the button (which also
// shows who is left out). Only the answer to the latest request is kept.
let audienceSeq = 0;

async function refreshAudienceEstimate({ show = false } = {}) {
  const seq = ++audienceSeq;
  const result = $("audience-preview-result");
  const audience = audienceValue();
  plannedFor = plannedStart();
  audienceEstimate = null;
  showEstimate();
  if (!audience) {
    if (show) result.replaceChildren(element("p", "field-error", "Choose an audience first."));
    return;
  }
  const button = $("audience-preview");
  if (show) {
    button.disabled = true;
    result.replaceChildren(element("p", "hint", "Counting the audience…"));
  }
  try {
    const request = { audience, body: body.value.trim() ? body.value : null, sender_id: $("sender_id").value || null,
      transactional: $("transactional").checked, hold_limit_s: holdLimitSeconds(), start_at: plannedFor };
    const preview = await api("POST", "/api/v1/audiences/preview", request);
    if (seq !== audienceSeq) return;
    audienceEstimate = preview;
    showEstimate();
    if (show) result.replaceChildren(previewBox(preview));
  } catch (problem) {
    if (seq !== audienceSeq || !show) return;
    const box = element("div", "alert danger");
    box.append(element("p", "", problem instanceof Problem ? problemText(problem) : "The preview failed: " + problem.message));
    result.replaceChildren(box);
  } finally {
    if (show && seq === audienceSeq) button.disabled = false;
  }
}

function previewBox(preview) {
  const box = element("div", "alert info");
  box.append(element("p", "", `${plural(preview.recipients, "member", "members")} of ${formatNumber(preview.members)} `
    + "would be texted."));
  box.append(reasonList(preview.by_reason));
  if (preview.refusal) box.append(element("p", "field-error", preview.refusal.message));
  if (!preview.complete || preview.note) {
    box.append(element("p", "preview-note", `Partial preview: ${preview.note ?? "not every member was read"}.`));
  }
  return box;
}

$("audience-preview").addEventListener("click", () => refreshAudienceEstimate({ show: true }));
$("transactional").addEventListener("change", () => refreshAudienceEstimate());
$("hold_limit_h").addEventListener("input", debounce(() => refreshAudienceEstimate(), 500));
// A sender Twilio has not approved: say why campaigns to US/Canada are refused, and where to fix it.
function showSenderVerification() {
  const state = $("sender_id").selectedOptions[0]?.dataset.verification || "verified";
  $("sender-unverified").hidden = state === "verified";
  $("sender-unverified").querySelector("[data-sender-state]").textContent = state;
}
showSenderVerification();
$("sender_id").addEventListener("change", () => { showSenderVerification(); refreshAudienceEstimate(); });

// ---- Test send (a saved campaign only) ----------------------------------------------------------------
const MAX_TEST_NUMBERS = 5;

async function sendTest() {
  const boxes = [...document.querySelectorAll('input[name="test_to"]')];
  const input = boxes[0].closest("fieldset");
  const error = $("test_to-error");
  const result = $("test-send-result");
  const numbers = boxes.filter((b) => b.checked).map((b) => b.value);
  error.textContent = "";
  input.removeAttribute("aria-invalid");
  const refuse = (message) => {
    error.textContent = message;
    input.setAttribute("aria-invalid", "true");
    result.replaceChildren();
    boxes[0].focus();
  };
  if (!numbers.length) return refuse("Choose at least one staff test number.");
  if (numbers.length > MAX_TEST_NUMBERS) return refuse(`At most ${MAX_TEST_NUMBERS} numbers; ${numbers.length} were chosen.`);
  const button = $("test-send");
  button.disabled = true;
  button.textContent = "Sending…";
  result.replaceChildren(element("p", "hint", "Sending the test…"));
  try {
    const out = await api("POST", `/api/v1/campaigns/${campaignId}/test-send`, { to: numbers });
    const sent = out.results.filter((r) => r.status === "queued").length;
    const box = element("div", sent === out.results.length ? "alert ok" : "alert warning");
    box.append(element("p", "", `Test sent to ${sent} of ${plural(out.results.length, "number", "numbers")} from ${out.sender}.`));
    const list = element("ul", "test-results");
    for (const r of out.results) {
      const li = element("li", r.status === "queued" ? "sent" : "failed");
      li.append(element("span", "number", r.to), element("span", "", r.status === "queued"
        ? "sent" : `not sent: ${r.error ?? "Twilio refused it"}${r.error_code ? ` (Twilio error ${r.error_code})` : ""}`));
      list.append(li);
    }
    box.append(list, element("p", "hint", `Text: ${out.body}`));
    result.replaceChildren(box);
  } catch (problem) {
    const box = element("div", "alert danger");
    if (problem instanceof Problem) {
      const fieldErrors = problem.errors.filter((e) => String(e.field || "").startsWith("to"));
      if (fieldErrors.length) {
        error.textContent = fieldErrors.map((e) => {
          const index = Number(String(e.field).split(".")[1]);
          return Number.isInteger(index) && numbers[index] ? `${numbers[index]}: ${e.message}` : e.message;
        }).join(" ");
        input.setAttribute("aria-invalid", "true");
      }
      box.append(element("p", "", "The test was not sent: " + problemText(problem)));
    } else {
      box.append(element("p", "", "The test was not sent: " + problem.message));
    }
    result.replaceChildren(box);
  } finally {
    button.disabled = false;
    button.textContent = "Send a test";
  }
}

if ($("test-send")) $("test-send").addEventListener("click", sendTest);

// ---- Schedule -----------------------------------------------------------------------------------------
const whenValue = () => form.querySelector("input[name=when]:checked")?.value ?? "keep";
const submitLabels = { keep: config.campaign && config.campaign.state !== "draft" ? "Save changes" : "Save draft",
  now: "Send now", at: "Schedule", recurring: "Schedule" };

function buildRule() {
  const parts = [`FREQ=${$("freq").value}`];
  if ($("freq").value === "WEEKLY") {
    const days = [...form.querySelectorAll("input[name=weekday]:checked")].map((d) => d.value);
    if (days.length) parts.push(`BYDAY=${days.join(",")}`);
  }
  if ($("count").value) parts.push(`COUNT=${Number($("count").value)}`);
  return parts.join(";");
}

// When the run would start, for the send plan: the first occurrence of the schedule being chosen, the
// campaign's own next one when it keeps its schedule, else now (null).
function plannedStart() {
  const when = whenValue();
  if (when === "at" || when === "recurring") return firstOccurrence;
  const next = when === "keep" ? config.campaign?.next_occurrence_at : null;
  return next ? new Date(next).toISOString() : null;
}

function setFirstOccurrence(at) {
  firstOccurrence = at;
  if (plannedStart() !== plannedFor) refreshAudienceEstimate();
}

function onWhenChange() {
  const when = whenValue();
  form.querySelectorAll("[data-when]").forEach((panel) => { panel.hidden = panel.dataset.when !== when; });
  if ($("submit")) $("submit").textContent = submitLabels[when];
  if (when === "recurring" && !$("rrule").value) $("rrule").value = buildRule();
  refreshOccurrences();
}

let occurrenceSeq = 0;
async function refreshOccurrences() {
  const box = $("occurrences-box");
  if (!box) return;
  const when = whenValue();
  let request = null;
  if (when === "at" && $("at").value) request = { at: $("at").value };
  if (when === "recurring" && $("start").value && $("rrule").value) request = { rrule: $("rrule").value, start: $("start").value };
  const seq = ++occurrenceSeq;
  if (!request) {
    box.hidden = true;
    setFirstOccurrence(null);
    return;
  }
  try {
    const result = await api("POST", "/api/v1/campaigns/schedule-preview", request);
    if (seq !== occurrenceSeq) return;
    clearFieldErrors($("occurrences-box").parentElement);
    const list = $("occurrences");
    list.replaceChildren(...result.occurrences.map((o) => {
      const li = document.createElement("li");
      li.textContent = new Intl.DateTimeFormat("en-GB", {
        timeZone: result.time_zone, weekday: "short", day: "numeric", month: "short", year: "numeric",
        hour: "2-digit", minute: "2-digit", timeZoneName: "short",
      }).format(new Date(o.at));
      return li;
    }));
    box.hidden = result.occurrences.length === 0;
    setFirstOccurrence(result.occurrences[0]?.at ?? null);
  } catch (problem) {
    if (seq !== occurrenceSeq || !(problem instanceof Problem)) return;
    box.hidden = true;
    setFirstOccurrence(null);
    showProblem($("occurrences-box").parentElement, problem);
  }
}

if ($("occurrences-box")) {
  form.querySelectorAll("input[name=when]").forEach((r) => r.addEventListener("change", onWhenChange));
  const ruleChanged = () => { $("rrule").value = buildRule(); refreshOccurrences(); };
  $("freq").addEventListener("change", () => {
    $("weekdays-field").hidden = $("freq").value !== "WEEKLY";
    ruleChanged();
  });
  $("count").addEventListener("input", debounce(ruleChanged, 300));
  form.querySelectorAll("input[name=weekday]").forEach((d) => d.addEventListener("change", ruleChanged));
  $("rrule").addEventListener("input", debounce(refreshOccurrences, 400));
  ["at", "start"].forEach((id) => $(id).addEventListener("change", refreshOccurrences));
}

// ---- Saving -------------------------------------------------------------------------------------------
function fields() {
  return {
    name: $("name").value.trim(),
    body: body.value,
    audience: audienceValue(),
    sender_id: $("sender_id").value || null,
    contact_email: $("contact_email").value.trim() || null,
    segment_limit: Number(limitInput.value) || null,
    track_links: trackLinks.checked,
    transactional: $("transactional").checked,
    hold_limit_s: holdLimitSeconds(),
  };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFieldErrors(form);
  const when = whenValue();
  if (when !== "keep") {
    const figures = estimateFigures(); // the same figures as the estimate panel
    const size = figures ? `${figures.recipientsText} members (estimated cost ${figures.costText})` : "its audience";
    const audience = `Audience: ${await audienceBox.sentence()}.`;
    const ok = when === "now"
      ? await confirmAction("Send this campaign now?", `It goes to ${size} as soon as the audience is read. ${audience}`,
        "Send now")
      : await confirmAction("Schedule this campaign?",
        `Each send goes to ${size}, counted again when it is sent. ${audience}`, "Schedule");
    if (!ok) return;
  }
  const submit = $("submit");
  submit.disabled = true;
  try {
    const data = fields();
    if (data.segment_limit === null) delete data.segment_limit;
    if (campaignId) {
      await api("PATCH", `/api/v1/campaigns/${campaignId}`, data);
    } else {
      campaignId = (await api("POST", "/api/v1/campaigns", data)).id;
      history.replaceState(null, "", `/campaigns/${campaignId}/edit`); // a retry edits this draft
    }
    let flash = "Saved.";
    if (when === "now") {
      await api("POST", `/api/v1/campaigns/${campaignId}/send-now`, undefined, { "Idempotency-Key": sendKey });
      flash = "Sending has started.";
    } else if (when === "at" || when === "recurring") {
      const schedule = when === "at" ? { at: $("at").value || null }
        : { rrule: $("rrule").value, start: $("start").value || null };
      const path = `/api/v1/campaigns/${campaignId}/schedule`;
      await api("POST", path, schedule, { "Idempotency-Key": idempotencyKey(path, schedule) });
      flash = "Scheduled.";
    }
    sessionStorage.setItem("textpulse.flash", flash);
    location.assign(`/campaigns/${campaignId}`);
  } catch (problem) {
    submit.disabled = false;
    if (problem instanceof Problem) showProblem(form, problem);
    else toast("Could not save: " + problem.message, "error");
  }
});

// ---- Start --------------------------------------------------------------------------------------------
// An existing schedule fills its own fields, so rescheduling starts from what is there.
const current = config.campaign?.schedule;
if ($("occurrences-box") && current) {
  if (current.kind === "at") $("at").value = current.at.slice(0, 16);
  if (current.kind === "rrule") {
    $("rrule").value = current.rrule;
    $("start").value = current.start.slice(0, 16);
  }
}
onAudienceChange();
if ($("occurrences-box")) {
  $("weekdays-field").hidden = $("freq").value !== "WEEKLY";
  onWhenChange();
}
$("limit-warning").hidden = !(Number(limitInput.value) > 30000);
refreshPreview();
