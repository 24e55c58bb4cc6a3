// Settings: each form saves through its API route and shows the answer's warnings; secrets are cleared
// from their inputs once saved (the server never sends them back).
import { api, clearFieldErrors, confirmAction, Problem, refreshFragments, showProblem, toast } from "./app.js";

const RECOMMENDED_MAX = 30000;
const RETENTION_FIELDS = ["retention_webhook_days", "retention_reply_days", "retention_body_days", "retention_csv_days"];

// A number input as the API wants it: empty is null (refused as required), anything else a number (the API
// says in words if it is not a whole number in range).
function wholeNumber(value) {
  return value.trim() === "" ? null : Number(value);
}

// What an erasure removed, in words: "3 snapshot rows, 1 reply" (singular, plural).
const ERASED_LABELS = {
  run_recipients: ["snapshot row", "snapshot rows"], dropped_unsent: ["unsent text cancelled", "unsent texts cancelled"],
  send_ledger: ["sent text", "sent texts"], replies: ["reply", "replies"], webhook_requests: ["raw webhook", "raw webhooks"],
  consent_history: ["consent record", "consent records"],
  suppressions: ["suppression (kept as a code)", "suppressions (kept as codes)"],
  list_entries: ["list entry", "list entries"], csv_rows: ["CSV row", "CSV rows"],
  csv_rejections: ["refused CSV row", "refused CSV rows"], member_phone_index: ["member-number link", "member-number links"],
  bad_numbers: ["bad-number record", "bad-number records"], test_numbers: ["staff test number", "staff test numbers"],
  imis_writebacks: ["iMIS write-back", "iMIS write-backs"], outbox_events: ["sent event", "sent events"],
};

function showErasure(result) {
  const box = document.getElementById("erasure-result");
  const parts = Object.entries(result.erased).filter(([, n]) => n > 0)
    .map(([table, n]) => `${n} ${(ERASED_LABELS[table] || [table, table])[n === 1 ? 0 : 1]}`);
  box.textContent = result.already_erased
    ? "This member was already erased: nothing more to remove."
    : `Erased: ${parts.join(", ")}.`;
  if (result.suppressions_kept > 0) box.textContent += " They stay opted out.";
  box.hidden = false;
  box.focus();
}

// What each form sends: its inputs, typed as the API wants them.
const payloads = {
  account: (f) => ({
    friendly_name: f.friendly_name.value.trim(),
    account_type: f.account_type.value,
    alpha_sender_id: f.alpha_sender_id.value.trim() || null,
    max_segments: f.max_segments.value ? Number(f.max_segments.value) : null,
    test_mode: f.test_mode.checked,
  }),
  credentials: (f) => ({ account_sid: f.account_sid.value.trim(), auth_token: f.auth_token.value }),
  "api-key": (f) => ({ api_key_sid: f.api_key_sid.value.trim(), api_key_secret: f.api_key_secret.value }),
  "shared-key": (f) => ({ shared_key_id: f.shared_key_id.value.trim(), shared_key_secret: f.shared_key_secret.value }),
  imis: (f) => ({
    base_url: f.imis_base_url.value.trim() || null,
    username: f.imis_username.value.trim(),
    password: f.imis_password.value,
  }),
  "imis-check": () => ({}),
  country: (f) => ({ default_country_prefix: f.default_country_prefix.value.trim() }),
  general: (f) => ({
    default_sender_id: f.default_sender_id.value || undefined,
    time_zone: f.time_zone.value.trim(),
    campaign_segment_limit: Number(f.campaign_segment_limit.value) || null,
    alert_emails: f.alert_emails.value.split(/[\s,;]+/).map((e) => e.trim()).filter(Boolean),
    ...Object.fromEntries(RETENTION_FIELDS.map((name) => [name, wholeNumber(f[name].value)])),
  }),
  erasure: (f) => ({ imis_id: f.imis_id.value.trim() || undefined, phone: f.phone.value.trim() || undefined }),
  user: (f) => ({ email: f.email.value.trim(), name: f.name.value.trim(), role: f.role.value, password: f.password.value }),
  "api-key-new": (f) => ({ name: f.name.value.trim(), role: f.role.value }),
  "test-number": (f) => ({ phone: f.phone.value.trim(), label: f.label.value.trim() }),
};

// Forms whose answer changes what the rest of the page shows: reload after saving them.
const reloadAfter = new Set(["credentials", "api-key", "shared-key", "imis", "imis-check", "user", "country",
  "test-number"]);

function showWarnings(warnings) {
  const box = document.getElementById("settings-warnings");
  box.replaceChildren(...warnings.map((w) => {
    const p = document.createElement("p");
    p.textContent = w.charAt(0).toUpperCase() + w.slice(1) + ".";
    return p;
  }));
  box.hidden = warnings.length === 0;
}

document.querySelectorAll("[data-settings-form]").forEach((form) => {
  const kind = form.dataset.settingsForm;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const saved = form.querySelector("[data-saved]");
    if (saved) saved.textContent = "";
    const error = form.querySelector("[data-form-error]");
    if (error) error.hidden = true;
    if (kind === "erasure") document.getElementById("erasure-result").hidden = true;
    const button = form.querySelector("button[type=submit]");
    const { confirm, confirmTitle, confirmLabel } = form.dataset;
    if (confirm && !(await confirmAction(confirmTitle, confirm, confirmLabel))) return;
    button.disabled = true;
    try {
      const result = await api(form.dataset.method, form.dataset.url, payloads[kind](form));
      form.querySelectorAll("input[type=password]").forEach((input) => { input.value = ""; });
      if (kind === "api-key-new") {
        document.getElementById("new-key-value").textContent = result.key;
        const box = document.getElementById("new-key");
        box.hidden = false;
        box.focus();
        form.reset();
        await refreshFragments(["api-key-list"]).catch(() => toast("Reload the page to see the new key in the list.", "error"));
      } else if (kind === "erasure") {
        form.reset();
        showErasure(result);
      } else if (reloadAfter.has(kind)) {
        sessionStorage.setItem("textpulse.flash", "Saved.");
        location.reload();
        return;
      } else {
        if (result?.warnings) showWarnings(result.warnings);
        if (saved) saved.textContent = "Saved";
      }
    } catch (problem) {
      if (problem instanceof Problem) showProblem(form, problem);
      else toast(problem.message, "error");
    } finally {
      button.disabled = false;
    }
  });
});

// The 15,000-30,000 recommendation, live as the limit is typed.
const limit = document.getElementById("campaign_segment_limit");
limit?.addEventListener("input", () => {
  document.getElementById("segment-limit-warning").hidden = !(Number(limit.value) > RECOMMENDED_MAX);
});

// Users: role and access change at once.
async function updateUser(id, change, control, undo = () => {}) {
  control.disabled = true;
  try {
    await api("PATCH", `/api/v1/users/${id}`, change);
    sessionStorage.setItem("textpulse.flash", "User updated.");
    location.reload();
  } catch (problem) {
    undo();
    toast(problem.message, "error");
    control.disabled = false;
  }
}

document.querySelectorAll("[data-user-role]").forEach((select) => {
  const initial = select.value;
  select.addEventListener("change", () => {
    updateUser(select.dataset.userRole, { role: select.value }, select, () => { select.value = initial; });
  });
});
document.querySelectorAll("[data-user-active]").forEach((button) => {
  button.addEventListener("click", () => updateUser(button.dataset.userActive, { active: button.dataset.active === "true" }, button));
});

// Staff test numbers: removed at once.
document.querySelectorAll("[data-test-number-remove]").forEach((button) => {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api("DELETE", `/api/v1/settings/test-numbers/${encodeURIComponent(button.dataset.testNumberRemove)}`);
      sessionStorage.setItem("textpulse.flash", "Test number removed.");
      location.reload();
    } catch (problem) {
      toast(problem.message, "error");
      button.disabled = false;
    }
  });
});
