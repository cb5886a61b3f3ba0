"""Real size: an M4-monthly-sized dataset uploaded once, trained with defaults, forecast whole.

Makes a synthetic monthly collection the size of M4's monthly set (48,000 series of 60 to 600
points, about 10M in all: trend, yearly season, noise, level shifts and gaps), holds out each
series' last 18 months, writes the rest as a gzipped long-format CSV and, on the embedded stack
(API under gunicorn, Celery workers, SQLite) for each worker count:

- uploads it with the CLI's client (streamed), and prints the upload time and stored size;
- trains with defaults (only the horizon given; the season comes from the dataset's inferred
  frequency): one job on 1 worker; on 2 workers a 2-trial sweep (seeds 0 and 1), as scale-out
  works here (a job trains on one worker; more workers train more jobs at once);
- prints training wall time, optimizer updates per second and the workers' peak RSS;
- forecasts all series (POST /v1/forecasts with dataset_id: one batch, answered by a worker)
  and prints the time from the request to the forecasts in hand;
- scores the forecasts against the held-out months: mean MASE (scaled by the in-sample
  seasonal-naive error) of the model and of seasonal naive.

    python benchmarks/scale.py                      # 48,000 series, 1 and 2 workers
    python benchmarks/scale.py --series 2000 --workers 1
    python benchmarks/scale.py --max-train-minutes 20   # cancel a job that would run longer
    python benchmarks/scale.py --workers 1 --job '{"training": {"max_steps": 15000}}'

Targets on a 2-core machine: training under 15 minutes on one worker, all forecasts under
10 s, peak worker RSS under 4 GiB, mean MASE below seasonal naive's. A job still training at
--max-train-minutes is cancelled and reported with its progress, so the run always ends.
Numbers depend on the machine and its load (printed): rerun it rather than trust a copy.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _stack import Stack, embedded_stack

from bptt.data import window_counts
from service.client import Client

HORIZON, SEASON = 18, 12  # M4 monthly
POLL_S = 0.5
FORECAST_DEADLINE_S = 600


@dataclass
class Collection:
    """The synthetic series: what is uploaded, and the held-out months of each."""

    ids: list[str]
    starts: list[tuple[int, int]]  # (year, month) of the first value
    train: list[np.ndarray]  # with NaN gaps
    holdout: np.ndarray  # (S, HORIZON), no gaps

    @property
    def points(self) -> int:
        return sum(v.size for v in self.train)


def synthetic(series: int, seed: int) -> Collection:
    """Monthly series of 60-600 points (mean ~210, as M4 monthly's): a level, a trend, a
    yearly season of random shape and strength, noise, level shifts in a third of them, gaps
    in a fifth; the last HORIZON months held out (they have no gaps)."""
    rng = np.random.default_rng(seed)
    lengths = 60 + np.floor(540 * rng.beta(1.0, 2.6, series)).astype(int)
    ids, starts, train, holdout = [], [], [], np.empty((series, HORIZON))
    for i, n in enumerate(lengths.tolist()):
        total = n + HORIZON
        t = np.arange(total)
        level = math.exp(rng.normal(7.5, 1.0))
        trend = rng.normal(0, 0.002) * level * t
        shape = rng.normal(0, 1, SEASON)
        season = (rng.uniform(0, 0.25) * level * (shape - shape.mean()) / (shape.std() + 1e-9))
        noise = rng.normal(0, rng.uniform(0.01, 0.08) * level, total)
        noise = np.convolve(noise, [1.0, 0.5], mode="same")  # a little autocorrelation
        shifts = np.zeros(total)
        if rng.random() < 1 / 3:
            for at in rng.integers(total // 4, total, rng.integers(1, 3)):
                shifts[at:] += rng.normal(0, 0.15) * level
        values = level + trend + season[t % SEASON] + noise + shifts
        values = np.round(np.maximum(values, 0.01 * level), 2)
        kept = values[:n].copy()
        if rng.random() < 0.2:
            kept[rng.choice(n - 1, max(1, n // 50), replace=False)] = np.nan
        ids.append(f"M{i + 1:05d}")
        starts.append((int(rng.integers(1980, 2011)), int(rng.integers(1, 13))))
        train.append(kept)
        holdout[i] = values[n:]
    return Collection(ids, starts, train, holdout)


def write_csv(collection: Collection, path: Path) -> None:
    """The uploaded part as a gzipped long-format CSV, written a series at a time."""
    with gzip.open(path, "wt", compresslevel=1, newline="") as out:
        out.write("unique_id,ds,y\n")
        for name, (year, month), values in zip(collection.ids, collection.starts,
                                               collection.train, strict=True):
            months = year * 12 + month - 1 + np.arange(values.size)
            text = [f"{name},{m // 12}-{m % 12 + 1:02d},{'' if v != v else v}\n"
                    for m, v in zip(months.tolist(), values.tolist(), strict=True)]
            out.write("".join(text))


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray) -> float:
    """Mean absolute error over the in-sample seasonal-naive error (gaps skipped)."""
    scale = np.nanmean(np.abs(history[SEASON:] - history[:-SEASON]))
    return float(np.mean(np.abs(actual - forecast)) / scale)


def seasonal_naive(history: np.ndarray) -> np.ndarray:
    """The last season repeated; a gap in it takes the last known value of its month."""
    last = history[-SEASON:].copy()
    for k in np.flatnonzero(np.isnan(last)):
        same_month = history[history.size - SEASON + k::-SEASON]
        known = same_month[~np.isnan(same_month)]
        last[k] = known[0] if known.size else np.nanmean(history)
    return np.resize(last, HORIZON)


def peak_rss_mib(stack: Stack) -> float:
    """The largest peak RSS (VmHWM) among the workers' processes and their children."""
    peak = 0
    for process in stack.processes[1:]:
        for pid in [process.pid, *_descendants(process.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    return peak / 1024


def _descendants(pid: int) -> list[int]:
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return children + [d for c in children for d in _descendants(c)]


def upload(stack: Stack, path: Path) -> tuple[float, dict]:
    """(seconds, dataset document) of one streamed upload."""
    began = time.perf_counter()
    dataset = Client(stack.url, stack.token).upload(
        "/v1/datasets", path, content_type="text/csv", gzipped=True,
        query={"name": path.name})
    return time.perf_counter() - began, dataset


def train(stack: Stack, dataset_id: str, workers: int, minutes: float,
          overrides: dict) -> list[dict]:
    """Submit the default job (a 2-trial sweep on 2 workers), with `overrides` (fields of a
    job request) if any; wait; the finished job docs."""
    job = {"dataset_id": dataset_id, "horizon": HORIZON, **overrides}
    if workers == 1:
        ids = [stack.call("POST", "/v1/jobs", job)["id"]]
    else:
        sweep = stack.call("POST", "/v1/sweeps", {
            "job": job, "strategy": "grid",
            "space": {"training.seed": list(range(workers))}})
        ids = [t["job_id"] for t in sweep["trials"]]
    deadline = time.monotonic() + minutes * 60
    while True:
        jobs = [stack.call("GET", f"/v1/jobs/{i}") for i in ids]
        if all(j["status"] in ("succeeded", "failed", "cancelled") for j in jobs):
            return jobs
        if time.monotonic() > deadline:
            for i in ids:
                stack.call("POST", f"/v1/jobs/{i}/cancel")
            deadline = math.inf
        time.sleep(POLL_S)


def updates(job: dict, lengths: list[int]) -> int:
    """Optimizer updates the job made: its own count when the document has one, else its
    epochs times the updates of an epoch (eval_every with a budget in updates, else a pass's
    batches)."""
    progress = job["progress"]
    for key in ("updates_done", "steps_done"):
        if progress.get(key) is not None:
            return int(progress[key])
    training = job["spec"]["training"]
    if training.get("max_steps") is not None:  # rounds of eval_every updates, the last shorter
        members = progress.get("members") or training["ensemble"]
        return min(progress["epochs_done"] * training["eval_every"],
                   members * training["max_steps"])
    train_windows, _ = window_counts(lengths, job["spec"]["window"]["input_size"],
                                     job["spec"]["horizon"], training["validation_fraction"])
    return progress["epochs_done"] * math.ceil(train_windows / training["batch_size"])


def forecast_all(stack: Stack, job_id: str, dataset_id: str) -> tuple[float, list[dict]]:
    """(seconds from the request to the forecasts in hand, the forecasts)."""
    began = time.perf_counter()
    answer = stack.call("POST", "/v1/forecasts", {"job_id": job_id, "dataset_id": dataset_id,
                                                  "quantiles": []})
    if "forecasts" in answer:
        return time.perf_counter() - began, answer["forecasts"]
    deadline = time.monotonic() + FORECAST_DEADLINE_S
    while time.monotonic() < deadline:
        batch = stack.call("GET", f"/v1/forecasts/{answer['id']}")
        if batch["status"] == "succeeded":
            return time.perf_counter() - began, batch["result"]["forecasts"]
        if batch["status"] == "failed":
            raise RuntimeError(f"forecast batch failed: {batch['error']}")
        time.sleep(0.05)
    raise RuntimeError("the forecast batch did not finish")


def scores(collection: Collection, forecasts: list[dict]) -> tuple[float, float, int]:
    """(mean MASE of the model, of seasonal naive, series where the model wins)."""
    where = {name: i for i, name in enumerate(collection.ids)}
    model, naive = np.empty(len(forecasts)), np.empty(len(forecasts))
    for k, item in enumerate(forecasts):
        i = where[item["id"]]
        history, actual = collection.train[i], collection.holdout[i]
        mean = np.array(item["mean"], dtype=float)
        model[k] = mase(actual, mean, history)
        naive[k] = mase(actual, seasonal_naive(history), history)
    return float(model.mean()), float(naive.mean()), int((model < naive).sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=48_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-train-minutes", type=float, default=60.0)
    parser.add_argument("--job", type=json.loads, default={}, metavar="JSON",
                        help="fields added to the job request (default: none, the defaults)")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    collection = synthetic(args.series, args.seed)
    lengths = [v.size for v in collection.train]
    gaps = sum(int(np.isnan(v).sum()) for v in collection.train)
    print(f"{args.series} synthetic monthly series, {collection.points:,} points uploaded "
          f"(lengths {min(lengths)}-{max(lengths)}, {gaps:,} gaps), {HORIZON} held out each; "
          f"made in {time.perf_counter() - began:.0f} s; {os.cpu_count()} cores, load "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.job:
        print(f"job request fields beside the defaults: {json.dumps(args.job)}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"m4-like-{args.series}.csv.gz"
        write_csv(collection, path)
        print(f"CSV: {path.stat().st_size / 1e6:.1f} MB gzipped")
        print()
        print("| workers | upload (s) | text MB | stored MB | jobs | training wall (s) | "
              "evaluations | updates/s | peak worker RSS (MiB) | forecast all (s) | MASE bptt | "
              "MASE snaive | bptt wins | status |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for workers in args.workers:
            with embedded_stack(workers) as stack:
                seconds, dataset = upload(stack, path)
                trained = time.perf_counter()
                jobs = train(stack, dataset["id"], workers, args.max_train_minutes, args.job)
                wall = time.perf_counter() - trained
                done = sum(updates(j, lengths) for j in jobs)
                first = jobs[0]
                row = [workers, f"{seconds:.1f}", f"{dataset['text_bytes'] / 1e6:.0f}",
                       f"{dataset['stored_bytes'] / 1e6:.1f}", len(jobs), f"{wall:.0f}",
                       "/".join(f"{j['progress']['epochs_done']}/"
                                f"{j['progress']['epochs_total']}" for j in jobs),
                       f"{done / wall:.0f}", f"{peak_rss_mib(stack):.0f}"]
                if first["status"] == "succeeded":
                    took, forecasts = forecast_all(stack, first["id"], dataset["id"])
                    model, naive, wins = scores(collection, forecasts)
                    row += [f"{took:.1f}", f"{model:.3f}", f"{naive:.3f}",
                            f"{wins}/{len(forecasts)}", "succeeded"]
                else:
                    row += ["-", "-", "-", "-", f"{first['status']}: {first.get('error')}"]
                print("| " + " | ".join(map(str, row)) + " |", flush=True)
    print()
    print(f"load after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"total {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
