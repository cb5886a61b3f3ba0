// The job page: status, live curves (polled with ?since=), gradient flow, and the forecast.

import { api } from "./api.js";
import { COLORS, Chart, line } from "./charts.js";
import { TERMINAL, formatG, progressFields, progressRatio } from "./format.js";
import { Heatmap } from "./heatmap.js";
import { whenSignedIn } from "./signin.js";

const POLL_MS = { queued: 2000, running: 1000 };
const RETRY_MS = 5000;
const HISTORY_TAIL = 120;  // points of history drawn before the forecast, at most
const jobId = document.querySelector("main").dataset.jobId;
const jobPath = `/v1/jobs/${encodeURIComponent(jobId)}`;
const $ = (id) => document.getElementById(id);

const state = { metrics: [], flowEpochs: [], flow: [], insight: [], metricsSince: 0,
  flowSince: 0, clip: null, forecast: null };
let charts;
let heatmap;

function build() {
  charts = {
    loss: new Chart($("chart-loss"), {
      series: [line("train", COLORS.train), line("validation", COLORS.val)],
      y: { distr: 3 },
    }),
    grad: new Chart($("chart-grad"), {
      series: [line("mean", COLORS.grad), line("max", COLORS.max, { width: 1 }),
        line("clip at", COLORS.limit, { width: 1, dash: [6, 4] }),
        line("AutoClip suggests", COLORS.clip, { width: 1, dash: [2, 3] })],
      y: { distr: 3 },
    }),
    memory: new Chart($("chart-memory"), {
      series: [line("memory horizon", COLORS.train, { value: (u, v) => (v == null ? "–"
        : `${v} steps`) })],
      y: { range: (u, min, max) => [0, Math.max(1, max)] },
    }),
    clip: new Chart($("chart-clip"), {
      series: [line("clipped %", COLORS.clip, { fill: "rgba(46, 125, 50, 0.15)",
        value: (u, v) => (v == null ? "–" : `${formatG(v, 3)} %`) })],
      y: { range: [0, 100] },
    }),
  };
  heatmap = new Heatmap($("heatmap"), { ramp: $("heatmap-ramp"), min: $("heatmap-min"),
    max: $("heatmap-max"), hover: $("heatmap-hover") });
  $("cancel").addEventListener("click", cancel);
  $("series-select").addEventListener("change", drawForecast);
}

// One round: the job, then every new metrics and diagnostics row. The job is read first, so
// when it is finished, the rows read after it are all there are.
async function poll() {
  let job;
  try {
    job = (await api(jobPath)).data;
    showJob(job);
    await pullMetrics();
    await pullDiagnostics();
    drawCurves();
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
    loadForecast().catch((exc) => {
      $("forecast-note").textContent = `No forecast: ${exc.message}`;
    });
  } else {
    $("forecast-note").textContent = `No forecast: the job ${job.status}.`;
  }
}

function showJob(job) {
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
  showMembers(job.progress?.finished_members ?? []);
  $("job-error").textContent = job.error ?? "";
  $("job-error").hidden = !job.error;
  $("cancel").hidden = TERMINAL.includes(job.status) || job.cancel_requested;
  $("spec").textContent = JSON.stringify(job.spec, null, 2);
  showCrossValidation(job.cross_validation);
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

async function cancel() {
  $("cancel").disabled = true;
  try {
    showJob((await api(`${jobPath}/cancel`, { method: "POST" })).data);
  } catch (exc) {
    $("job-error").textContent = exc.message;
    $("job-error").hidden = false;
  } finally {
    $("cancel").disabled = false;
  }
}

// The model's forecast of its own training series, and their history tails.
async function loadForecast() {
  $("forecast-note").textContent = "Forecasting…";
  const answer = await api("/v1/forecasts", { method: "POST", body: { job_id: jobId } });
  // Many series: the API answers with a batch (202) that a worker fills; wait for it.
  const result = answer.status === 202 ? await batchResult(answer.data.id) : answer.data;
  const forecasts = result.forecasts;
  const horizon = forecasts[0]?.mean.length ?? 0;
  const tail = Math.min(1000, Math.max(HISTORY_TAIL, 4 * horizon));
  const history = await api(`${jobPath}/series?tail=${tail}&limit=100`);
  const tails = new Map(history.data.series.map((s) => [s.id, s.values]));
  state.forecast = { forecasts: forecasts.filter((f) => tails.has(f.id)), tails };
  const select = $("series-select");
  select.replaceChildren(...state.forecast.forecasts.map((f) => new Option(f.id, f.id)));
  select.hidden = state.forecast.forecasts.length < 2;
  const shown = history.data.num_series > 100 ? " (the first 100 series)" : "";
  const trimmed = Math.min(HISTORY_TAIL, tail);
  $("forecast-note").textContent = `Mean and the outer quantile band over the last ${trimmed} ` +
    `points of history${shown}; x is steps from the end of the history.`;
  drawForecast();
}

async function batchResult(batchId) {
  for (;;) {
    await new Promise((resolve) => { setTimeout(resolve, 1000); });
    const { data } = await api(`/v1/forecasts/${encodeURIComponent(batchId)}`);
    if (data.status === "succeeded") return data.result;
    if (data.status === "failed") throw new Error(data.error ?? "the forecast batch failed");
  }
}

function drawForecast() {
  const { forecasts, tails } = state.forecast;
  const chosen = forecasts.find((f) => f.id === $("series-select").value) ?? forecasts[0];
  if (!chosen) return;
  const past = tails.get(chosen.id).slice(-HISTORY_TAIL);
  const levels = Object.keys(chosen.quantiles).sort((a, b) => Number(a) - Number(b));
  const low = chosen.quantiles[levels[0]] ?? [];
  const high = chosen.quantiles[levels[levels.length - 1]] ?? [];
  const n = past.length;
  const h = chosen.mean.length;
  const xs = [...Array(n + h).keys()].map((i) => i - n + 1);  // 0 is the last observed point
  const last = past[n - 1] ?? null;
  // Forecast lines start at the last observation so that they join the history.
  const ahead = (path) => [...Array(n - 1).fill(null), last, ...path];
  const data = [xs, [...past, ...Array(h).fill(null)], ahead(chosen.mean)];
  const series = [line("history", COLORS.history), line("mean", COLORS.mean)];
  if (levels.length >= 2) {
    data.push(ahead(low), ahead(high));
    const edge = { width: 1, points: { show: false } };
    series.push(line(`q${levels[0]}`, COLORS.quantile, edge),
      line(`q${levels[levels.length - 1]}`, COLORS.quantile, edge));
  }
  const container = $("chart-forecast");
  charts.forecast?.destroy();  // the quantile series may differ: a new chart each time
  const chart = new Chart(container, {
    series,
    xLabel: "step",
    bands: levels.length >= 2 ? [{ series: [4, 3], fill: COLORS.band }] : [],
  });
  chart.setData(data);
  charts.forecast = chart;
  container.dataset.state = "ready";
  container.dataset.series = chosen.id;
  container.dataset.horizon = String(h);
}

whenSignedIn(() => {
  build();
  poll();
});
