// Building DOM from API data: text always goes in as text, never as markup.

export function element(tag, properties = {}, text) {
  const node = document.createElement(tag);
  const { dataset, ...rest } = properties;
  Object.assign(node, rest);
  Object.assign(node.dataset, dataset ?? {});
  if (text !== undefined) node.textContent = text;
  return node;
}

const SVG = "http://www.w3.org/2000/svg";

// An SVG element with attributes (SVG geometry is attributes, so the CSP's style rules hold).
export function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A table row of text cells.
export function row(cells, properties = {}) {
  const tr = element("tr", properties);
  for (const text of cells) tr.append(element("td", {}, text));
  return tr;
}

// 1, 2 or 5 times a power of ten: a tick step giving about `count` ticks over `span`.
export function niceStep(span, count = 5) {
  const raw = Math.max(span, 1e-12) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].find((m) => m * power >= raw) * power;
  return step;
}

// Save a Blob as a file through a temporary link (the token-carrying fetch made the Blob).
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = element("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
