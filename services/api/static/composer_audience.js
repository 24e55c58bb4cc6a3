// The composer's audience card: which kind is chosen, the IQA query and its parameters (in order, named as
// the query names its prompts when that is known, else "Parameter 1, 2, ..."), and the audience object that
// is saved. Saving starts from the audience as it was loaded and changes only what this card shows, so an
// Edit -> Save that touches nothing sends the stored audience back unchanged.
import { api } from "./app.js";

const $ = (id) => document.getElementById(id);

export function audienceCard(form, config) {
  const loaded = config.campaign?.audience ?? null;
  const list = $("iqa-parameters");
  const names = () => config.iqaParameterNames?.[$("iqa_query").value.trim()] ?? [];

  const kind = () => form.querySelector("input[name=audience_kind]:checked")?.value ?? "iqa";

  function label(index) {
    return (names()[index] || "").trim() || `Parameter ${index + 1}`;
  }

  function addParameter(value = "") {
    const index = list.children.length;
    const item = document.createElement("li");
    item.className = "parameter";
    const labelEl = document.createElement("label");
    labelEl.htmlFor = `iqa_parameter_${index}`;
    const input = document.createElement("input");
    input.type = "text";
    input.id = `iqa_parameter_${index}`;
    input.className = "mono";
    input.maxLength = 500;
    input.dataset.parameter = String(index);
    input.value = value;
    input.placeholder = "eq:…";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button secondary small";
    remove.dataset.removeParameter = "";
    item.append(labelEl, input, remove);
    list.append(item);
    relabel();
    return input;
  }

  // Labels follow positions: removing the first prompt's value moves the others up a place.
  function relabel() {
    [...list.children].forEach((item, index) => {
      const input = item.querySelector("input");
      input.id = `iqa_parameter_${index}`;
      input.dataset.parameter = String(index);
      item.querySelector("label").htmlFor = input.id;
      item.querySelector("label").textContent = label(index);
      item.querySelector("button").textContent = "Remove";
      item.querySelector("button").setAttribute("aria-label", `Remove ${label(index)}`);
    });
  }

  function parameters() {
    return [...list.querySelectorAll("input[data-parameter]")].map((input) => input.value);
  }

  // The audience to save: the loaded one with this card's fields set, so a field the card does not show
  // is kept (the API refuses one it does not know, rather than it vanishing here).
  function value() {
    const chosen = kind();
    const base = loaded && loaded.kind === chosen ? { ...loaded } : { kind: chosen };
    if (chosen === "iqa") {
      const query = $("iqa_query").value.trim();
      if (!query) return null;
      return { ...base, query, parameters: parameters() };
    }
    if (chosen === "list") return $("list_id").value ? { ...base, list_id: $("list_id").value } : null;
    return $("upload_id").value ? { ...base, upload_id: $("upload_id").value } : null;
  }

  // The whole audience in words, as the campaign page states it (POST /api/v1/audiences/describe).
  async function sentence() {
    const audience = value();
    if (!audience) return "no audience chosen yet";
    try {
      return (await api("POST", "/api/v1/audiences/describe", { audience })).description;
    } catch {
      return "the chosen audience";
    }
  }

  $("iqa-add-parameter").addEventListener("click", () => addParameter().focus());
  list.addEventListener("click", (event) => {
    const button = event.target.closest("[data-remove-parameter]");
    if (!button) return;
    button.closest("li").remove();
    relabel();
    $("iqa-add-parameter").focus();
  });
  $("iqa_query").addEventListener("change", relabel);

  for (const parameter of loaded?.kind === "iqa" ? loaded.parameters ?? [] : []) addParameter(parameter);

  return { kind, value, sentence, parameters, onParametersChange: (fn) => list.addEventListener("input", fn) };
}
