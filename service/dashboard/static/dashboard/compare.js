// Compare 2 to 6 runs (?ids=a,b,c): their validation losses overlaid, their gradient norms side
// by side on one scale, a summary, and the spec fields where they differ.

import { api } from "./api.js";
import { COLORS, Chart, PALETTE, line, logRange } from "./charts.js";
import { element } from "./dom.js";
import { duration, elapsed, formatG, lossTitle, runName, shortId } from "./format.js";
import { COMPARE_MAX, COMPARE_MIN } from "./runs.js";
import { whenSignedIn } from "./signin.js";

const $ = (id) => document.getElementById(id);

async function start() {
  const ids = (new URLSearchParams(window.location.search).get("ids") ?? "")
    .split(",").map((id) => id.trim()).filter(Boolean);
  const unique = [...new Set(ids)];
  if (unique.length < COMPARE_MIN || unique.length > COMPARE_MAX) {
    showError(`Pick ${COMPARE_MIN} to ${COMPARE_MAX} runs on the runs page (got ` +
      `${unique.length}): /compare?ids=first,second,…`);
    return;
  }
  let runs;
  try {
    runs = await Promise.all(unique.map(loadRun));
  } catch (exc) {
    showError(exc.status === 404 ? `No such run: ${exc.message}` : exc.message);
    return;
  }
  document.title = `${runs.map((r) => runName(r.job)).join(" · ")} · bptt`;
  showSummary(runs);
  drawValidation(runs);
  drawGradients(runs);
  const toggle = $("diff-all");
  toggle.addEventListener("change", () => showSpecDiff(runs, toggle.checked));
  showSpecDiff(runs, false);
}

// A run's job document and every metrics row.
async function loadRun(id) {
  const job = (await api(`/v1/jobs/${encodeURIComponent(id)}`)).data;
  const metrics = [];
  for (let since = 0; ;) {
    const { data } = await api(`/v1/jobs/${encodeURIComponent(job.id)}/metrics?since=${since}`);
    metrics.push(...data.metrics);
    since = data.last_epoch;
    if (!data.has_more) break;
  }
  return { job, metrics };
}

function showSummary(runs) {
  const head = element("tr");
  head.append(element("th", { scope: "col" }, ""));
  runs.forEach(({ job }, i) => {
    const th = element("th", { scope: "col", className: "run-head" });
    th.append(element("span", { className: "swatch", dataset: { color: String(i) } }),
      element("a", { href: `/jobs/${encodeURIComponent(job.id)}` }, runName(job)));
    head.append(th);
  });
  const facts = [
    ["id", (r) => shortId(r.job.id)],
    ["status", (r) => r.job.status],
    ["epochs", (r) => String(r.metrics.length)],
    ["best val loss", (r) => formatG(r.job.best_val_loss, 4)],
    ["CV MASE", (r) => formatG(r.job.cv_mase, 3)],
    ["duration", (r) => duration(elapsed(r.job))],
    ["series", (r) => String(r.job.num_series ?? "–")],
  ];
  const rows = facts.map(([name, value]) => {
    const tr = element("tr");
    tr.append(element("th", { scope: "row" }, name), ...runs.map((r) => element("td", {},
      value(r))));
    return tr;
  });
  $("compare-summary").querySelector("thead").replaceChildren(head);
  $("compare-summary").querySelector("tbody").replaceChildren(...rows);
  $("compare-summary").dataset.runs = String(runs.length);
}

// Every run's validation loss over the union of their epochs, on one chart.
function drawValidation(runs) {
  const epochs = [...new Set(runs.flatMap((r) => r.metrics.map((m) => m.epoch)))]
    .sort((a, b) => a - b);
  const columns = runs.map(({ metrics }) => {
    const byEpoch = new Map(metrics.map((m) => [m.epoch, m.val_loss > 0 ? m.val_loss : null]));
    return epochs.map((e) => byEpoch.get(e) ?? null);
  });
  const titles = new Set(runs.map((r) => lossTitle(r.job.spec)));
  const yLabel = titles.size === 1 ? `val ${[...titles][0]}` : "val loss (each its own)";
  const chart = new Chart($("chart-val"), {
    series: runs.map((r, i) => line(runName(r.job), PALETTE[i])),
    y: { distr: 3, range: logRange }, yLabel, height: 300,
    empty: "The runs have no validation losses yet: they appear after their first epochs.",
  });
  chart.setData([epochs, ...columns]);
  $("chart-val").dataset.runs = String(runs.length);
  $("chart-val").dataset.curves = columns.map((c) => c.filter((v) => v != null).length).join(",");
}

// One gradient-norm chart per run, side by side, on a y range shared by all.
function drawGradients(runs) {
  const norms = runs.flatMap((r) => [...r.metrics.map((m) => m.grad_norm),
    r.job.spec?.training?.clip?.max_norm]).filter((v) => v > 0);
  const range = logRange(null, Math.min(...norms), Math.max(...norms));
  const grid = $("grad-charts");
  grid.replaceChildren();
  runs.forEach(({ job, metrics }, i) => {
    const box = element("div", { className: "chart", dataset: { id: job.id } });
    const figure = element("figure", { className: "scatter" });
    figure.append(element("figcaption", { className: "small" }, runName(job)), box);
    grid.append(figure);
    const limit = job.spec?.training?.clip?.max_norm ?? null;
    const chart = new Chart(box, {
      series: [line("mean |g|", PALETTE[i]), line("clip at", COLORS.limit,
        { width: 1, dash: [6, 4] })],
      y: { distr: 3, range }, yLabel: "gradient L2 norm",
      empty: "This run has no epochs yet.",
    });
    chart.setData([metrics.map((m) => m.epoch), metrics.map((m) => (m.grad_norm > 0
      ? m.grad_norm : null)), metrics.map(() => limit)]);
  });
}

// Each spec's leaves by dotted path (lists as one value).
function leaves(value, prefix = "", out = new Map()) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) leaves(inner, `${prefix}${key}.`, out);
  } else {
    out.set(prefix.slice(0, -1), value);
  }
  return out;
}

function showSpecDiff(runs, every) {
  const specs = runs.map((r) => leaves(r.job.spec));
  const paths = [...new Set(specs.flatMap((s) => [...s.keys()]))].sort();
  const text = (v) => (v === undefined ? "–" : typeof v === "string" ? v : JSON.stringify(v));
  const differing = paths.filter((p) => new Set(specs.map((s) => text(s.get(p)))).size > 1);
  const shown = every ? paths : differing;
  const head = element("tr");
  head.append(element("th", { scope: "col" }, "field"),
    ...runs.map((r) => element("th", { scope: "col" }, runName(r.job))));
  const rows = shown.map((path) => {
    const tr = element("tr", { className: differing.includes(path) ? "differs" : "",
      dataset: { path } });
    tr.append(element("th", { scope: "row" }, path),
      ...specs.map((s) => element("td", {}, text(s.get(path)))));
    return tr;
  });
  $("spec-diff").querySelector("thead").replaceChildren(head);
  $("spec-diff").querySelector("tbody").replaceChildren(...rows);
  $("spec-diff").dataset.rows = String(rows.length);
  $("diff-note").textContent = differing.length
    ? `${differing.length} of ${paths.length} fields differ (the specs the runs trained with, ` +
      "every open choice made)."
    : `The ${paths.length} fields are the same: the runs differ only in their data or seed.`;
}

function showError(message) {
  $("compare-error").textContent = message;
  $("compare-error").hidden = false;
}

whenSignedIn(start);
