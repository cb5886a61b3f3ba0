// The jobs page: the tenant's jobs (refreshed while any is active) and the CSV submit form.

import { api, newIdempotencyKey } from "./api.js";
import { TERMINAL, progressRatio, progressText, shortId, when } from "./format.js";
import { whenSignedIn } from "./signin.js";

const REFRESH_MS = 3000;
const list = document.getElementById("jobs");
const more = document.getElementById("jobs-more");
const empty = document.getElementById("jobs-empty");
const listError = document.getElementById("jobs-error");
const updated = document.getElementById("jobs-updated");

let firstPage = [];
let olderPages = [];
let cursor = null;
let timer = null;

async function refresh() {
  clearTimeout(timer);
  try {
    const { data } = await api("/v1/jobs?limit=20");
    firstPage = data.jobs;
    if (!olderPages.length) cursor = data.next_cursor;
    listError.hidden = true;
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    render();
  } catch (exc) {
    if (exc.status === 401) return;  // signed out: the sign-in form is showing again
    listError.textContent = `Could not load the jobs: ${exc.message}`;
    listError.hidden = false;
  }
  const active = firstPage.some((job) => !TERMINAL.includes(job.status));
  timer = setTimeout(refresh, active ? REFRESH_MS : 4 * REFRESH_MS);
}

async function loadOlder() {
  const { data } = await api(`/v1/jobs?limit=20&cursor=${encodeURIComponent(cursor)}`);
  olderPages = olderPages.concat(data.jobs);
  cursor = data.next_cursor;
  render();
}

function render() {
  const seen = new Set();
  const jobs = [...firstPage, ...olderPages].filter((job) => !seen.has(job.id) && seen.add(job.id));
  list.replaceChildren(...jobs.map(jobItem));
  empty.hidden = jobs.length > 0;
  more.hidden = !cursor;
}

function jobItem(job) {
  const item = element("li", { className: "job", dataset: { id: job.id, status: job.status } });
  const link = element("a", { href: `/jobs/${encodeURIComponent(job.id)}`, className: "id" },
    shortId(job.id));
  const badge = element("span", { className: `badge ${job.status}` }, job.status);
  const bar = element("progress", { max: 1, value: progressRatio(job) });
  const detail = element("span", { className: "muted" },
    `${progressText(job.progress)} · ${when(job.created_at)}`);
  item.append(link, badge, bar, detail);
  if (job.error) item.append(element("span", { className: "error small" }, job.error));
  return item;
}

function element(tag, properties = {}, text) {
  const node = document.createElement(tag);
  const { dataset, ...rest } = properties;
  Object.assign(node, rest);
  Object.assign(node.dataset, dataset ?? {});
  // As text, never markup: ids and error messages are data.
  if (text !== undefined) node.textContent = text;
  return node;
}

function wireSubmitForm() {
  const form = document.getElementById("submit-form");
  const error = document.getElementById("submit-error");
  const button = document.getElementById("submit-button");
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
    for (const name of ["horizon", "season_length", "model.cell", "training.epochs"]) {
      const value = form.elements[name].value.trim();
      if (value) query.set(name, value);
    }
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

function showProblem(box, message, errors = []) {
  box.replaceChildren(element("p", {}, message));
  if (errors.length > 5) {
    const list = element("ul");
    list.append(...errors.map((e) => element("li", {}, `${(e.loc ?? []).join(".")}: ${e.msg}`)));
    box.append(list);
  }
  box.hidden = false;
}

more.addEventListener("click", () => loadOlder().catch((exc) => {
  listError.textContent = exc.message;
  listError.hidden = false;
}));

whenSignedIn(() => {
  wireSubmitForm();
  refresh();
});
