// The Suppressions page's review queue of replies that may revoke consent (everyone sees it; admins decide),
// and the admins' form to record a revocation received another way. Through /api/v1/revocations.
import { api, clearFieldErrors, formatNumber, formatWhen, Problem, showProblem, toast } from "./app.js";

const BASE = "/api/v1/revocations";
const section = document.getElementById("reviews");
const isAdmin = section.dataset.admin === "true";
const tz = document.getElementById("org-tz").dataset.tz;

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text || "–";
  if (className) td.className = className;
  return td;
}

function decisionButton(review, decision, label, className) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `button small ${className}`;
  button.textContent = label;
  button.setAttribute("aria-label", `${label}: the reply from ${review.phone || "an erased member"}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await api("POST", `${BASE}/reviews/${review.id}/decision`, { decision });
      toast(result.superseded ? `${result.phone} opted back in since: nothing was suppressed.`
        : decision === "revocation" ? `${result.phone} is revoked.` : `${result.phone} may be texted again.`);
      await loadReviews();
    } catch (problem) {
      toast(problem.message, "error");
      button.disabled = false;
    }
  });
  return button;
}

async function loadReviews() {
  const count = document.getElementById("reviews-count");
  let page;
  try {
    page = await api("GET", `${BASE}/reviews?limit=100`);
  } catch {
    count.textContent = "The replies to review could not be loaded.";
    return;
  }
  document.getElementById("reviews-rows").replaceChildren(...page.items.map((review) => {
    const tr = document.createElement("tr");
    tr.append(cell(formatWhen(review.received_at, tz)), cell(review.phone, "mono"), cell(review.body),
      cell(`“${review.matched}” (${review.language})`));
    if (isAdmin) {
      const actions = document.createElement("td");
      actions.append(decisionButton(review, "revocation", "Revocation", "danger"), " ",
        decisionButton(review, "not_revocation", "Not a revocation", "secondary"));
      tr.append(actions);
    }
    return tr;
  }));
  document.getElementById("reviews-wrap").hidden = page.items.length === 0;
  count.textContent = page.total
    ? `${formatNumber(page.total)} repl${page.total === 1 ? "y waits" : "ies wait"} for a decision.`
    : "No reply waits for a decision.";
}

const manual = document.getElementById("manual-revocation");
manual?.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFieldErrors(manual);
  manual.querySelector("[data-form-error]").hidden = true;
  const saved = manual.querySelector("[data-saved]");
  saved.textContent = "";
  const missing = ["phone", "evidence"].filter((name) => !manual[name].value.trim())
    .map((name) => ({ field: name, message: name === "phone" ? "Enter a phone number." : "Evidence is required." }));
  if (missing.length) {
    showProblem(manual, new Problem(422, { errors: missing }));
    return;
  }
  const button = manual.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const result = await api("POST", BASE, { phone: manual.phone.value.trim(), channel: manual.channel.value,
      evidence: manual.evidence.value.trim() });
    saved.textContent = result.changed ? `${result.phone} is revoked.` : `${result.phone} was revoked already; recorded anyway.`;
    manual.reset();
  } catch (problem) {
    if (problem instanceof Problem) showProblem(manual, problem);
    else toast(problem.message, "error");
  } finally {
    button.disabled = false;
  }
});

loadReviews();
