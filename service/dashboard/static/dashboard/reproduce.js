// The curl command that submits a job again: its requested spec (open choices stay open, as
// they were), name, labels, warm start, covariates, and its series inline when they are small;
// for large datasets a CSV upload of the user's own file, rather than megabytes in the
// clipboard.

import { api } from "./api.js";

export const INLINE_MAX_POINTS = 20_000;  // about 200 kB of JSON: still a command one can paste
const PAGE = 100;  // series per page of GET /v1/jobs/{id}/series
const MAX_TAIL = 1000;  // the longest tail that route gives

// {command, note}: the shell command (the token stays $BPTT_TOKEN) and what to know about it.
export async function reproduceCommand(job) {
  const origin = window.location.origin;
  const spec = pruned(job.requested_spec) ?? {};
  const extra = {};
  if (job.name != null) extra.name = job.name;
  if (Object.keys(job.labels ?? {}).length) extra.labels = job.labels;
  if (job.warm_start_job_id) extra.warm_start = job.warm_start_job_id;
  if (job.covariates) extra.covariates = job.covariates;  // each series carries their values
  const points = job.dataset?.num_points ?? Infinity;
  const series = points <= INLINE_MAX_POINTS ? await allSeries(job) : null;
  if (series) {
    const body = JSON.stringify({ series, ...spec, ...extra });
    return {
      command: `curl -sS --fail-with-body ${origin}/v1/jobs -H "Authorization: Bearer $BPTT_TOKEN" ` +
        `-H "Content-Type: application/json" -d ${shellQuote(body)}`,
      note: `The request as submitted, with its ${series.length} series inline.`,
    };
  }
  const query = new URLSearchParams();
  for (const [name, value] of leaves({ ...spec }, "")) query.set(name, value);
  if (extra.name) query.set("name", extra.name);
  for (const [key, value] of Object.entries(extra.labels ?? {})) query.set(`labels.${key}`, value);
  if (extra.warm_start) query.set("warm_start", extra.warm_start);
  const covariates = Object.entries(extra.covariates ?? {});
  if (covariates.length) {
    query.set("covariates", covariates.map(([name, kind]) => `${name}:${kind}`).join(","));
  }
  const columns = ["unique_id", "ds", "y", ...covariates.map(([name]) => name)].join(",");
  const size = job.dataset ? `${job.dataset.num_series.toLocaleString("en")} series, ` +
    `${job.dataset.num_points.toLocaleString("en")} values` : "its series";
  return {
    command: `curl -sS --fail-with-body ${shellQuote(`${origin}/v1/jobs?${query}`)} ` +
      `-H "Authorization: Bearer $BPTT_TOKEN" -H "Content-Type: text/csv" ` +
      "--data-binary @series.csv",
    note: `The job trained on ${size}: too large to copy inline. The command sends the spec ` +
      `as query parameters with series.csv, your data in long format (${columns}).`,
  };
}

// Every training series in full, as a job request gives them (null if one is too long to
// fetch whole).
async function allSeries(job) {
  const out = [];
  for (let offset = 0; ; offset += PAGE) {
    const path = `/v1/jobs/${encodeURIComponent(job.id)}/series?tail=${MAX_TAIL}` +
      `&limit=${PAGE}&offset=${offset}`;
    const { data } = await api(path);
    for (const s of data.series) {
      if (s.length > s.values.length) return null;
      out.push({ id: s.id, values: s.values, ...(s.start == null ? {} : { start: s.start }),
        ...(s.freq == null ? {} : { freq: s.freq }),
        ...(s.covariates == null ? {} : { covariates: s.covariates }) });
    }
    if (data.next_offset == null) return out;
  }
}

// The spec without its open (null) fields: what the user asked for, and nothing else.
function pruned(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const out = {};
  for (const [key, inner] of Object.entries(value)) {
    const kept = pruned(inner);
    if (kept !== null && !(typeof kept === "object" && !Array.isArray(kept)
      && !Object.keys(kept).length)) out[key] = kept;
  }
  return Object.keys(out).length ? out : null;
}

// Dotted query parameters of a nested spec (lists as JSON, so one element stays a list).
function* leaves(value, prefix) {
  for (const [key, inner] of Object.entries(value)) {
    const name = prefix + key;
    if (inner !== null && typeof inner === "object" && !Array.isArray(inner)) {
      yield* leaves(inner, `${name}.`);
    } else {
      yield [name, Array.isArray(inner) ? JSON.stringify(inner) : String(inner)];
    }
  }
}

// Single quotes for the shell: nothing inside is expanded; a quote is closed, escaped, reopened.
export function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}
