// Dates of a series' points from its `start` label and a pandas-style frequency, when both can
// be read; else null and the charts count steps. Everything is UTC: labels without an offset
// are read as UTC, as the API compares them.

const YEAR_MONTH = /^(\d{4})-(\d{2})$/;
const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/;
// Pandas offset aliases, by what one step adds: [unit, amount].
const ALIASES = {
  MS: ["month", 1], M: ["month", 1], ME: ["month", 1], BMS: ["month", 1], BM: ["month", 1],
  QS: ["month", 3], Q: ["month", 3], QE: ["month", 3],
  YS: ["month", 12], Y: ["month", 12], YE: ["month", 12], AS: ["month", 12], A: ["month", 12],
  W: ["day", 7], D: ["day", 1], B: ["weekday", 1],
  H: ["ms", 3_600_000], h: ["ms", 3_600_000], T: ["ms", 60_000], min: ["ms", 60_000],
  S: ["ms", 1000], s: ["ms", 1000],
};
const MONTH_END = new Set(["M", "ME", "BM", "Q", "QE", "Y", "YE", "A"]);

// The instant a start label names (ms since the epoch) and whether it names a month only.
export function parseStart(label) {
  if (typeof label !== "string") return null;
  const text = label.trim();
  const month = YEAR_MONTH.exec(text);
  if (month) return { ms: Date.UTC(Number(month[1]), Number(month[2]) - 1, 1), month: true };
  if (!ISO.test(text)) return null;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(text) || text.length === 10 ? text : `${text}Z`;
  const ms = Date.parse(zoned.replace(" ", "T"));
  return Number.isNaN(ms) ? null : { ms, month: false };
}

// One step of `freq` ("MS", "2h", "W-SUN", ...) as [unit, amount, month end?], or null.
export function parseFreq(freq) {
  const match = /^(\d*)([A-Za-z]+)(-[A-Z]{3})?$/.exec(String(freq ?? "").trim());
  if (!match || !(match[2] in ALIASES)) return null;
  const [unit, amount] = ALIASES[match[2]];
  return [unit, amount * (match[1] ? Number(match[1]) : 1), MONTH_END.has(match[2])];
}

// The dates (seconds since the epoch, for uPlot) of points first..first+count-1 of a series,
// counted from its start; null when the series has no readable start and step. A YYYY-MM start
// without a frequency steps by months.
export function pointDates(start, freq, first, count) {
  const origin = parseStart(start);
  if (!origin) return null;
  const step = parseFreq(freq) ?? (origin.month ? ["month", 1, false] : null);
  if (!step) return null;
  return Array.from({ length: count }, (_, k) => shifted(origin.ms, step, first + k) / 1000);
}

function shifted(ms, [unit, amount, monthEnd], n) {
  const date = new Date(ms);
  if (unit === "ms") return ms + n * amount;
  if (unit === "day") return ms + n * amount * 86_400_000;
  if (unit === "weekday") return addWeekdays(ms, n * amount);
  const day = date.getUTCDate();
  const endOfMonth = monthEnd && day === daysIn(date.getUTCFullYear(), date.getUTCMonth());
  const month = date.getUTCMonth() + n * amount;
  const target = new Date(Date.UTC(date.getUTCFullYear(), month, 1, date.getUTCHours(),
    date.getUTCMinutes(), date.getUTCSeconds()));
  const last = daysIn(target.getUTCFullYear(), target.getUTCMonth());
  target.setUTCDate(endOfMonth ? last : Math.min(day, last));
  return target.getTime();
}

function daysIn(year, month) {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

function addWeekdays(ms, n) {
  let time = ms;
  let left = Math.abs(n);
  const direction = Math.sign(n);
  while (left > 0) {
    time += direction * 86_400_000;
    const weekday = new Date(time).getUTCDay();
    if (weekday !== 0 && weekday !== 6) left -= 1;
  }
  return time;
}

// A point's date as the legend shows it: the date, with the time when it has one.
export function dateLabel(seconds) {
  const iso = new Date(seconds * 1000).toISOString();
  return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : `${iso.slice(0, 16).replace("T", " ")}Z`;
}
