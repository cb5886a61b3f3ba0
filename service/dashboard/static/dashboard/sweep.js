// The sweep page: progress, trials with their settings and scores (the best highlighted),
// score against each swept setting, cancel, and a forecast with the best trial.

import { api } from "./api.js";
import { element } from "./dom.js";
import { ForecastView } from "./forecast.js";
import { formatG, progressText, runName, shortId } from "./format.js";
import { whenSignedIn } from "./signin.js";
import { parallelCoordinates, scatters } from "./sweep_charts.js";

const POLL_MS = 2000;
const RETRY_MS = 5000;
const sweepId = document.querySelector("main").dataset.sweepId;
const sweepPath = `/v1/sweeps/${encodeURIComponent(sweepId)}`;
const $ = (id) => document.getElementById(id);
let sweep = null;
let drawn = "";  // what the charts show, so that a poll that changes nothing redraws nothing
let forecast = null;
let scatterCharts = [];

async function poll() {
  try {
    show((await api(sweepPath)).data);
    $("sweep-error").hidden = true;
  } catch (exc) {
    if (exc.status === 404 || exc.status === 401) {
      showError(exc.status === 404 ? "There is no such sweep for this token." : exc.message);
      return;
    }
    showError(`Connection problem, retrying: ${exc.message}`);
    setTimeout(poll, RETRY_MS);
    return;
  }
  if (sweep.finished_at == null) setTimeout(poll, POLL_MS);
}

function show(document_) {
  sweep = document_;
  $("sweep-name").textContent = runName(sweep);
  document.title = `${runName(sweep)} · bptt`;
  $("sweep-labels").replaceChildren(...Object.entries(sweep.labels ?? {}).map(([k, v]) =>
    element("span", { className: "chip" }, `${k}: ${v}`)));
  const status = $("sweep-status");
  status.textContent = sweep.status;
  status.className = `badge ${sweep.status}`;
  document.querySelector("main").dataset.status = sweep.status;
  $("sweep-progress").max = sweep.trials_total;
  $("sweep-progress").value = sweep.trials_finished;
  const running = sweep.trials.filter((t) => t.status === "running").length;
  $("sweep-summary").textContent = `${sweep.trials_finished} of ${sweep.trials_total} trials ` +
    `finished${running ? `, ${running} running` : ""} · ${sweep.strategy} search, budget ` +
    `${sweep.budget} · ranked by ${sweep.metric === "cv_mase" ? "CV MASE" : "validation loss"}`;
  const best = sweep.trials.find((t) => t.job_id === sweep.best_job_id);
  $("sweep-best").textContent = best
    ? `Best: trial ${best.trial}, score ${formatG(best.score, 4)} (${settingsText(best)}).`
    : sweep.finished_at ? "No trial succeeded: there is no best trial."
      : "The best trial is named once every trial has finished.";
  $("cancel-sweep").hidden = sweep.finished_at != null;
  $("forecast-best").disabled = !sweep.best_job_id;
  showTrials();
  const key = JSON.stringify(sweep.trials.map((t) => [t.score, t.status])) + sweep.best_job_id;
  if (key !== drawn) {
    drawn = key;
    showCharts();
  }
}

function settingsText(trial) {
  return Object.entries(trial.settings).map(([k, v]) => `${k} ${formatValue(v)}`).join(", ");
}

function formatValue(value) {
  return typeof value === "number" ? formatG(value, 4) : String(value);
}

function showTrials() {
  const paths = Object.keys(sweep.space);
  const head = element("tr");
  for (const title of ["trial", "run", "status", ...paths, "score"]) {
    head.append(element("th", { scope: "col" }, title));
  }
  const rows = sweep.trials.map((trial) => {
    const best = trial.job_id === sweep.best_job_id;
    const tr = element("tr", { className: best ? "best" : "", dataset: { id: trial.job_id,
      trial: String(trial.trial), status: trial.status } });
    const run = element("td");
    run.append(element("a", { href: `/jobs/${encodeURIComponent(trial.job_id)}` },
      shortId(trial.job_id)));
    if (best) run.append(element("span", { className: "chip best" }, "best"));
    const status = element("td");
    status.append(element("span", { className: `badge ${trial.status}` }, trial.status),
      element("span", { className: "muted small block" }, trial.error ?? progressText(
        trial.progress)));
    tr.append(element("td", { className: "num" }, String(trial.trial)), run, status,
      ...paths.map((p) => element("td", { className: "num" }, formatValue(trial.settings[p]))),
      element("td", { className: "num" }, formatG(trial.score, 4)));
    return tr;
  });
  $("trials").querySelector("thead").replaceChildren(head);
  $("trials").querySelector("tbody").replaceChildren(...rows);
  $("trials").dataset.rows = String(rows.length);
}

function showCharts() {
  const scored = sweep.trials.filter((t) => t.score != null).length;
  for (const { chart } of scatterCharts) chart.destroy();
  scatterCharts = scatters($("scatters"), sweep, sweep.trials);
  const unscored = sweep.trials.length - scored;
  $("scatters-note").textContent = `${scored} trial${scored === 1 ? "" : "s"} with a score` +
    (unscored ? `; ${unscored} without one yet (queued, running, failed or cancelled).` : ".") +
    " Lower is better; the best trial in pink.";
  const many = Object.keys(sweep.space).length > 2;
  $("parallel-card").hidden = !many || scored === 0;
  if (many && scored) parallelCoordinates($("parallel"), sweep, sweep.trials);
}

async function cancel() {
  show((await api(`${sweepPath}/cancel`, { method: "POST" })).data);
}

async function forecastWithBest() {
  $("forecast-card").hidden = false;
  forecast ??= new ForecastView({ container: $("chart-forecast"), select: $("series-select"),
    note: $("forecast-note") });
  const best = (await api(`/v1/jobs/${encodeURIComponent(sweep.best_job_id)}`)).data;
  await forecast.load({ sweep_id: sweepId }, { jobId: best.id, spec: best.spec });
  $("forecast-note").textContent += ` Trial ${best.trial} (${shortId(best.id)}), the best.`;
}

function showError(message) {
  $("sweep-error").textContent = message;
  $("sweep-error").hidden = false;
}

function wire(id, action) {
  $(id).addEventListener("click", async () => {
    $(id).disabled = true;
    try {
      await action();
    } catch (exc) {
      showError(exc.message);
    } finally {
      $(id).disabled = id === "forecast-best" && !sweep?.best_job_id;
    }
  });
}

whenSignedIn(() => {
  wire("cancel-sweep", cancel);
  wire("forecast-best", forecastWithBest);
  poll();
});
