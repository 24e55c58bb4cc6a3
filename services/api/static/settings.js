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

// An optional whole number: empty is null (the default); what is not a number goes as typed, for the API to
// explain in words, never silently as null.
function optionalNumber(value) {
  const typed = value.trim();
  if (typed === "") return null;
  const number = Number(typed.replace(/[,\s]/g, ""));
  return Number.isFinite(number) ? number : typed;
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
  webhook_events: ["outgoing event", "outgoing events"],
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
  "sender-rate": (f) => ({ segments_per_second: wholeNumber(f.segments_per_second.value) }),
  country: (f) => ({ default_country_prefix: f.default_country_prefix.value.trim() }),
  general: (f) => ({
    default_sender_id: f.default_sender_id.value || undefined,
    time_zone: f.time_zone.value.trim(),
    campaign_segment_limit: Number(f.campaign_segment_limit.value) || null,
    alert_emails: f.alert_emails.value.split(/[\s,;]+/).map((e) => e.trim()).filter(Boolean),
    require_approval: f.require_approval.checked,
    reply_digests: f.reply_digests.checked,
    ...Object.fromEntries(RETENTION_FIELDS.map((name) => [name, wholeNumber(f[name].value)])),
    revocation_confirmation: f.revocation_confirmation.checked,
    revocation_confirmation_text: f.revocation_confirmation_text.value.trim(),
    run_member_cap: optionalNumber(f.run_member_cap.value),
  }),
  "send-rules": (f) => {
    const start = f.send_window_start.value;
    const end = f.send_window_end.value;
    const texts = f.marketing_cap_texts.value.trim();
    const days = f.marketing_cap_days.value.trim();
    return {
      window: start || end ? { start: start || null, end: end || null } : null,
      days: [...f.querySelectorAll("input[name=send_day]:checked")].map((input) => input.value),
      holidays: f.holidays.value.split(/[\s,;]+/).map((d) => d.trim()).filter(Boolean),
      marketing_cap: texts || days ? { texts: optionalNumber(texts), days: optionalNumber(days) } : null,
    };
  },
  "imis-writeback": (f) => ({
    target: f.querySelector("input[name=target]:checked")?.value,
    sms_communication_type_id: f.sms_communication_type_id.value.trim() || null,
    sms_panel: f.sms_panel.value.trim(),
  }),
  erasure: (f) => ({ imis_id: f.imis_id.value.trim() || undefined, phone: f.phone.value.trim() || undefined }),
  user: (f) => ({ email: f.email.value.trim(), name: f.name.value.trim(), role: f.role.value, password: f.password.value }),
  "api-key-new": (f) => ({ name: f.name.value.trim(), role: f.role.value }),
  "test-number": (f) => ({ phone: f.phone.value.trim(), label: f.label.value.trim() }),
  "endpoint-new": (f) => ({
    url: f.url.value.trim(),
    event_types: [...f.querySelectorAll("input[name=event_types]:checked")].map((input) => input.value),
  }),
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
      } else if (kind === "endpoint-new") {
        document.getElementById("new-endpoint-secret").textContent = result.secret;
        const box = document.getElementById("new-endpoint");
        box.hidden = false;
        box.focus();
        form.reset();
        await refreshFragments(["endpoint-list"]).catch(() => toast("Reload the page to see the new endpoint.", "error"));
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

// Event endpoints: enabled or disabled at once (delegated: the list is refreshed after an endpoint is added).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-endpoint-enabled]");
  if (!button) return;
  button.disabled = true;
  try {
    await api("PATCH", `/api/v1/webhook-endpoints/${button.dataset.endpointEnabled}`, { enabled: button.dataset.enabled === "true" });
    sessionStorage.setItem("textpulse.flash", "Endpoint updated.");
    location.reload();
  } catch (problem) {
    toast(problem.message, "error");
    button.disabled = false;
  }
});

// iMIS write-back: the check reads the saved target's definition from iMIS and lists what is missing.
document.querySelector("[data-imis-check]")?.addEventListener("click", async (event) => {
  const button = event.currentTarget;
  const box = document.getElementById("imis-check-result");
  button.disabled = true;
  box.hidden = true;
  try {
    const result = await api("POST", "/api/v1/settings/imis-writeback/check");
    const lines = [result.ok ? "iMIS has everything this write-back needs." : "iMIS is missing:"];
    lines.push(...result.missing.map((m) => `• ${m}`));
    if (result.found.length) lines.push(`Found: ${result.found.join("; ")}.`);
    box.className = result.ok ? "alert ok" : "alert danger";
    box.replaceChildren(...lines.map((line) => {
      const p = document.createElement("p");
      p.textContent = line;
      return p;
    }));
    box.hidden = false;
    box.focus();
  } catch (problem) {
    toast(problem.message, "error");
  } finally {
    button.disabled = false;
  }
});

// Toll-free verification: each number's status as Twilio last reported it, checked on demand; the form
// (prefilled by the API) submits or resubmits it.
const TFV_WORDS = {
  NOT_SUBMITTED: "not submitted (restricted)", PENDING_REVIEW: "pending review", IN_REVIEW: "in review",
  TWILIO_APPROVED: "approved", TWILIO_REJECTED: "rejected",
};
const tfvForm = document.querySelector("[data-tfv-form]");
let tfvSender = null;

function showVerification(item, v) {
  item.querySelector("[data-tfv-status]").textContent = v.status ? TFV_WORDS[v.status] : `${v.verification} (not checked with Twilio yet)`;
  const detail = [];
  if (v.rejection_reasons.length) detail.push(...v.rejection_reasons.map((r) => `${r.reason} (error ${r.error_code})`));
  else if (v.rejection_reason) detail.push(`${v.rejection_reason} (error ${v.error_code})`);
  if (v.edit_allowed && v.edit_expiration) detail.push(`Can be edited and resubmitted until ${new Date(v.edit_expiration).toLocaleString()}.`);
  if (v.checked_at) detail.push(`Checked ${new Date(v.checked_at).toLocaleString()}.`);
  item.querySelector("[data-tfv-detail]").textContent = detail.join(" ");
  const open = item.querySelector("[data-tfv-open]");
  open.hidden = !v.can_submit;
  open.textContent = v.status === "TWILIO_REJECTED" ? "Edit and resubmit" : "Submit for verification";
  item.verification = v;
}

function fillTfvForm(item) {
  const f = tfvForm;
  const v = item.verification.form;
  tfvSender = item;
  f.querySelector("[data-tfv-form-address]").textContent = item.dataset.address;
  for (const name of ["business_name", "business_website", "notification_email", "use_case_summary",
    "production_message_sample", "opt_in_type", "message_volume", "privacy_policy_url"]) f[name].value = v[name] || "";
  for (const option of f.use_case_categories.options) option.selected = v.use_case_categories.includes(option.value);
  f.opt_in_image_urls.value = v.opt_in_image_urls.join("\n");
  f.hidden = false;
  f.business_name.focus();
}

document.querySelectorAll("[data-tfv-sender]").forEach(async (item) => {
  const url = `/api/v1/senders/${item.dataset.tfvSender}/verification`;
  item.querySelector("[data-tfv-refresh]").addEventListener("click", async (event) => {
    event.target.disabled = true;
    try { showVerification(item, await api("POST", `${url}/refresh`)); } catch (problem) { toast(problem.message, "error"); }
    event.target.disabled = false;
  });
  item.querySelector("[data-tfv-open]").addEventListener("click", () => fillTfvForm(item));
  try { showVerification(item, await api("GET", url)); } catch (problem) { toast(problem.message, "error"); }
});

tfvForm?.querySelector("[data-tfv-cancel]").addEventListener("click", () => { tfvForm.hidden = true; });
tfvForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = tfvForm;
  clearFieldErrors(f);
  f.querySelector("[data-form-error]").hidden = true;
  const body = {
    business_name: f.business_name.value.trim(), business_website: f.business_website.value.trim(),
    notification_email: f.notification_email.value.trim(),
    use_case_categories: [...f.use_case_categories.selectedOptions].map((o) => o.value),
    use_case_summary: f.use_case_summary.value.trim(), production_message_sample: f.production_message_sample.value.trim(),
    opt_in_type: f.opt_in_type.value, message_volume: f.message_volume.value.trim(),
    opt_in_image_urls: f.opt_in_image_urls.value.split(/\s+/).filter(Boolean),
    privacy_policy_url: f.privacy_policy_url.value.trim() || null,
  };
  const button = f.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    showVerification(tfvSender, await api("POST", `/api/v1/senders/${tfvSender.dataset.tfvSender}/verification`, body));
    f.hidden = true;
    toast("Sent to Twilio for review.");
  } catch (problem) {
    if (problem instanceof Problem) showProblem(f, problem);
    else toast(problem.message, "error");
  } finally {
    button.disabled = false;
  }
});
