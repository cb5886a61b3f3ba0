// Line charts on the vendored uPlot (window.uPlot), as wide as their card, redrawn on resize.

import { formatG } from "./format.js";

export const COLORS = {
  train: "#1565c0", val: "#e65100", grad: "#6a1b9a", max: "#ab47bc", limit: "#c62828",
  clip: "#2e7d32", history: "#37474f", mean: "#1565c0", quantile: "#64b5f6",
  band: "rgba(33, 150, 243, 0.2)",
};

const number = (digits) => (u, value) => (value == null ? "–" : formatG(value, digits));

export function line(label, stroke, extra = {}) {
  return { label, stroke, width: 2, value: number(4), spanGaps: false, ...extra };
}

export class Chart {
  // series: uPlot series after x; y: the y scale's options; bands: uPlot bands.
  constructor(container, { series, y = {}, xLabel = "epoch", bands = [], height }) {
    this.container = container;
    this.height = height ?? (container.classList.contains("tall") ? 280 : 200);
    const options = {
      width: this.width(),
      height: this.height,
      scales: { x: { time: false }, y },
      axes: [
        { label: xLabel, labelSize: 20 },
        { size: 56, values: (u, ticks) => ticks.map((t) => formatG(t, 3)) },
      ],
      series: [{ label: xLabel, value: (u, v) => (v == null ? "–" : String(v)) }, ...series],
      bands,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
    this.plot = new window.uPlot(options, [[], ...series.map(() => [])], container);
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(container);
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

  // data: [xs, ys...] as uPlot takes it; the point count is exposed for tests and users' tools.
  setData(data) {
    this.plot.setData(data);
    this.container.dataset.points = String(data[0].length);
  }
}
