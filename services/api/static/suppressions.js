// Suppressions: the list (search, source, scope, pages), a number's consent history, the iMIS write-back
// count, and (admins) add / lift with a reason. Everything goes through /api/v1/suppressions.
import { api, clearFieldErrors, formatNumber, formatWhen, Problem, showProblem, toast } from "./app.js";

const BASE = "/api/v1/suppressions";
const PAGE = 25;
const tz = document.getElementById("org-tz").dataset.tz;
const sourceLabels = Object.fromEntries(
  [...document.getElementById("source-labels").content.querySelectorAll("[data-source]")]
    .map((el) => [el.dataset.source, el.textContent]),
);
const when = (iso) => formatWhen(iso, tz);
const scopeText = (scope) => scope || "Whole organisation";

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "–";
  if (className) td.className = className;
  return td;
}

// ---- The list ------------------------------------------------------------------------------------------
const filters = document.getElementById("filters");
let offset = 0;

function query() {
  const params = new URLSearchParams({ limit: PAGE, offset });
  const q = filters.q.value.trim(); // the API reads it with the organisation's prefix
  if (q) params.set("q", q);
  if (filters.source.value) params.set("source", filters.source.value);
  const scope = filters.scope.value.trim();
  if (scope) params.set("scope", scope.toLowerCase() === "org" ? "" : scope);
  return params;
}

async function loadList() {
  const rows = document.getElementById("list-rows");
  const count = document.getElementById("list-count");
  clearFieldErrors(filters);
  let page;
  try {
    page = await api("GET", `${BASE}?${query()}`);
  } catch (problem) {
    if (problem instanceof Problem) showProblem(filters, problem);
    else toast(problem.message, "error");
    return;
  }
  rows.replaceChildren(...page.items.map((item) => {
    const tr = document.createElement("tr");
    const number = document.createElement("th");
    number.scope = "row";
    number.className = "mono";
    number.textContent = item.phone;
    const actions = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button link small";
    button.textContent = "History";
    button.setAttribute("aria-label", `Consent history of ${item.phone}`);
    button.addEventListener("click", () => showHistory(item.phone));
    actions.append(button);
    tr.append(number, cell(scopeText(item.scope), item.scope ? "mono" : ""), cell(sourceLabels[item.source] || item.source),
      cell(item.reason), cell(when(item.created_at)), actions);
    return tr;
  }));
  document.getElementById("list-wrap").hidden = page.items.length === 0;
  document.getElementById("list-empty").hidden = page.items.length !== 0;
  count.textContent = `${formatNumber(page.total)} suppressed number${page.total === 1 ? "" : "s"}`;
  const pages = Math.max(1, Math.ceil(page.total / PAGE));
  document.getElementById("pager").hidden = pages <= 1;
  document.getElementById("pager-text").textContent = `Page ${Math.floor(offset / PAGE) + 1} of ${pages}`;
  document.getElementById("prev").disabled = offset === 0;
  document.getElementById("next").disabled = offset + PAGE >= page.total;
}

filters.addEventListener("submit", (event) => {
  event.preventDefault();
  offset = 0;
  loadList();
});
document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadList(); });
document.getElementById("next").addEventListener("click", () => { offset += PAGE; loadList(); });

// ---- Consent history -----------------------------------------------------------------------------------
const historyForm = document.getElementById("history-form");
const historyResult = document.getElementById("history-result");

async function showHistory(phone) {
  historyForm.phone.value = phone;
  clearFieldErrors(historyForm);
  historyForm.querySelector("[data-form-error]").hidden = true;
  let entries;
  try {
    entries = await api("GET", `${BASE}/history?${new URLSearchParams({ phone })}`);
  } catch (problem) {
    if (problem instanceof Problem) showProblem(historyForm, problem);
    else toast(problem.message, "error");
    return;
  }
  if (!entries.length) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = `No consent change is recorded for ${phone}.`;
    historyResult.replaceChildren(p);
  } else {
    const table = document.createElement("table");
    table.innerHTML = `<caption></caption><thead><tr><th scope="col">When</th><th scope="col">Change</th>
      <th scope="col">Scope</th><th scope="col">Source</th><th scope="col">By</th><th scope="col">Reason or message</th></tr></thead>`;
    table.caption.textContent = `Consent history of ${entries[0].phone}, newest first`;
    const body = document.createElement("tbody");
    for (const e of entries) {
      const tr = document.createElement("tr");
      const change = (e.action === "opt_out" ? "Opted out" : "Opted in") + (e.changed ? "" : " (no change)");
      tr.append(cell(when(e.occurred_at)), cell(change), cell(scopeText(e.scope), e.scope ? "mono" : ""),
        cell(sourceLabels[e.source] || e.source), cell(e.actor), cell(e.reason || e.body || e.keyword));
      body.append(tr);
    }
    table.append(body);
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.append(table);
    historyResult.replaceChildren(wrap);
  }
  historyResult.focus();
}

historyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const phone = historyForm.phone.value.trim();
  if (!phone) {
    showProblem(historyForm, new Problem(422, { errors: [{ field: "phone", message: "Enter a phone number." }] }));
    return;
  }
  showHistory(phone);
});

// ---- iMIS write-backs ----------------------------------------------------------------------------------
async function loadWritebacks() {
  const box = document.getElementById("writebacks");
  try {
    const w = await api("GET", `${BASE}/writebacks?limit=1`);
    const p = document.createElement("p");
    p.textContent = `iMIS write-backs: ${formatNumber(w.pending)} pending` +
      (w.retrying ? ` (${formatNumber(w.retrying)} retrying)` : "") + `, ${formatNumber(w.failed)} failed` +
      (w.failed ? ": a person must look at these." : ".");
    box.className = "alert " + (w.failed ? "warning" : "info");
    box.replaceChildren(p);
  } catch {
    box.querySelector("p").textContent = "The iMIS write-back count could not be loaded.";
  }
}

// ---- Add / lift (admins) -------------------------------------------------------------------------------
document.querySelectorAll("[data-change]").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const error = form.querySelector("[data-form-error]");
    error.hidden = true;
    const saved = form.querySelector("[data-saved]");
    saved.textContent = "";
    const missing = ["phone", "reason"].filter((name) => !form[name].value.trim())
      .map((name) => ({ field: name, message: name === "reason" ? "A reason is required." : "Enter a phone number." }));
    if (missing.length) {
      showProblem(form, new Problem(422, { errors: missing }));
      return;
    }
    const lift = form.dataset.change === "lift";
    const scope = form.scope.value.trim();
    const body = { phone: form.phone.value.trim(), reason: form.reason.value.trim() };
    if (scope || !lift) body.scope = scope;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const result = await api("POST", lift ? `${BASE}/lift` : BASE, body);
      const changed = result.changed_scopes.length;
      saved.textContent = lift
        ? (changed ? `Lifted for ${result.phone}.` : `${result.phone} was not suppressed; recorded anyway.`)
        : (changed ? `${result.phone} is suppressed.` : `${result.phone} was already suppressed; recorded anyway.`);
      form.reset();
      offset = 0;
      await Promise.all([loadList(), loadWritebacks()]);
    } catch (problem) {
      if (problem instanceof Problem) showProblem(form, problem);
      else toast(problem.message, "error");
    } finally {
      button.disabled = false;
    }
  });
});

loadList();
loadWritebacks();
