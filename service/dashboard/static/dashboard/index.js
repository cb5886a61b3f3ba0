// The jobs page: the runs table (runs.js) and the CSV submit form.

import { api, newIdempotencyKey } from "./api.js";
import { element } from "./dom.js";
import { RunsTable } from "./runs.js";
import { whenSignedIn } from "./signin.js";

const $ = (id) => document.getElementById(id);

function wireSubmitForm() {
  const form = $("submit-form");
  const error = $("submit-error");
  const button = $("submit-button");
  let key = newIdempotencyKey();  // a double click or a retry replays, never trains twice
  form.addEventListener("input", () => { key = newIdempotencyKey(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const file = form.elements.file.files[0];
    const csv = file ? await file.text() : form.elements.text.value;
    if (!csv.trim()) {
      showProblem(error, "Choose a CSV file or paste one.");
      return;
    }
    // Spec fields go in the query with a CSV body, named as the API names them.
    const query = new URLSearchParams();
    for (const name of ["horizon", "season_length", "model.cell", "training.epochs", "name"]) {
      const value = form.elements[name].value.trim();
      if (value) query.set(name, value);
    }
    const labels = parseLabels(form.elements.labels.value);
    if (labels === null) {
      showProblem(error, "Labels: write key=value pairs separated by commas (team=retail, v=2).");
      return;
    }
    for (const [name, value] of labels) query.set(`labels.${name}`, value);
    // Quantiles are on unless the field is emptied: then none, as its placeholder says (an
    // absent field would mean the API's default, 0.1,0.5,0.9). As a JSON list, so that one
    // level alone ("0.5") is a list too.
    query.set("quantiles", `[${form.elements.quantiles.value.trim()}]`);
    button.disabled = true;
    try {
      const { data } = await api(`/v1/jobs?${query}`, {
        method: "POST", body: csv, contentType: "text/csv", headers: { "Idempotency-Key": key },
      });
      location.assign(`/jobs/${encodeURIComponent(data.id)}`);
    } catch (exc) {
      showProblem(error, exc.message, exc.problem?.errors);
      button.disabled = false;
    }
  });
}

// `team=retail, v=2` as [[key, value]...]; null when a part has no `=` (the API checks the
// keys and values themselves).
export function parseLabels(text) {
  const pairs = [];
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf("=");
    if (at <= 0) return null;
    pairs.push([part.slice(0, at).trim(), part.slice(at + 1).trim()]);
  }
  return pairs;
}

function showProblem(box, message, errors = []) {
  box.replaceChildren(element("p", {}, message));
  if (errors.length > 5) {
    const list = element("ul");
    list.append(...errors.map((e) => element("li", {}, `${(e.loc ?? []).join(".")}: ${e.msg}`)));
    box.append(list);
  }
  box.hidden = false;
}

whenSignedIn(() => {
  wireSubmitForm();
  new RunsTable({
    table: $("runs"), status: $("filter-status"), cell: $("filter-cell"),
    labels: $("filter-labels"), clear: $("filter-clear"), more: $("jobs-more"),
    empty: $("jobs-empty"), error: $("jobs-error"), updated: $("jobs-updated"),
    compare: $("compare"),
  }).refresh();
});
