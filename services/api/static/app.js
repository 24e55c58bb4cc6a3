// Shared by every page: API calls with the session's CSRF token, problem+json errors shown next to their
// fields, a toast, confirmations, campaign action buttons and live sending progress.

export const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

// A refused request. Its message is the errors' own sentences ("Campaign name is required.") when it
// has field errors, since "detail" names fields as the API spells them; otherwise the detail.
export class Problem extends Error {
  constructor(status, body) {
    const errors = Array.isArray(body.errors) ? body.errors : [];
    const sentences = errors.map((e) => e.message).filter(Boolean).join(" ");
    super(sentences || body.detail || `The request failed (${status})`);
    this.status = status;
    this.code = body.code || "error";
    this.errors = errors;
  }
}

export async function api(method, url, body, headers = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRF-Token": csrfToken(), ...headers },
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, init);
  if (response.status === 401) {
    location.assign("/sign-in?next=" + encodeURIComponent(location.pathname + location.search));
    throw new Problem(401, { detail: "Your session has ended; sign in again." });
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Problem(response.status, data || {});
  return data;
}

// One Idempotency-Key per distinct request (path and body) on this page, as send-now and schedule require:
// a retry of the same request reuses it, so it cannot send twice; a changed request is a new intent.
const intentKeys = new Map();
export function idempotencyKey(url, body) {
  const intent = `${url} ${JSON.stringify(body ?? null)}`;
  if (!intentKeys.has(intent)) intentKeys.set(intent, crypto.randomUUID());
  return intentKeys.get(intent);
}

let toastTimer;
export function toast(message, kind = "ok") {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = message;
  box.className = "toast" + (kind === "error" ? " error" : "");
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

// Field errors: each error's "field" names an input by its name (or data-field); the first one gets focus.
export function clearFieldErrors(root) {
  root.querySelectorAll("[aria-invalid=true]").forEach((el) => el.removeAttribute("aria-invalid"));
  root.querySelectorAll(".field-error").forEach((el) => { el.textContent = ""; });
}

export function showProblem(root, problem) {
  clearFieldErrors(root);
  let first = null;
  const unplaced = [];
  for (const error of problem.errors) {
    const name = String(error.field || "").split(".")[0];
    const input = root.querySelector(`[name="${CSS.escape(name)}"], [data-field="${CSS.escape(name)}"]`);
    const slot = root.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (input && slot) {
      input.setAttribute("aria-invalid", "true");
      slot.textContent = error.message;
      if (!slot.id) slot.id = `error-${name}-${Math.random().toString(36).slice(2, 8)}`;
      const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (!described.includes(slot.id)) input.setAttribute("aria-describedby", [...described, slot.id].join(" "));
      first = first || input;
    } else {
      unplaced.push(error.message);
    }
  }
  const general = root.querySelector("[data-form-error]");
  const summary = unplaced.length ? unplaced.join(" ") : (problem.errors.length ? "" : problem.message);
  if (general) {
    general.textContent = summary;
    general.hidden = !summary;
  } else if (summary) {
    toast(summary, "error");
  }
  if (first) first.focus();
  else if (general && summary) general.focus();
}

// A confirmation in a <dialog>: resolves true when the person confirms.
export function confirmAction(title, message, confirmLabel = "Confirm") {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.setAttribute("aria-labelledby", "confirm-title");
    dialog.innerHTML = `<h2 id="confirm-title"></h2><p></p>
      <div class="form-actions"><button class="button" value="yes"></button>
      <button class="button secondary" value="no">Cancel</button></div>`;
    dialog.querySelector("h2").textContent = title;
    dialog.querySelector("p").textContent = message;
    dialog.querySelector("button[value=yes]").textContent = confirmLabel;
    dialog.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (button) dialog.close(button.value);
    });
    dialog.addEventListener("close", () => { resolve(dialog.returnValue === "yes"); dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector("button[value=no]").focus();
  });
}

// As pages.py's local filter: "2 Dec 2026, 14:05" in the organisation's time zone. Built from parts, since
// Intl's own short month differs by locale and version ("Sep" / "Sept").
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
export function formatWhen(iso, timeZone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone, year: "numeric", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${Number(parts.day)} ${MONTHS[Number(parts.month) - 1]} ${parts.year}, ${parts.hour}:${parts.minute}`;
}

export const formatNumber = (n) => new Intl.NumberFormat("en-US").format(n);
// As pages.py's money filter: "$1,234.56".
export const formatMoney = (amount) =>
  new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(Number(amount));

// ---- Parts of a page, fresh from the server: the page's own template renders them, so they read the same ---
// Replaces each element whose id is given with the same element of a fresh copy of this page.
export async function refreshFragments(ids) {
  const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!response.ok) throw new Problem(response.status, {});
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ids) {
    const now = document.getElementById(id);
    const next = fresh.getElementById(id);
    if (now && next) {
      now.replaceWith(next);
      wireActions(next);
    }
  }
}

// ---- Campaign actions: <button data-api-action="/api/v1/campaigns/…/pause" data-confirm="…"> --------------
function wireActions(root = document) {
  root.querySelectorAll("[data-api-action]").forEach((button) => {
    button.addEventListener("click", async () => {
      const { apiAction, confirm, confirmTitle, confirmLabel, done, method } = button.dataset;
      if (confirm && !(await confirmAction(confirmTitle || button.textContent.trim(), confirm, confirmLabel))) return;
      button.disabled = true;
      try {
        const headers = /\/(send-now|schedule)$/.test(apiAction) ? { "Idempotency-Key": idempotencyKey(apiAction) } : {};
        const result = await api(method || "POST", apiAction, undefined, headers);
        if (done === "open-copy" && result?.id) location.assign(`/campaigns/${result.id}`);
        else if (done === "list") location.assign("/campaigns");
        else location.reload();
      } catch (problem) {
        toast(problem.message, "error");
        button.disabled = false;
      }
    });
  });
}

// ---- Live progress: <div data-poll="/api/v1/dashboard/sending" data-tz="…"> -------------------------------
function renderSending(container, items) {
  const template = document.getElementById("sending-template");
  const only = container.dataset.campaign;
  const shown = only ? items.filter((item) => item.campaign_id === only) : items;
  if (only && !shown.length) {
    location.reload(); // the campaign finished or stopped: show its final state
    return;
  }
  if (!shown.length) {
    container.innerHTML = '<p class="empty">Nothing is sending right now.</p>';
    return;
  }
  const list = document.createElement("ul");
  list.className = "sending-list";
  for (const item of shown) {
    const node = template.content.firstElementChild.cloneNode(true);
    const link = node.querySelector('[data-field="name"]');
    link.textContent = item.name;
    link.href = `/campaigns/${item.campaign_id}`;
    const badge = document.createElement("span");
    badge.className = `badge ${item.state}`;
    badge.textContent = item.state === "paused" ? "Paused" : "Sending";
    node.querySelector('[data-field="badge"]').replaceWith(badge);
    const bar = node.querySelector("progress");
    bar.value = item.percent;
    bar.setAttribute("aria-label", `${item.name}: ${item.percent}% sent`);
    node.querySelector('[data-field="done"]').textContent = formatNumber(item.done);
    node.querySelector('[data-field="total"]').textContent = formatNumber(item.total);
    node.querySelector('[data-field="rate"]').textContent = `${formatNumber(item.per_minute)} a minute`;
    const notSent = node.querySelector('[data-field="not-sent"]');
    if (notSent && (item.outside_window || item.frequency_capped)) {
      notSent.textContent = `${formatNumber(item.outside_window)} outside texting hours · `
        + `${formatNumber(item.frequency_capped)} over a cap`;
      notSent.hidden = false;
    }
    node.querySelector('[data-field="finish"]').textContent = item.expected_finish
      ? `Expected to finish ${formatWhen(item.expected_finish, container.dataset.tz)}`
      : item.state === "paused" ? "Paused" : item.total ? "Measuring…" : "Preparing the recipients…";
    list.append(node);
  }
  container.replaceChildren(list);
}

function pollSending() {
  const container = document.querySelector("[data-poll]");
  if (!container || !document.getElementById("sending-template")) return;
  const tick = async () => {
    if (document.visibilityState === "visible") {
      try {
        renderSending(container, await api("GET", container.dataset.poll));
      } catch {
        /* a missed poll is retried on the next tick */
      }
    }
    setTimeout(tick, 3000);
  };
  setTimeout(tick, 3000);
}

// ---- The campaign page's approval form: Approve (with the fingerprint of what the page shows, so a campaign
// changed since it was read is refused) and Reject (with the comment its authors will read) -----------------
function wireReview() {
  const form = document.getElementById("review-form");
  if (!form) return;
  const base = `/api/v1/campaigns/${form.dataset.campaign}`;
  form.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-review]");
    if (!button) return;
    clearFieldErrors(form);
    const decision = button.dataset.review;
    const body = decision === "approve" ? { fingerprint: form.dataset.fingerprint } : { comment: form.elements.comment.value };
    button.disabled = true;
    try {
      await api("POST", `${base}/${decision}`, body);
      location.reload();
    } catch (problem) {
      if (problem.errors?.length) showProblem(form, problem);
      else toast(problem.message, "error");
      button.disabled = false;
    }
  });
}

function showFlash() {
  const flash = sessionStorage.getItem("textpulse.flash");
  if (flash) {
    sessionStorage.removeItem("textpulse.flash");
    toast(flash);
  }
}

// The navigation's unread replies (Inbox): open conversations with a reply nobody has read.
export async function refreshUnread() {
  const badge = document.getElementById("nav-unread");
  if (!badge) return;
  const { unread } = await api("GET", badge.dataset.unreadPoll);
  badge.textContent = unread > 0 ? `${formatNumber(unread)}` : "";
  badge.hidden = unread === 0;
  badge.setAttribute("aria-label", `${unread} unread`);
}

function pollUnread() {
  if (!document.getElementById("nav-unread")) return;
  const tick = async () => {
    try {
      await refreshUnread();
    } catch {
      /* retried on the next tick */
    }
    setTimeout(tick, 5000);
  };
  tick();
}

wireActions();
wireReview();
pollSending();
pollUnread();
showFlash();
