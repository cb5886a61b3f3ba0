// Numbers and job states written exactly as the CLI writes them (service/client.py).

export const TERMINAL = ["succeeded", "failed", "cancelled"];

// Python's format(x, ".{digits}g"): the same digits `bptt status` prints.
export function formatG(x, digits) {
  if (x === null || x === undefined) return "–";
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [kept, exponent] = significantDigits(Math.abs(x), digits);
  const sign = x < 0 ? "-" : "";
  if (exponent >= -4 && exponent < digits) {
    const text = exponent >= 0
      ? `${kept.slice(0, exponent + 1)}.${kept.slice(exponent + 1)}`
      : `0.${"0".repeat(-exponent - 1)}${kept}`;
    return sign + stripZeros(text);
  }
  const mantissa = stripZeros(`${kept[0]}.${kept.slice(1)}`);
  const expSign = exponent < 0 ? "-" : "+";
  return `${sign}${mantissa}e${expSign}${String(Math.abs(exponent)).padStart(2, "0")}`;
}

// The first `digits` significant digits of x > 0, rounded as Python rounds them (an exact tie
// to even, where toExponential rounds it up), and the decimal exponent of the first one.
function significantDigits(x, digits) {
  const [rounded, exponentText] = x.toExponential(digits - 1).split("e");
  const [exact, exactExponent] = x.toExponential(100).split("e");  // enough to see a tie
  const all = exact.replace(".", "");
  if (/^50*$/.test(all.slice(digits)) && Number(all[digits - 1]) % 2 === 0) {
    return [all.slice(0, digits), Number(exactExponent)];
  }
  return [rounded.replace(".", ""), Number(exponentText)];
}

function stripZeros(text) {
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}

const MEMBERS_NAMED = 5;  // early-stopped members named; more are counted (as the CLI does)

// The fields of the CLI's progress line, by label: the ensemble member in training and its
// epoch (`member 2/5 · epoch 37/300`), or epochs done of total for jobs from before members
// were recorded; `note` is the rest of the line's progress part (early stops, the stage).
export function progressFields(job) {
  const progress = job.progress ?? {};
  const latest = job.latest_metrics ?? {};
  const parts = progressParts(progress);
  return {
    member: parts.member ?? "–",
    epoch: parts.epoch,
    note: parts.note,
    train: latest.train_loss == null ? "–" : formatG(latest.train_loss, 4),
    val: latest.val_loss == null ? "–" : formatG(latest.val_loss, 4),
    grad: latest.grad_norm == null ? "–" : formatG(latest.grad_norm, 3),
  };
}

// service/client.py progress_text, word for word.
export function progressText(progress) {
  const { member, epoch, note } = progressParts(progress ?? {});
  return member === null ? `epoch ${epoch}` : `member ${member} · epoch ${epoch}${note}`;
}

function progressParts(progress) {
  if (progress.member == null) {
    const total = progress.epochs_total || "?";
    return { member: null, epoch: `${progress.epochs_done ?? 0}/${total}`, note: "" };
  }
  let note = "";
  const early = (progress.finished_members ?? [])
    .filter((m) => m.stopped === "early_stopping").map((m) => m.member);
  if (early.includes(progress.member)) {  // the member shown has finished: it is the last one
    note += " (stopped early)";
    early.splice(early.indexOf(progress.member), 1);
  }
  if (early.length) {
    const named = early.slice(0, MEMBERS_NAMED).join(", ");
    const more = early.length > MEMBERS_NAMED ? ` and ${early.length - MEMBERS_NAMED} more` : "";
    note += ` · ${early.length > 1 ? "members" : "member"} ${named}${more} stopped early`;
  }
  if (progress.stage === "cross_validation") note += " · cross-validating";
  return {
    member: `${progress.member}/${progress.members}`,
    epoch: `${progress.member_epoch}/${progress.member_epochs}`,
    note,
  };
}

// service/client.py timing_text, word for word: the time left of the expected duration, or
// what it took, and the duration if every planned epoch runs when it reads otherwise.
export function timingText(job) {
  const expected = job.estimate?.seconds;
  if (expected == null) return "";
  let of = `~${cliDuration(expected)}`;
  const bound = job.estimate.max_seconds;
  if (bound != null && cliDuration(bound) !== cliDuration(expected)) {
    of += ` (at most ${cliDuration(bound)})`;
  }
  if (TERMINAL.includes(job.status)) {
    const took = job.usage?.seconds;
    return took == null ? `estimated ${of}` : `took ${cliDuration(took)} of ${of}`;
  }
  const left = job.progress?.remaining_seconds;
  return left == null ? `estimated ${of}` : `${cliDuration(left)} left of ${of}`;
}

// service/client.py duration: <1s, 42s, 3m05s, 2h07m (Python rounds halves to even); the
// runs table's duration() reads "3 min 05 s", this one is the CLI's word for word.
function cliDuration(seconds) {
  const whole = roundHalfEven(seconds);
  if (seconds < 1) return "<1s";
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
  const minutes = roundHalfEven(seconds / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

// service/api/estimates.py show_bytes: 1.5 GiB, 512 MiB, ...
export function formatBytes(value) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${formatG(value, 3)} ${units[unit]}`;
}

function roundHalfEven(x) {
  const floor = Math.floor(x);
  if (x - floor !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

export function progressRatio(job) {
  const { epochs_done: done = 0, epochs_total: total } = job.progress ?? {};
  if (job.status === "succeeded") return 1;
  return total ? Math.min(1, done / total) : 0;
}

export function shortId(id) {
  return id.slice(0, 8);
}

export function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// A job's or sweep's name, else its short id.
export function runName(item) {
  return item.name ?? shortId(item.id);
}

// Seconds as people read a duration: "850 ms", "12.4 s", "3 min 05 s", "2 h 07 min".
export function duration(seconds) {
  if (seconds == null) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${formatG(seconds, 3)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
  const minutes = Math.round(whole / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

// How long a job has run: to its end, or until now while it runs.
export function elapsed(job, now = Date.now()) {
  if (job.duration_seconds != null) return job.duration_seconds;
  if (job.started_at && !TERMINAL.includes(job.status)) {
    return Math.max(0, (now - Date.parse(job.started_at)) / 1000);
  }
  return null;
}

const LOSS_NAMES = { mse: "MSE", mae: "MAE", huber: "Huber" };

// The y-axis title of a loss curve, with its unit: losses are measured on each series scaled
// by its scaler (in the series' own units with scaler "none").
export function lossTitle(spec) {
  const training = spec?.training ?? {};
  const name = LOSS_NAMES[training.loss] ?? training.loss ?? "loss";
  const pinball = spec?.quantiles?.length ? " + pinball" : "";
  return `${name}${pinball} (${spec?.scaler === "none" ? "series units" : "scaled"})`;
}

// How long ago an instant was, in one short phrase ("just now", "5 min ago", "3 d ago").
export function ago(iso, now = Date.now()) {
  if (!iso) return "–";
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (seconds < 45) return "just now";
  const steps = [[3600, 60, "min"], [86400, 3600, "h"], [86400 * 60, 86400, "d"]];
  for (const [below, unit, name] of steps) {
    if (seconds < below) return `${Math.round(seconds / unit)} ${name} ago`;
  }
  return new Date(iso).toLocaleDateString(undefined, { dateStyle: "medium" });
}
