// A forecast drawn after its series' history: the mean, the outer quantile band, and on the x
// axis the forecast steps' own ds (dates or step numbers, as the API gives them). Used by the job page and
// by the sweep page (its best trial).

import { api } from "./api.js";
import { COLORS, Chart, line } from "./charts.js";
import { dateLabel, parseStart, pointDates } from "./dates.js";

const HISTORY_TAIL = 120;  // points of history drawn before the forecast, at most
const SERIES_SHOWN = 100;  // series whose history is fetched (one page of the series route)

// POST /v1/forecasts (with job_id or sweep_id); a batch (202, many series) is waited for.
export async function requestForecasts(body) {
  const answer = await api("/v1/forecasts", { method: "POST", body });
  return answer.status === 202 ? batchForecasts(answer.data.id) : answer.data.forecasts;
}

// The forecasts of a batch, once a worker has answered it.
export async function batchForecasts(batchId) {
  for (;;) {
    await new Promise((resolve) => { setTimeout(resolve, 1000); });
    const { data } = await api(`/v1/forecasts/${encodeURIComponent(batchId)}`);
    if (data.status === "succeeded") return data.result.forecasts;
    if (data.status === "failed") throw new Error(data.error ?? "the forecast batch failed");
  }
}

// Forecasts as CSV, as `bptt forecast` and the API write them: unique_id,ds,step,mean,q<q>...
export function forecastsCsv(forecasts) {
  const levels = Object.keys(forecasts[0]?.quantiles ?? {});
  const quote = (text) => (/[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
  const cell = (v) => (v == null ? "" : String(v));
  const lines = [["unique_id", "ds", "step", "mean", ...levels.map((q) => `q${q}`)].join(",")];
  for (const f of forecasts) {
    f.mean.forEach((mean, i) => {
      lines.push([quote(f.id), cell(f.ds?.[i]), i + 1, cell(mean),
        ...levels.map((q) => cell(f.quantiles[q][i]))].join(","));
    });
  }
  return `${lines.join("\n")}\n`;
}

export class ForecastView {
  // container: the chart's element; select: the series picker; note: the text under it.
  constructor({ container, select, note }) {
    Object.assign(this, { container, select, note, chart: null, state: null });
    select.addEventListener("change", () => this.draw());
  }

  // Forecast with `body` (job_id or sweep_id) the series of job `jobId`, whose spec may give
  // the frequency the series' own labels leave out.
  async load(body, { jobId, spec }) {
    this.note.textContent = "Forecasting…";
    const waiting = this.container.querySelector(".chart-empty");
    if (waiting) waiting.textContent = "Forecasting…";
    const forecasts = await requestForecasts(body);
    const horizon = forecasts[0]?.mean.length ?? 0;
    const tail = Math.min(1000, Math.max(HISTORY_TAIL, 4 * horizon));
    const path = `/v1/jobs/${encodeURIComponent(jobId)}/series?tail=${tail}&limit=${SERIES_SHOWN}`;
    const history = (await api(path)).data;
    const series = new Map(history.series.map((s) => [s.id, s]));
    this.state = { forecasts: forecasts.filter((f) => series.has(f.id)), series,
      freq: spec?.freq ?? null };
    this.select.replaceChildren(...this.state.forecasts.map((f) => new Option(f.id, f.id)));
    this.select.hidden = this.state.forecasts.length < 2;
    this.shown = history.num_series > SERIES_SHOWN ? ` (the first ${SERIES_SHOWN} series)` : "";
    this.draw();
    return forecasts;
  }

  draw() {
    if (!this.state) return;
    const { forecasts, series } = this.state;
    const chosen = forecasts.find((f) => f.id === this.select.value) ?? forecasts[0];
    if (!chosen) return;
    const meta = series.get(chosen.id);
    const past = meta.values.slice(-HISTORY_TAIL);
    const n = past.length;
    const h = chosen.mean.length;
    const axis = xAxis(meta, this.state.freq, n, chosen.ds ?? null, h);
    const levels = Object.keys(chosen.quantiles).sort((a, b) => Number(a) - Number(b));
    const last = past[n - 1] ?? null;
    // Forecast lines start at the last observation so that they join the history.
    const ahead = (path) => [...Array(n - 1).fill(null), last, ...path];
    const data = [axis.xs, [...past, ...Array(h).fill(null)], ahead(chosen.mean)];
    const lines = [line("history", COLORS.history), line("mean", COLORS.mean)];
    if (levels.length >= 2) {
      data.push(ahead(chosen.quantiles[levels[0]]), ahead(chosen.quantiles[levels.at(-1)]));
      const edge = { width: 1, points: { show: false } };
      lines.push(line(`q${levels[0]}`, COLORS.quantile, edge),
        line(`q${levels.at(-1)}`, COLORS.quantile, edge));
    }
    this.chart?.destroy();  // the quantile series may differ: a new chart each time
    this.chart = new Chart(this.container, {
      series: lines, xLabel: axis.title, yLabel: "value (series units)",
      x: { time: axis.kind === "dates" }, xValue: axis.value,
      bands: levels.length >= 2 ? [{ series: [4, 3], fill: COLORS.band }] : [],
    });
    this.chart.setData(data);
    Object.assign(this.container.dataset, { series: chosen.id, horizon: String(h),
      xKind: axis.kind, firstForecast: axis.label(axis.xs[n]) });
    const band = levels.length >= 2 ? ` and the q${levels[0]}–q${levels.at(-1)} band` : "";
    this.note.textContent = `The mean${band} after the last ${n} points of history` +
      `${this.shown}; ${axis.note}`;
  }
}

// The x axis of a series' last n points and h steps ahead. The steps take the forecast's own
// ds; the history before them its dates from the series' start and frequency, or its step
// numbers (1, 2, ... without a start). Without ds: steps from the end of the history.
function xAxis(meta, specFreq, n, ds, h) {
  const first = meta.length - n;
  const ahead = Array.isArray(ds) && ds.length === h ? ds : null;
  const dates = ahead?.every((d) => typeof d === "string") ? ahead.map(parseStart) : null;
  const past = dates?.every(Boolean) ? pointDates(meta.start, meta.freq ?? specFreq, first, n)
    : null;
  if (past) {
    return { kind: "dates", xs: [...past, ...dates.map((d) => d.ms / 1000)],
      title: "date (UTC)", label: dateLabel, value: (u, v) => (v == null ? "–" : dateLabel(v)),
      note: `x: dates; the forecast's are its steps' ds (from ${ahead[0]}).` };
  }
  if (ahead?.every(Number.isInteger)) {
    const step = /^\d+$/.test(meta.freq ?? "") ? Number(meta.freq) : 1;
    const origin = /^[+-]?\d+$/.test(meta.start ?? "") ? Number(meta.start) : 1;
    const steps = Array.from({ length: n }, (_, k) => origin + (first + k) * step);
    return { kind: "steps", xs: [...steps, ...ahead], title: "step (ds)", label: String,
      value: undefined, note: "x: the series' step numbers; the forecast's are its steps' ds." };
  }
  const xs = Array.from({ length: n + h }, (_, i) => i - n + 1);  // 0: the last observation
  return { kind: "relative", xs, title: "steps after the last observation", label: String,
    value: undefined,
    note: "x: steps from the end of the history (the forecast carries no ds)." };
}
