// The runs table of the jobs page: sorted and filtered by the API (so the order holds across
// pages), paged with its cursors, a sweep's trials grouped under the sweep (collapsed until
// opened), refreshed while anything runs. Sort, filters, open groups and the runs picked for
// comparison survive every refresh; sort and filters live in the page's URL too.

import { api } from "./api.js";
import { element } from "./dom.js";
import {
  TERMINAL, ago, duration, elapsed, formatG, progressRatio, progressText, runName, shortId, when,
} from "./format.js";

const REFRESH_MS = 3000;
const IDLE_REFRESH_MS = 15000;
const PAGE_SIZE = 20;  // runs per page, unless the URL asks for 1 to 100 (?limit=50)
const TRIALS_SHOWN = 100;  // trials listed under an open sweep, at most
export const COMPARE_MIN = 2;
export const COMPARE_MAX = 6;

// Columns after the selection box: what each shows, and the API sort it orders by. The first
// click on a column sorts the way one usually wants it (best losses first, newest first).
const COLUMNS = [
  { sort: "name", title: "Run", first: "" },
  { sort: "status", title: "Status", first: "" },
  { sort: "cell", title: "Cell", first: "" },
  { sort: "hidden", title: "Hidden × layers", first: "-" },
  { sort: "series", title: "Series", first: "-" },
  { sort: "horizon", title: "Horizon", first: "-" },
  { sort: "val_loss", title: "Best val loss", first: "" },
  { sort: "cv_mase", title: "CV MASE", first: "" },
  { sort: "duration", title: "Duration", first: "-" },
  { sort: "created", title: "Created", first: "-" },
];

export class RunsTable {
  // elements: {table, toolbar controls, more, empty, error, updated, compare}
  constructor(elements) {
    this.el = elements;
    const query = new URLSearchParams(window.location.search);
    this.view = {
      sort: query.get("sort") ?? "-created",
      status: query.get("status") ?? "",
      cell: query.get("cell") ?? "",
      labels: query.getAll("label"),
      limit: Math.min(100, Math.max(1, Number(query.get("limit")) || PAGE_SIZE)),
    };
    this.pages = 1;
    this.rows = [];  // jobs of the pages loaded, in the API's order
    this.cursor = null;
    this.sweeps = new Map();  // sweep id -> its document (without trials)
    this.open = new Set();  // sweeps whose trials are shown
    this.trials = new Map();  // open sweep id -> its trials, filtered and sorted as the table
    this.selected = new Set();  // job ids picked for comparison
    this.generation = 0;  // a refresh started before the view changed is thrown away
    this.timer = null;
    this.wire();
  }

  wire() {
    const { status, cell, labels, clear, more, compare } = this.el;
    status.value = this.view.status;
    cell.value = this.view.cell;
    labels.value = this.view.labels.join(", ");
    status.addEventListener("change", () => this.change({ status: status.value }));
    cell.addEventListener("change", () => this.change({ cell: cell.value }));
    labels.addEventListener("change", () => this.change({ labels: labelFilters(labels.value) }));
    labels.form.addEventListener("submit", (event) => {  // Enter in the labels field
      event.preventDefault();
      this.change({ labels: labelFilters(labels.value) });
    });
    clear.addEventListener("click", () => {
      status.value = cell.value = labels.value = "";
      this.change({ status: "", cell: "", labels: [] });
    });
    more.addEventListener("click", () => this.loadMore());
    compare.addEventListener("click", () => {
      window.location.assign(`/compare?ids=${[...this.selected].join(",")}`);
    });
  }

  // A new sort or filter: back to the first page, and into the URL.
  change(update) {
    Object.assign(this.view, update);
    this.pages = 1;
    const query = new URLSearchParams();
    if (this.view.sort !== "-created") query.set("sort", this.view.sort);
    if (this.view.limit !== PAGE_SIZE) query.set("limit", String(this.view.limit));
    if (this.view.status) query.set("status", this.view.status);
    if (this.view.cell) query.set("cell", this.view.cell);
    for (const label of this.view.labels) query.append("label", label);
    const search = query.toString();
    window.history.replaceState(null, "", search ? `?${search}` : window.location.pathname);
    this.refresh();
  }

  // The API query of the current view (sweep_id given for an open sweep's trials).
  query(extra = {}) {
    const query = new URLSearchParams({ sort: this.view.sort, ...extra });
    if (this.view.status) query.set("status", this.view.status);
    if (this.view.cell) query.set("cell", this.view.cell);
    for (const label of this.view.labels) query.append("label", label);
    return query;
  }

  async loadMore() {
    this.pages += 1;
    await this.refresh();
  }

  // Every loaded page again, then the sweeps shown: one consistent picture per round.
  async refresh() {
    clearTimeout(this.timer);
    const generation = ++this.generation;
    try {
      const rows = [];
      let cursor = null;
      for (let page = 0; page < this.pages; page += 1) {
        const extra = { limit: String(this.view.limit), ...(cursor ? { cursor } : {}) };
        const { data } = await api(`/v1/jobs?${this.query(extra)}`);
        rows.push(...data.jobs);
        cursor = data.next_cursor;
        if (!cursor) break;
      }
      const sweepIds = [...new Set(rows.map((job) => job.sweep_id).filter(Boolean))];
      const sweeps = await this.loadSweeps(sweepIds);
      const trials = new Map();
      for (const id of sweepIds.filter((s) => this.open.has(s))) {
        const extra = { sweep_id: id, limit: String(TRIALS_SHOWN) };
        trials.set(id, (await api(`/v1/jobs?${this.query(extra)}`)).data.jobs);
      }
      if (generation !== this.generation) return;  // the view changed meanwhile
      Object.assign(this, { rows, cursor, sweeps, trials });
      this.el.error.hidden = true;
      this.el.updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
      this.render();
    } catch (exc) {
      if (exc.status === 401 || generation !== this.generation) return;
      this.el.error.textContent = `Could not load the runs: ${exc.message}`;
      this.el.error.hidden = false;
    }
    const active = this.rows.some((job) => !TERMINAL.includes(job.status))
      || [...this.sweeps.values()].some((s) => s.status === "running");
    this.timer = setTimeout(() => this.refresh(), active ? REFRESH_MS : IDLE_REFRESH_MS);
  }

  // The sweeps of these ids: the newest hundred in one call, any older one on its own.
  async loadSweeps(ids) {
    const found = new Map();
    if (!ids.length) return found;
    const { data } = await api("/v1/sweeps?limit=100");
    for (const sweep of data.sweeps) found.set(sweep.id, sweep);
    for (const id of ids.filter((s) => !found.has(s))) {
      found.set(id, (await api(`/v1/sweeps/${encodeURIComponent(id)}`)).data);
    }
    return found;
  }

  render() {
    const body = [];
    const placed = new Set();
    for (const job of this.rows) {
      if (!job.sweep_id) {
        body.push(this.jobRow(job));
      } else if (!placed.has(job.sweep_id)) {  // the group stands where its first trial does
        placed.add(job.sweep_id);
        const onPage = this.rows.filter((j) => j.sweep_id === job.sweep_id);
        body.push(this.sweepRow(this.sweeps.get(job.sweep_id), onPage));
        if (this.open.has(job.sweep_id)) {
          const trials = this.trials.get(job.sweep_id) ?? onPage;
          body.push(...trials.map((trial) => this.jobRow(trial, "trial")));
        }
      }
    }
    const { table, empty, more } = this.el;
    table.querySelector("thead").replaceChildren(this.header());
    table.querySelector("tbody").replaceChildren(...body);
    table.dataset.sort = this.view.sort;
    table.dataset.rows = String(this.rows.length);
    const filtered = this.view.status || this.view.cell || this.view.labels.length;
    empty.textContent = filtered ? "No runs match these filters."
      : "No jobs yet: submit a CSV to train one.";
    empty.hidden = this.rows.length > 0;
    more.hidden = !this.cursor;
    this.showSelection();
  }

  header() {
    const tr = element("tr");
    tr.append(element("th", { scope: "col", className: "pick", title: "pick runs to compare" },
      "⇄"));
    const [current, descending] = [this.view.sort.replace(/^-/, ""), this.view.sort[0] === "-"];
    for (const column of COLUMNS) {
      const sorted = column.sort === current;
      const th = element("th", { scope: "col" });
      th.setAttribute("aria-sort", sorted ? (descending ? "descending" : "ascending") : "none");
      const arrow = sorted ? (descending ? " ▼" : " ▲") : "";
      const button = element("button", { type: "button", className: "sort",
        dataset: { sort: column.sort } }, column.title + arrow);
      button.addEventListener("click", () => {
        const next = sorted ? `${descending ? "" : "-"}${column.sort}`
          : `${column.first}${column.sort}`;
        this.change({ sort: next });
      });
      th.append(button);
      tr.append(th);
    }
    return tr;
  }

  jobRow(job, kind = "run") {
    const tr = element("tr", { className: kind, dataset: { id: job.id, status: job.status } });
    if (job.sweep_id) tr.dataset.sweepId = job.sweep_id;
    const pick = element("input", { type: "checkbox", checked: this.selected.has(job.id),
      ariaLabel: `compare ${runName(job)}` });
    pick.addEventListener("change", () => {
      if (pick.checked) this.selected.add(job.id);
      else this.selected.delete(job.id);
      this.showSelection();
    });
    const name = element("td", { className: "name" });
    name.append(element("a", { href: `/jobs/${encodeURIComponent(job.id)}` }, runName(job)));
    if (job.name != null) name.append(element("code", { className: "id small" }, shortId(job.id)));
    const chips = Object.entries(job.labels ?? {}).map(([key, value]) => this.chip(key, value));
    if (chips.length) name.append(element("span", { className: "chips" }, ""), ...chips);
    if (job.error) name.append(element("span", { className: "error small block" }, job.error));
    const status = element("td", { className: "status" });
    status.append(element("span", { className: `badge ${job.status}` }, job.status),
      element("progress", { max: 1, value: progressRatio(job) }),
      element("span", { className: "muted small block" }, progressText(job.progress)));
    const size = job.hidden_size == null ? "–" : `${job.hidden_size} × ${job.num_layers ?? 1}`;
    tr.append(element("td", { className: "pick" }), name, status,
      element("td", {}, job.cell ?? "–"), element("td", { className: "num" }, size),
      element("td", { className: "num" }, job.num_series ?? "–"),
      element("td", { className: "num" }, job.horizon ?? "–"),
      element("td", { className: "num" }, formatG(job.best_val_loss, 4)),
      element("td", { className: "num" }, formatG(job.cv_mase, 3)),
      element("td", { className: "num" }, duration(elapsed(job))),
      element("td", { className: "when", title: when(job.created_at) }, ago(job.created_at)));
    tr.firstChild.append(pick);
    return tr;
  }

  // A sweep's row: its state and best score; a button shows or hides its trials.
  sweepRow(sweep, onPage) {
    const id = onPage[0].sweep_id;
    const open = this.open.has(id);
    const tr = element("tr", { className: "sweep", dataset: { sweepId: id,
      status: sweep?.status ?? "", trials: String(onPage.length) } });
    const toggle = element("button", { type: "button", className: "toggle",
      ariaExpanded: String(open), ariaLabel: `${open ? "hide" : "show"} the sweep's trials` },
    open ? "▾" : "▸");
    toggle.addEventListener("click", () => {
      if (this.open.has(id)) this.open.delete(id);
      else this.open.add(id);
      this.refresh();
    });
    const name = element("td", { className: "name" });
    name.append(element("a", { href: `/sweeps/${encodeURIComponent(id)}` },
      sweep?.name ?? `Sweep ${shortId(id)}`),
    element("span", { className: "muted small block" },
      `sweep · ${sweep ? `${sweep.trials_total} trials, ${sweep.strategy}` : ""}`));
    for (const [key, value] of Object.entries(sweep?.labels ?? {})) {
      name.append(this.chip(key, value));
    }
    const status = element("td", { className: "status" });
    if (sweep) {
      status.append(element("span", { className: `badge ${sweep.status}` }, sweep.status),
        element("progress", { max: sweep.trials_total, value: sweep.trials_finished }),
        element("span", { className: "muted small block" },
          `${sweep.trials_finished}/${sweep.trials_total} trials finished`));
    }
    const best = sweep?.best_score == null ? "–" : `best ${formatG(sweep.best_score, 4)}`;
    const byLoss = sweep?.metric !== "cv_mase";
    const first = element("td", { className: "pick" });
    first.append(toggle);
    tr.append(first, name, status, ...["", "", "", ""].map((t) => element("td", {}, t)),
      element("td", { className: "num" }, byLoss ? best : ""),
      element("td", { className: "num" }, byLoss ? "" : best),
      element("td", {}, ""), element("td", { className: "when", title: when(sweep?.created_at) },
        ago(sweep?.created_at)));
    return tr;
  }

  // A label; a click filters the table by it.
  chip(key, value) {
    const chip = element("button", { type: "button", className: "chip",
      title: `show only runs labelled ${key}: ${value}` }, `${key}: ${value}`);
    chip.addEventListener("click", () => {
      const labels = [...new Set([...this.view.labels, `${key}:${value}`])];
      this.el.labels.value = labels.join(", ");
      this.change({ labels });
    });
    return chip;
  }

  showSelection() {
    const n = this.selected.size;
    const { compare } = this.el;
    compare.textContent = `Compare ${n} run${n === 1 ? "" : "s"}`;
    compare.disabled = n < COMPARE_MIN || n > COMPARE_MAX;
    compare.title = `Pick ${COMPARE_MIN} to ${COMPARE_MAX} runs to compare them`;
  }
}

// `team:retail, stage:prod` as the API's label filters (a value may hold spaces, not commas).
export function labelFilters(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean);
}
