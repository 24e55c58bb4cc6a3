// Keyword answers: who answers HELP, and the organisation's own keywords, saved through /api/v1/settings/keywords.
import { api, clearFieldErrors, showProblem, toast } from "./app.js";

const form = document.getElementById("keywords-form");
if (form && form.dataset.admin === "true") {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const keywords = form.keywords.value.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
      const space = line.indexOf(" ");
      return space < 0 ? { keyword: line, reply: "" } : { keyword: line.slice(0, space), reply: line.slice(space + 1).trim() };
    });
    const body = { help_answered_by: form.help_answered_by.value, help_contact: form.help_contact.value, keywords };
    try {
      const saved = await api("PUT", "/api/v1/settings/keywords", body);
      document.getElementById("help-text").textContent = saved.help_text;
      toast("Saved.");
    } catch (problem) {
      if (problem.errors.some((e) => String(e.field || "").startsWith("keywords"))) {
        toast(problem.message, "error");
      } else {
        showProblem(form, problem);
      }
    }
  });
}
