// Charts on the vendored uPlot (window.uPlot), as wide as their card, redrawn on resize. Every
// chart has both axes titled (with units), and says what will appear, and when, while it has
// no data instead of drawing empty axes.

import { formatG } from "./format.js";

export const COLORS = {
  train: "#1565c0", val: "#e65100", grad: "#6a1b9a", max: "#ab47bc", limit: "#c62828",
  clip: "#2e7d32", history: "#37474f", mean: "#1565c0", quantile: "#64b5f6",
  band: "rgba(33, 150, 243, 0.2)", marker: "#78909c", best: "#d81b60",
};
// Runs side by side (compare): distinct in hue and lightness, readable on white.
export const PALETTE = ["#1565c0", "#e65100", "#2e7d32", "#6a1b9a", "#c62828", "#00838f"];

const number = (digits) => (u, value) => (value == null ? "–" : formatG(value, digits));
// Tick labels: a log axis's minor ticks come as null, and stay unlabelled.
export const ticks = (u, values) => values.map((t) => (t == null ? "" : formatG(t, 3)));

// A log scale's range: the data with a margin, not whole decades (flat curves stay readable).
export function logRange(u, min, max) {
  if (!(min > 0) || !(max > 0)) return [0.1, 10];
  const [low, high] = min === max ? [min / 2, max * 2] : [min, max];
  return [low / 1.25, high * 1.25];
}

export function line(label, stroke, extra = {}) {
  return { label, stroke, width: 2, value: number(4), spanGaps: false, ...extra };
}

// Points only, no line between them: a scatter over x sorted ascending.
export function dots(label, stroke, extra = {}) {
  return { label, stroke, fill: stroke, width: 0, paths: () => null, value: number(4),
    points: { show: true, space: 0, size: 8, stroke, fill: stroke }, ...extra };
}

export class Chart {
  // series: uPlot series after x; y, x: scale options; xLabel, yLabel: the axes' titles with
  // units; xAxis: extra options of the x axis (ticks, values); empty: what the chart says
  // until it has data; bands: uPlot bands.
  constructor(container, { series, y = {}, x = {}, xLabel = "epoch", yLabel, xAxis = {},
    xValue, bands = [], height, empty = "" }) {
    if (!yLabel) throw new Error("every chart titles its y axis");
    this.container = container;
    this.height = height ?? (container.classList.contains("tall") ? 280 : 220);
    this.markers = [];
    container.dataset.xTitle = xLabel;
    container.dataset.yTitle = yLabel;
    this.message = container.querySelector(":scope > .chart-empty");
    if (!this.message) {
      this.message = document.createElement("p");
      this.message.className = "chart-empty";
      container.append(this.message);
    }
    const time = x.time === true;
    const options = {
      width: this.width(),
      height: this.height,
      scales: { x: { time, ...x }, y },
      axes: [
        { label: xLabel, labelSize: 24, ...xAxis },
        { label: yLabel, labelSize: 24, size: 60, values: ticks },
      ],
      series: [{ label: xLabel, value: xValue ?? ((u, v) => (v == null ? "–" : String(v))) },
        ...series],
      bands,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      hooks: { draw: [(u) => this.drawMarkers(u)] },
    };
    if (time) options.tzDate = (ts) => window.uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
    this.plot = new window.uPlot(options, [[], ...series.map(() => [])], container);
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(container);
    this.setEmpty(empty);
  }

  destroy() {
    this.observer.disconnect();
    this.plot.destroy();
  }

  width() {
    return Math.max(240, Math.floor(this.container.clientWidth));
  }

  resize() {
    const width = this.width();
    if (width !== this.plot.width) this.plot.setSize({ width, height: this.height });
  }

  // What the chart says while it has no points (it takes the plot's place).
  setEmpty(message) {
    this.emptyMessage = message;
    this.showState();
  }

  // data: [xs, ys...] as uPlot takes it; the point count is exposed for tests and users' tools.
  setData(data) {
    this.plot.setData(data);
    this.container.dataset.points = String(data[0].length);
    this.showState();
  }

  // Vertical lines across the plot, each labelled at its top: [{x, label}].
  setMarkers(markers) {
    this.markers = markers;
    this.container.dataset.markers = markers.map((m) => m.x).join(",");
    this.plot.redraw(false);
  }

  showState() {
    const empty = Number(this.container.dataset.points ?? 0) === 0;
    this.container.classList.toggle("is-empty", empty);
    this.container.dataset.state = empty ? "empty" : "ready";
    this.message.textContent = empty ? this.emptyMessage : "";
    this.message.hidden = !empty;
  }

  drawMarkers(u) {
    if (!this.markers.length) return;
    const { ctx, bbox } = u;
    const ratio = window.devicePixelRatio || 1;
    ctx.save();
    ctx.strokeStyle = COLORS.marker;
    ctx.fillStyle = COLORS.marker;
    ctx.lineWidth = ratio;
    ctx.setLineDash([4 * ratio, 3 * ratio]);
    ctx.font = `${11 * ratio}px system-ui, sans-serif`;
    for (const { x, label } of this.markers) {
      const left = Math.round(u.valToPos(x, "x", true));
      if (left < bbox.left || left > bbox.left + bbox.width) continue;
      ctx.beginPath();
      ctx.moveTo(left, bbox.top);
      ctx.lineTo(left, bbox.top + bbox.height);
      ctx.stroke();
      ctx.fillText(label, left + 3 * ratio, bbox.top + 11 * ratio);
    }
    ctx.restore();
  }
}
