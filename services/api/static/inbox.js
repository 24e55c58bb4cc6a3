// Inbox: the answer box (segment counter and cost while typing, sent once per intent), assign and done,
// and new replies shown without a reload (the page's own fragments, fetched again every few seconds).
import { api, clearFieldErrors, idempotencyKey, refreshFragments, refreshUnread, showProblem, toast } from "./app.js";

const POLL_MS = 3000;
const live = [...document.querySelectorAll("[data-live]")].map((el) => el.id);
if (live.length) setInterval(() => refreshFragments(live).catch(() => {}), POLL_MS);

const thread = document.getElementById("thread");
if (thread && Number(thread.dataset.unread) > 0) {
  api("POST", `/api/v1/inbox/${thread.dataset.conversation}/read`).then(refreshUnread).catch(() => {});
}

const form = document.getElementById("reply-form");
if (form) {
  const counter = document.getElementById("reply-counter");
  let timer;
  form.body.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const body = form.body.value;
      if (!body) { counter.textContent = "0 segments"; return; }
      try {
        const shown = await api("POST", "/api/v1/messages/preview", { body, recipients: 1 });
        const cost = shown.cost_per_recipient ? ` · about $${shown.cost_per_recipient}` : "";
        counter.textContent = `${shown.segments} segment${shown.segments === 1 ? "" : "s"} (${shown.encoding})${cost}`;
      } catch (problem) {
        counter.textContent = problem.message;
      }
    }, 200);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const url = `/api/v1/inbox/${form.dataset.conversation}/replies`;
    const body = { body: form.body.value };
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api("POST", url, body, { "Idempotency-Key": idempotencyKey(url, body) });
      form.reset();
      counter.textContent = "0 segments";
      toast("Queued: it is sent from the conversation's number in a moment.");
      await refreshFragments(["thread"]);
    } catch (problem) {
      showProblem(form, problem);
    } finally {
      button.disabled = false;
    }
  });
}

const assign = document.getElementById("assign-form");
if (assign) {
  assign.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/api/v1/inbox/${assign.dataset.conversation}/assign`, { user_id: assign.user_id.value || null });
      toast("Assigned.");
    } catch (problem) {
      toast(problem.message, "error");
    }
  });
}

const done = document.getElementById("mark-done");
if (done) {
  done.addEventListener("click", async () => {
    try {
      await api("POST", `/api/v1/inbox/${done.dataset.conversation}/done`);
      document.getElementById("conversation-state").textContent = "Done";
      done.remove();
    } catch (problem) {
      toast(problem.message, "error");
    }
  });
}
