// The datasets card of the jobs page: the tenant's uploaded datasets, a page at a time.
// Loads once the page is signed in (signin.js shows #app), without touching the jobs' script.

import { api, getToken } from "./api.js";
import { shortId, when } from "./format.js";

const table = document.getElementById("datasets");
const body = table.querySelector("tbody");
const empty = document.getElementById("datasets-empty");
const more = document.getElementById("datasets-more");
const error = document.getElementById("datasets-error");
const updated = document.getElementById("datasets-updated");
const app = document.getElementById("app");

let rows = [];
let cursor = null;
let started = false;

async function load(next = null) {
  const query = new URLSearchParams({ limit: "20" });
  if (next) query.set("cursor", next);
  try {
    const { data } = await api(`/v1/datasets?${query}`);
    rows = next ? rows.concat(data.datasets) : data.datasets;
    cursor = data.next_cursor;
    error.hidden = true;
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    render();
  } catch (exc) {
    if (exc.status === 401) return;  // signed out: the sign-in form is showing again
    error.textContent = `Could not load the datasets: ${exc.message}`;
    error.hidden = false;
  }
}

function render() {
  body.replaceChildren(...rows.map(row));
  table.hidden = rows.length === 0;
  empty.hidden = rows.length > 0;
  more.hidden = !cursor;
}

function row(dataset) {
  const tr = document.createElement("tr");
  tr.dataset.id = dataset.id;
  const cells = [
    dataset.name ?? "–", shortId(dataset.id), count(dataset.num_series),
    count(dataset.num_points), count(dataset.num_gaps),
    `${dataset.min_length}–${dataset.max_length}`, dataset.frequency ?? "–",
    bytes(dataset.stored_bytes), when(dataset.created_at),
  ];
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;  // as text, never markup: names are data
    tr.append(td);
  }
  tr.children[1].title = dataset.id;
  return tr;
}

function count(n) {
  return n.toLocaleString("en-US");
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function start() {
  if (started || app.hidden || !getToken()) return;
  started = true;
  load();
}

more.addEventListener("click", () => load(cursor));
new MutationObserver(start).observe(app, { attributes: true, attributeFilter: ["hidden"] });
start();
