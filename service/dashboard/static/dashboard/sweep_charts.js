// A sweep's scores against its settings: one scatter per swept setting (uPlot), and parallel
// coordinates (SVG) when more than two settings are swept.

import { COLORS, Chart, dots, logRange, ticks } from "./charts.js";
import { element, svg } from "./dom.js";
import { formatG } from "./format.js";
import { colorAt } from "./heatmap.js";

// How a setting is laid on an axis: categories (text, or few distinct values given as a
// list), a log scale (log ranges, or positive values over a decade or more), or linear.
export function settingAxis(path, choice, values) {
  const present = values.filter((v) => v !== undefined && v !== null);
  if (present.some((v) => typeof v !== "number")) {
    const categories = [...new Set(present.map(String))];
    if (Array.isArray(choice)) {  // in the order the space lists them
      const listed = choice.map(String).filter((c) => categories.includes(c));
      categories.splice(0, categories.length, ...listed, ...categories.filter(
        (c) => !listed.includes(c)));
    }
    return { path, kind: "category", categories, position: (v) => categories.indexOf(String(v)) };
  }
  const low = Math.min(...present);
  const high = Math.max(...present);
  const log = choice?.log_uniform !== undefined || (low > 0 && high / low >= 10);
  return { path, kind: log ? "log" : "linear", low, high, position: (v) => v };
}

// The score's axis title: what the sweep ranks by, in its units.
export function scoreTitle(metric) {
  return metric === "cv_mase" ? "score: CV MASE (no unit)" : "score: val loss (scaled)";
}

// One scatter per setting in `container`: [{chart, axis}], each with the best trial drawn apart.
export function scatters(container, sweep, trials) {
  const scored = trials.filter((t) => t.score != null);
  const scores = scored.map((t) => t.score);
  const spread = Math.max(...scores) / Math.min(...scores);
  const out = [];
  container.replaceChildren();
  for (const [path, choice] of Object.entries(sweep.space)) {
    const axis = settingAxis(path, choice, trials.map((t) => t.settings[path]));
    const box = element("div", { className: "chart", dataset: { param: path } });
    const card = element("figure", { className: "scatter" });
    card.append(element("figcaption", { className: "small" }, path), box);
    container.append(card);
    const points = scored.map((t) => ({ x: jittered(axis, t, scored), y: t.score,
      best: t.job_id === sweep.best_job_id }))
      .sort((a, b) => a.x - b.x);
    const x = axis.kind === "category"
      ? { range: [-0.5, axis.categories.length - 0.5] }
      : { distr: axis.kind === "log" ? 3 : 1 };
    const xAxis = axis.kind === "category"
      ? { splits: () => axis.categories.map((_, i) => i),
        values: (u, splits) => splits.map((i) => axis.categories[i] ?? "") }
      : { values: ticks };
    const chart = new Chart(box, {
      series: [dots("trial", COLORS.train), dots("best", COLORS.best,
        { points: { show: true, space: 0, size: 12, stroke: COLORS.best, fill: COLORS.best } })],
      x, xAxis, xLabel: path, yLabel: scoreTitle(sweep.metric),
      y: spread > 10 ? { distr: 3, range: logRange } : {},
      empty: "Each trial's score appears here once it has succeeded.",
      xValue: (u, v) => (v == null ? "–" : axis.kind === "category"
        ? axis.categories[Math.round(v)] : formatG(v, 4)),
    });
    chart.setData([points.map((p) => p.x), points.map((p) => (p.best ? null : p.y)),
      points.map((p) => (p.best ? p.y : null))]);
    out.push({ chart, axis });
  }
  return out;
}

// Where a trial's point goes: a category's trials spread a little around it, so that equal
// settings do not hide each other; equal numbers moved by a billionth, because uPlot's aligned
// data must not repeat an x (it would stop drawing at the first of them).
function jittered(axis, trial, scored) {
  const value = trial.settings[axis.path];
  const same = scored.filter((t) => String(t.settings[axis.path]) === String(value));
  const k = same.indexOf(trial);
  if (axis.kind !== "category") return value * (1 + k * 1e-9) + (value === 0 ? k * 1e-12 : 0);
  return axis.position(value) + (same.length > 1 ? 0.3 * (k / (same.length - 1) - 0.5) : 0);
}

const WIDTH = 900;
const HEIGHT = 340;
const MARGIN = { top: 56, bottom: 30, side: 70 };

// Parallel coordinates: an axis per setting and one for the score, a line per scored trial.
export function parallelCoordinates(root, sweep, trials) {
  const scored = trials.filter((t) => t.score != null);
  const axes = Object.entries(sweep.space).map(([path, choice]) =>
    settingAxis(path, choice, trials.map((t) => t.settings[path])));
  const scores = scored.map((t) => t.score);
  axes.push({ path: "score", title: scoreTitle(sweep.metric), kind: "linear",
    low: Math.min(...scores), high: Math.max(...scores), position: (v) => v });
  const xAt = (i) => MARGIN.side + (i * (WIDTH - 2 * MARGIN.side)) / (axes.length - 1);
  const yAt = (axis, value) => HEIGHT - MARGIN.bottom - fraction(axis, value)
    * (HEIGHT - MARGIN.top - MARGIN.bottom);
  const nodes = [];
  axes.forEach((axis, i) => {
    const x = xAt(i);
    nodes.push(svg("line", { x1: x, x2: x, y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom,
      class: "axis" }));
    // The outer names run inwards from the edges; neighbours alternate in height.
    const anchor = i === 0 ? "start" : i === axes.length - 1 ? "end" : "middle";
    const at = i === 0 ? 4 : i === axes.length - 1 ? WIDTH - 4 : x;
    nodes.push(svg("text", { x: at, y: i % 2 ? 30 : 14, class: "axis-name",
      "text-anchor": anchor }, axis.title ?? axis.path));
    for (const [value, label] of axisLabels(axis)) {
      nodes.push(svg("text", { x: x + 6, y: yAt(axis, value), class: "tick",
        "dominant-baseline": "middle" }, label));
    }
  });
  const [low, high] = [Math.min(...scores), Math.max(...scores)];
  const ordered = [...scored].sort((a, b) => b.score - a.score);  // the best drawn last, on top
  for (const trial of ordered) {
    const values = [...axes.slice(0, -1).map((a) => trial.settings[a.path]), trial.score];
    const points = values.map((v, i) => `${xAt(i).toFixed(1)},${yAt(axes[i], v).toFixed(1)}`);
    const best = trial.job_id === sweep.best_job_id;
    const goodness = high > low ? (high - trial.score) / (high - low) : 1;
    const [r, g, b] = colorAt(0.15 + 0.85 * goodness);
    nodes.push(svg("path", { d: `M${points.join("L")}`, class: best ? "trial best" : "trial",
      stroke: best ? COLORS.best : `rgb(${r}, ${g}, ${b})`, "data-trial": trial.trial }));
  }
  root.replaceChildren(...nodes);
  root.dataset.lines = String(scored.length);
  root.dataset.axes = axes.map((a) => a.path).join(",");
}

// Where a value sits on its axis, from 0 (bottom) to 1 (top).
function fraction(axis, value) {
  if (axis.kind === "category") {
    const n = axis.categories.length;
    return n > 1 ? axis.position(value) / (n - 1) : 0.5;
  }
  const map = axis.kind === "log" ? Math.log10 : (v) => v;
  const [low, high] = [map(axis.low), map(axis.high)];
  return high > low ? (map(value) - low) / (high - low) : 0.5;
}

// The labelled values of an axis: every category, or its lowest and highest value.
function axisLabels(axis) {
  if (axis.kind === "category") return axis.categories.map((c) => [c, c]);
  if (axis.low === axis.high) return [[axis.low, formatG(axis.low, 3)]];
  return [[axis.low, formatG(axis.low, 3)], [axis.high, formatG(axis.high, 3)]];
}
