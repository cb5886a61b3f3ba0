// Gradient flow as a heatmap drawn on a canvas: epochs down, lags across (the last input step
// at the right), log colours; tick marks on SVG axes beside it.

import { niceStep, svg } from "./dom.js";
import { formatG } from "./format.js";

// Viridis at six stops: perceptually even, readable in greyscale and by most colour-blind eyes.
const STOPS = [[68, 1, 84], [65, 68, 135], [42, 120, 142], [34, 168, 132], [122, 209, 81],
  [253, 231, 37]];
const MISSING = [220, 220, 220];  // a null (not finite) or zero value

export function colorAt(t) {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((c, k) => Math.round(c + f * (STOPS[i + 1][k] - c)));
}

// The log10 range of the positive finite values, or null when there is none.
export function logRange(rows) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of rows) {
    for (const v of row) {
      if (v > 0 && Number.isFinite(v)) {
        const l = Math.log10(v);
        if (l < lo) lo = l;
        if (l > hi) hi = l;
      }
    }
  }
  if (lo === Infinity) return null;
  return hi - lo < 1e-9 ? [lo - 0.5, hi + 0.5] : [lo, hi];  // one value: a span around it
}

// Ticks of an axis over `count` cells whose values are `valueAt(i)`: [{at: 0..1, label}], at a
// nice step of the values, each at its cell's centre.
export function cellTicks(count, valueAt, most = 6) {
  if (!count) return [];
  const values = Array.from({ length: count }, (_, i) => valueAt(i));
  const step = niceStep(Math.abs(values[count - 1] - values[0]) || 1, most - 1);
  const ticks = [];
  values.forEach((value, i) => {
    if (value % step === 0) ticks.push({ at: (i + 0.5) / count, label: String(value) });
  });
  // The first cell too (epoch 1, the oldest lag), unless a tick is already close to it.
  if (!ticks.length || Math.abs(Number(ticks[0].label) - values[0]) >= step / 2) {
    ticks.unshift({ at: 0.5 / count, label: String(values[0]) });
  }
  return ticks;
}

export class Heatmap {
  // axes: {x, y} SVG elements beside the canvas; empty: what shows while there are no rows.
  constructor(canvas, { ramp, min, max, hover, axes, empty }) {
    Object.assign(this, { canvas, min, max, hover, axes, empty, epochs: [], rows: [] });
    drawRamp(ramp);
    new ResizeObserver(() => this.draw()).observe(canvas);
    canvas.addEventListener("mousemove", (event) => this.describe(event));
    canvas.addEventListener("mouseleave", () => { this.hover.textContent = ""; });
  }

  // epochs: the epoch of each row; rows: mean |dL/dh_t| per step of that epoch.
  setRows(epochs, rows) {
    this.epochs = epochs;
    this.rows = rows;
    this.draw();
  }

  draw() {
    const { canvas, rows } = this;
    const steps = Math.max(0, ...rows.map((row) => row.length));
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    canvas.height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    const range = logRange(rows);
    this.empty.hidden = Boolean(steps && range);
    canvas.closest(".heatmap-frame").classList.toggle("is-empty", !this.empty.hidden);
    this.drawAxes(steps);
    if (!steps || !range) return;
    // One pixel per cell off screen, scaled up without smoothing: crisp cells at any size, and
    // a thousand epochs cost one putImageData.
    const cells = new ImageData(steps, rows.length);
    rows.forEach((row, r) => {
      for (let s = 0; s < steps; s += 1) {
        const v = row[s];
        const rgb = v > 0 && Number.isFinite(v)
          ? colorAt((Math.log10(v) - range[0]) / (range[1] - range[0])) : MISSING;
        cells.data.set([...rgb, 255], (r * steps + s) * 4);
      }
    });
    const offscreen = document.createElement("canvas");
    offscreen.width = steps;
    offscreen.height = rows.length;
    offscreen.getContext("2d").putImageData(cells, 0, 0);
    context.imageSmoothingEnabled = false;
    context.drawImage(offscreen, 0, 0, canvas.width, canvas.height);
    this.min.textContent = formatG(10 ** range[0], 2);
    this.max.textContent = formatG(10 ** range[1], 2);
    canvas.dataset.epochs = String(rows.length);
    canvas.dataset.steps = String(steps);
  }

  // Epochs down the left (the first at the top), lags along the bottom (0: the last input).
  drawAxes(steps) {
    const { x, y } = this.axes;
    const epochs = this.epochs;
    const yTicks = cellTicks(this.rows.length, (r) => epochs[r]);
    y.replaceChildren(...yTicks.map(({ at, label }) => svg("text", {
      x: "100%", y: `${(100 * at).toFixed(2)}%`, dx: -4, "text-anchor": "end",
      "dominant-baseline": "middle" }, label)));
    const xTicks = cellTicks(steps, (s) => steps - 1 - s);
    // A label at an end is anchored inside the axis, not centred half outside it.
    const anchor = (at) => (at < 0.04 ? "start" : at > 0.96 ? "end" : "middle");
    x.replaceChildren(...xTicks.map(({ at, label }) => svg("text", {
      x: `${(100 * at).toFixed(2)}%`, y: 12, "text-anchor": anchor(at) }, label)));
    y.dataset.ticks = yTicks.map((t) => t.label).join(",");
    x.dataset.ticks = xTicks.map((t) => t.label).join(",");
  }

  describe(event) {
    const { rows, canvas } = this;
    if (!rows.length) return;
    const box = canvas.getBoundingClientRect();
    const steps = Math.max(...rows.map((row) => row.length));
    const r = Math.floor(((event.clientY - box.top) / box.height) * rows.length);
    const s = Math.floor(((event.clientX - box.left) / box.width) * steps);
    const value = rows[r]?.[s];
    if (r < 0 || r >= rows.length || s < 0 || s >= steps) return;
    this.hover.textContent = `epoch ${this.epochs[r]}, lag ${steps - 1 - s} ` +
      `(input step ${s + 1} of ${steps}): ${formatG(value, 3)}`;
  }
}

function drawRamp(canvas) {
  const context = canvas.getContext("2d");
  for (let x = 0; x < canvas.width; x += 1) {
    const [r, g, b] = colorAt(x / (canvas.width - 1));
    context.fillStyle = `rgb(${r}, ${g}, ${b})`;
    context.fillRect(x, 0, 1, canvas.height);
  }
}
