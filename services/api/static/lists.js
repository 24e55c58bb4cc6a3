// The Lists pages: create a list; on a list's page rename it, add members (pasted lines, a CSV file, an
// earlier upload, whom a past run texted), page through and remove members, delete it. Every change goes
// through /api/v1/lists; pasted lines that were not added stay in the box with the reason for each.
import { api, clearFieldErrors, confirmAction, csrfToken, formatNumber, Problem, showProblem, toast } from "./app.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50;
const plural = (n, one, many) => `${formatNumber(n)} ${n === 1 ? one : many}`;

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

const newList = $("new-list");
if (newList) {
  newList.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(newList);
    try {
      const made = await api("POST", "/api/v1/lists", { name: $("list-name").value, description: $("list-description").value });
      location.assign(`/lists/${made.id}`);
    } catch (problem) {
      if (problem instanceof Problem) showProblem(newList, problem);
      else toast(problem.message, "error");
    }
  });
}

const configEl = $("list-config");
if (configEl) {
  const { listId } = JSON.parse(configEl.textContent);
  const base = `/api/v1/lists/${listId}`;
  let offset = 0;

  const showCount = (members) => { $("member-count").textContent = plural(members, "member", "members"); };

  async function loadEntries() {
    const page = await api("GET", `${base}/entries?limit=${PAGE}&offset=${offset}`);
    if (!page.items.length && offset > 0) {
      offset = Math.max(0, offset - PAGE);
      return loadEntries();
    }
    const rows = page.items.map((entry) => {
      const tr = element("tr");
      const name = [entry.merge_values.first_name, entry.merge_values.last_name].filter(Boolean).join(" ");
      const remove = element("button", "button secondary small", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${entry.member_id}`);
      remove.addEventListener("click", async () => {
        const out = await api("POST", `${base}/entries/remove`, { member_ids: [entry.member_id] });
        showCount(out.members);
        toast(`Removed ${entry.member_id}.`);
        loadEntries();
      });
      const action = element("td");
      action.append(remove);
      tr.append(element("td", "mono", entry.member_id), element("td", "mono", entry.mobile ?? "–"), element("td", "", name),
        action);
      return tr;
    });
    $("entries").replaceChildren(...rows);
    $("entries-wrap").hidden = rows.length === 0;
    $("entries-count").textContent = page.total
      ? `${formatNumber(offset + 1)}–${formatNumber(offset + rows.length)} of ${plural(page.total, "member", "members")}`
      : "Nobody is on this list yet.";
    $("entries-pager").hidden = page.total <= PAGE;
    $("entries-prev").disabled = offset === 0;
    $("entries-next").disabled = offset + PAGE >= page.total;
  }

  $("entries-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadEntries(); });
  $("entries-next").addEventListener("click", () => { offset += PAGE; loadEntries(); });

  function showAdded(out, what) {
    showCount(out.members);
    const box = element("div", out.rejected.length || out.unusable ? "alert warning" : "alert ok");
    box.append(element("p", "", `${what}: ${plural(out.added, "member", "members")} added`
      + (out.updated ? `, ${plural(out.updated, "member", "members")} already listed got the new details` : "")
      + `. The list has ${plural(out.members, "member", "members")}.`));
    if (out.unusable) box.append(element("p", "", `${plural(out.unusable, "row", "rows")} had no usable number.`));
    if (out.rejected.length) {
      box.append(element("p", "", `${plural(out.rejected.length, "line was", "lines were")} not added; they are left in the box to fix:`));
      const list = element("ul", "rejected-lines");
      for (const r of out.rejected) list.append(element("li", "", `Line ${r.line}, “${r.text}”: ${r.message}`));
      box.append(list);
    }
    $("add-result").replaceChildren(box);
    offset = 0;
    loadEntries();
  }

  function showFailure(problem, form) {
    if (form && problem instanceof Problem) showProblem(form, problem);
    else $("add-result").replaceChildren(element("div", "alert danger", problem.message));
  }

  const pasted = $("add-pasted");
  pasted.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(pasted);
    try {
      const out = await api("POST", `${base}/entries`, { text: $("pasted").value });
      $("pasted").value = out.rejected.map((r) => r.text).join("\n");
      showAdded(out, "Pasted lines");
    } catch (problem) {
      showFailure(problem, pasted);
    }
  });

  async function addFrom(path, body, what) {
    try {
      showAdded(await api("POST", `${base}/entries/${path}`, body), what);
    } catch (problem) {
      showFailure(problem);
    }
  }

  $("from-upload")?.addEventListener("change", (event) => {
    if (event.target.value) addFrom("from-upload", { upload_id: event.target.value }, "From the upload");
  });
  $("from-run")?.addEventListener("change", (event) => {
    if (event.target.value) addFrom("from-run", { run_id: event.target.value }, "From the run");
  });

  $("list-csv").addEventListener("change", async () => {
    const input = $("list-csv");
    const file = input.files[0];
    $("list-csv-error").textContent = "";
    if (!file) return;
    const data = new FormData();
    data.append("file", file, file.name);
    const response = await fetch("/api/v1/audiences/csv", {
      method: "POST", credentials: "same-origin", body: data,
      headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
    });
    const upload = await response.json().catch(() => ({}));
    if (!response.ok) {
      $("list-csv-error").textContent = new Problem(response.status, upload).message;
      return;
    }
    await addFrom("from-upload", { upload_id: upload.id }, file.name);
  });

  const settings = $("list-settings");
  settings.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(settings);
    try {
      await api("PATCH", base, { name: $("list-name").value, description: $("list-description").value });
      sessionStorage.setItem("textpulse.flash", "Saved.");
      location.reload();
    } catch (problem) {
      if (problem instanceof Problem) showProblem(settings, problem);
      else toast(problem.message, "error");
    }
  });

  $("delete-list").addEventListener("click", async () => {
    if (!(await confirmAction("Delete this list?", "Its members are removed from Textpulse's list (not from iMIS).",
      "Delete list"))) return;
    try {
      await api("DELETE", base);
      sessionStorage.setItem("textpulse.flash", "The list was deleted.");
      location.assign("/lists");
    } catch (problem) {
      toast(problem.message, "error");
    }
  });

  loadEntries();
}
