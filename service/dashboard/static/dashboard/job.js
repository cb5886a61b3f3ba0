// The job page: status, live curves (polled with ?since=), gradient flow, the forecast, and
// the actions (job_actions.js).

import { api } from "./api.js";
import { COLORS, Chart, line, logRange } from "./charts.js";
import { element } from "./dom.js";
import { ForecastView } from "./forecast.js";
import {
  TERMINAL, formatBytes, formatG, lossTitle, progressFields, progressRatio, runName, shortId,
  timingText,
} from "./format.js";
import { Heatmap } from "./heatmap.js";
import { JobActions } from "./job_actions.js";
import { whenSignedIn } from "./signin.js";

const POLL_MS = { queued: 2000, running: 1000 };
const RETRY_MS = 5000;
const jobId = document.querySelector("main").dataset.jobId;
const jobPath = `/v1/jobs/${encodeURIComponent(jobId)}`;
const $ = (id) => document.getElementById(id);

const state = { metrics: [], flowEpochs: [], flow: [], insight: [], metricsSince: 0,
  flowSince: 0, clip: null };
let charts;
let heatmap;
let forecast;
let actions;

// The charts, once the job is known: the loss axis says which loss, on which scale.
function build(job) {
  charts = {
    loss: new Chart($("chart-loss"), {
      series: [line("train", COLORS.train), line("validation", COLORS.val)],
      y: { distr: 3, range: logRange }, yLabel: lossTitle(job.spec),
    }),
    grad: new Chart($("chart-grad"), {
      series: [line("mean", COLORS.grad), line("max", COLORS.max, { width: 1 }),
        line("clip at", COLORS.limit, { width: 1, dash: [6, 4] }),
        line("AutoClip suggests", COLORS.clip, { width: 1, dash: [2, 3] })],
      y: { distr: 3, range: logRange }, yLabel: "gradient L2 norm",
    }),
    memory: new Chart($("chart-memory"), {
      series: [line("memory horizon", COLORS.train, { value: (u, v) => (v == null ? "–"
        : `${v} steps`) })],
      y: { range: (u, min, max) => [0, Math.max(1, max)] }, yLabel: "horizon (steps)",
    }),
    clip: new Chart($("chart-clip"), {
      series: [line("clipped %", COLORS.clip, { fill: "rgba(46, 125, 50, 0.15)",
        value: (u, v) => (v == null ? "–" : `${formatG(v, 3)} %`) })],
      y: { range: [0, 100] }, yLabel: "clipped updates (%)",
    }),
  };
  heatmap = new Heatmap($("heatmap"), { ramp: $("heatmap-ramp"), min: $("heatmap-min"),
    max: $("heatmap-max"), hover: $("heatmap-hover"),
    axes: { x: $("heatmap-x"), y: $("heatmap-y") }, empty: $("heatmap-empty") });
  forecast = new ForecastView({ container: $("chart-forecast"), select: $("series-select"),
    note: $("forecast-note") });
  actions = new JobActions(jobId, { onJob: showJob });
}

// One round: the job, then every new metrics and diagnostics row. The job is read first, so
// when it is finished, the rows read after it are all there are.
async function poll() {
  let job;
  try {
    job = (await api(jobPath)).data;
    if (!charts) build(job);
    showJob(job);
    await pullMetrics();
    await pullDiagnostics();
    drawCurves();
    showEmptyCharts(job);
    showMemberStarts(job);
    $("poll-error").hidden = true;
  } catch (exc) {
    if (exc.status === 404 || exc.status === 401) {
      showJobError(exc.status === 404 ? "There is no such job for this token." : exc.message);
      return;
    }
    $("poll-error").textContent = `Connection problem, retrying: ${exc.message}`;
    $("poll-error").hidden = false;
    setTimeout(poll, RETRY_MS);
    return;
  }
  if (!TERMINAL.includes(job.status)) {
    setTimeout(poll, POLL_MS[job.status] ?? 1000);
  } else if (job.status === "succeeded") {
    const future = Object.keys(job.covariates ?? {}).filter((n) => job.covariates[n] === "future");
    if (future.length) {  // its forecasts need the planned values, which only the client has
      $("forecast-note").textContent = "";  // the chart's own text says it
      forecast.container.querySelector(".chart-empty").textContent =
        `No forecast here: the model reads the future values of ${future.join(", ")} over ` +
        "its horizon. Give them in POST /v1/forecasts (future_covariates) or to " +
        "bptt forecast --future-values.";
      return;
    }
    forecast.load({ job_id: jobId }, { jobId, spec: job.spec }).catch((exc) => {
      $("forecast-note").textContent = `No forecast: ${exc.message}`;
    });
  }
}

// The CLI's time left of the estimate, and what the estimate says the job costs (beside what
// its last attempt measured, once it has ended).
function showTiming(job) {
  $("timing").hidden = !job.estimate;
  if (!job.estimate) return;
  $("timing-text").textContent = timingText(job);
  const used = job.usage ? ` (used ${formatBytes(job.usage.peak_bytes)})` : "";
  $("cost-text").textContent = ` · ${formatG(job.estimate.flops, 3)} FLOPs · `
    + `${job.estimate.updates} updates · peak memory ~${formatBytes(job.estimate.peak_bytes)}`
    + used;
}

function showJob(job) {
  showTitle(job);
  const status = $("job-status");
  status.textContent = job.status;
  status.className = `badge ${job.status}`;
  document.querySelector("main").dataset.status = job.status;
  $("job-progress").value = progressRatio(job);
  const { note, ...numbers } = progressFields(job);
  const fields = { ...numbers, best: job.best_epoch ?? "–", attempts: job.attempts };
  for (const [name, text] of Object.entries(fields)) {
    document.querySelector(`#summary [data-field="${name}"]`).textContent = String(text);
  }
  $("progress-note").textContent = note.replace(/^ · /, "").trim();
  showTiming(job);
  showMembers(job.progress?.finished_members ?? []);
  $("job-error").textContent = job.error ?? "";
  $("job-error").hidden = !job.error;
  actions.show(job);
  $("spec").textContent = JSON.stringify(job.spec, null, 2);
  showCrossValidation(job.cross_validation);
}

// The job's name (else its id), its labels, its covariates, and the sweep it is a trial of.
function showTitle(job) {
  $("job-name").textContent = runName(job);
  document.title = `${runName(job)} · bptt`;
  $("job-labels").replaceChildren(...Object.entries(job.labels ?? {}).map(([key, value]) =>
    element("span", { className: "chip" }, `${key}: ${value}`)));
  const covariates = Object.entries(job.covariates ?? {});  // name -> kind, as declared
  $("job-covariates").hidden = covariates.length === 0;
  $("job-covariates-list").replaceChildren(...covariates.map(([name, kind]) =>
    element("span", { className: "chip" }, `${name}: ${kind}`)));
  const sweep = $("job-sweep");
  sweep.hidden = !job.sweep_id;
  if (job.sweep_id) {
    sweep.replaceChildren(`trial ${job.trial} of sweep `, element("a",
      { href: `/sweeps/${encodeURIComponent(job.sweep_id)}` }, shortId(job.sweep_id)));
  }
}

// What each chart says while it has nothing to draw: what will appear, and when.
function showEmptyCharts(job) {
  const when = {
    queued: "when a worker has started the job and finished its first epoch",
    running: "when the first epoch ends",
  }[job.status];
  let none = null;  // once the job has ended: why a chart stays empty
  if (!when) {
    none = state.metrics.length ? "This job recorded none of these."
      : `The job ${job.status} before any epoch was recorded.`;
  }
  charts.loss.setEmpty(none ?? `Training and validation loss per epoch appear ${when}.`);
  charts.grad.setEmpty(none ?? `Gradient norms per epoch appear ${when}.`);
  charts.clip.setEmpty(none ?? `The share of clipped updates per epoch appears ${when}.`);
  charts.memory.setEmpty(none ?? `The memory horizon of each epoch appears ${when}.`);
  $("heatmap-empty").textContent = none ?? `Gradient magnitude per lag appears ${when}.`;
  if (job.status !== "succeeded") {
    const reason = TERMINAL.includes(job.status) ? `No forecast: the job ${job.status}.`
      : "The forecast of each series appears here once the job has succeeded.";
    $("forecast-note").textContent = "";  // the chart's own text says it
    forecast.container.querySelector(".chart-empty").textContent = reason;
  }
}

// A dashed line where each ensemble member after the first starts (epochs are numbered across
// members, which train one after the other).
function showMemberStarts(job) {
  const progress = job.progress ?? {};
  const starts = [];
  let first = 1;
  for (const member of progress.finished_members ?? []) {
    if (member.member > 1) starts.push({ x: first, label: `member ${member.member}` });
    first += member.epochs;
  }
  const current = progress.member;
  const finished = (progress.finished_members ?? []).length;
  if (current != null && current > finished && current > 1) {
    starts.push({ x: first, label: `member ${current}` });
  }
  const shown = starts.filter((m) => m.x <= (state.metrics.at(-1)?.epoch ?? 0));
  charts.loss.setMarkers(shown);
}

// The ensemble members that have finished: how long each trained and why it stopped.
function showMembers(finished) {
  $("members").hidden = finished.length === 0;
  const body = $("members-table").querySelector("tbody");
  body.replaceChildren();
  for (const m of finished) {
    const row = document.createElement("tr");
    row.dataset.stopped = m.stopped;
    for (const text of [String(m.member), String(m.epochs), String(m.best_epoch ?? "–"),
      m.stopped === "early_stopping" ? "early stopping" : "epoch budget"]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    body.append(row);
  }
}

// The latest epoch's insight as a table: one row per layer and gate.
function showInsight(latest) {
  if (!latest) return;
  const body = document.querySelector("#insight-table tbody");
  body.replaceChildren();
  latest.spectral_radius.forEach((gates, layer) => {
    for (const [gate, radius] of Object.entries(gates)) {
      const saturated = latest.gate_saturation[layer]?.[gate];
      const cells = [String(layer), gate, formatG(radius, 3),
        saturated == null ? "–" : `${formatG(100 * saturated, 3)} %`];
      const row = document.createElement("tr");
      for (const text of cells) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      body.append(row);
    }
  });
  $("insight-table").dataset.epoch = String(latest.epoch);
  $("insight-cosine").textContent = latest.truncation_cosine == null ? "–"
    : formatG(latest.truncation_cosine, 4);
  $("insight-clip").textContent = latest.suggested_max_norm == null ? "–"
    : formatG(latest.suggested_max_norm, 3);
}

// Cross-validation scores per window, once the job has them.
function showCrossValidation(backtest) {
  if (!backtest) return;
  const body = document.querySelector("#cv-table tbody");
  body.replaceChildren();
  const show = (v, digits = 3) => (v == null ? "–" : formatG(v, digits));
  for (const w of backtest.windows) {
    const row = document.createElement("tr");
    for (const text of [String(w.window), `−${w.offset}`, show(w.mase), show(w.smape),
      show(w.pinball), w.coverage == null ? "–" : `${show(100 * w.coverage)} %`]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    body.append(row);
  }
  $("cv").hidden = false;
}

function showJobError(message) {
  $("job-error").textContent = message;
  $("job-error").hidden = false;
  $("job-status").textContent = "unknown";
}

async function pullMetrics() {
  for (;;) {
    const { data } = await api(`${jobPath}/metrics?since=${state.metricsSince}`);
    state.metrics.push(...data.metrics);
    state.metricsSince = data.last_epoch;
    if (!data.has_more) return;
  }
}

async function pullDiagnostics() {
  for (;;) {
    const { data } = await api(`${jobPath}/diagnostics?since=${state.flowSince}`);
    state.clip = data.clip;
    for (const row of data.grad_flow) {
      state.flowEpochs.push(row.epoch);
      state.flow.push(row.values);
    }
    state.insight.push(...(data.insight ?? []));
    state.flowSince = data.last_epoch;
    if (!data.has_more) return;
  }
}

function drawCurves() {
  const m = state.metrics;
  const epochs = m.map((row) => row.epoch);
  const positive = (v) => (v > 0 ? v : null);  // a log scale has no place for 0
  charts.loss.setData([epochs, m.map((r) => positive(r.train_loss)),
    m.map((r) => positive(r.val_loss))]);
  const limit = state.clip?.max_norm ?? null;
  const insightOf = new Map(state.insight.map((row) => [row.epoch, row]));
  charts.grad.setData([epochs, m.map((r) => positive(r.grad_norm)),
    m.map((r) => positive(r.max_grad_norm)), m.map(() => limit),
    m.map((r) => positive(insightOf.get(r.epoch)?.suggested_max_norm))]);
  charts.memory.setData([state.insight.map((r) => r.epoch),
    state.insight.map((r) => r.memory_horizon)]);
  showInsight(state.insight.at(-1));
  charts.clip.setData([epochs, m.map((r) => 100 * r.clip_fraction)]);
  heatmap.setRows(state.flowEpochs, state.flow);
}


whenSignedIn(poll);
