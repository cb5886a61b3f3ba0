"""Jobs per minute with 1 and 2 worker processes, and how fast a job starts on a warm worker.

Starts the embedded stack (API under gunicorn, N Celery workers, SQLite data and broker) in a
temporary directory, submits a fixed mix of jobs over HTTP, and times them:

- jobs per minute: from the first submit until every job of the mix has succeeded;
- start latency: from submit (HTTP 202) until the job's first epoch has its metrics row,
  minus that epoch's own training time, on workers that are already warm and idle.

    python benchmarks/throughput.py                 # 1 and 2 workers, the full mix
    python benchmarks/throughput.py --quick         # a smoke run

Numbers depend on the machine (2 cores here): rerun it rather than trust a copy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
from _stack import Stack, embedded_stack

DEADLINE_S = 1800


def mix(quick: bool) -> list[dict]:
    """The job mix: LSTM, GRU and RNN fits on seasonal series of a few sizes."""
    rng = np.random.default_rng(0)
    jobs = []
    cells = ["lstm", "gru", "rnn"]
    sizes = [(4, 120), (8, 200), (16, 150)] if not quick else [(2, 80)]
    for k, (count, length) in enumerate(sizes * (1 if quick else 2)):
        t = np.arange(length)
        series = [{"id": f"s{i}", "values": [round(float(v), 3) for v in
                   10 + 3 * np.sin(2 * np.pi * t / 12 + i) + rng.normal(0, .3, length)]}
                  for i in range(count)]
        jobs.append({"series": series, "horizon": 12, "season_length": 12,
                     "model": {"cell": cells[k % 3], "hidden_size": 32},
                     "training": {"epochs": 5 if quick else 40, "ensemble": 1,
                                  "early_stopping_patience": None}})
    return jobs


def wait_all(stack: Stack, ids: list[str]) -> None:
    """Poll until every job has ended; fail if any did not succeed."""
    deadline = time.monotonic() + DEADLINE_S
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            job = stack.call("GET", f"/v1/jobs/{job_id}")
            if job["status"] in ("succeeded", "failed", "cancelled"):
                if job["status"] != "succeeded":
                    raise RuntimeError(f"job {job_id} {job['status']}: {job.get('error')}")
                pending.discard(job_id)
        time.sleep(0.2)
    if pending:
        raise RuntimeError(f"{len(pending)} jobs did not finish in {DEADLINE_S} s")


def start_latency(stack: Stack, job: dict) -> float:
    """Seconds from submit to the first metrics row, minus the first epoch's own time."""
    began = time.perf_counter()
    job_id = stack.call("POST", "/v1/jobs", job)["id"]
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        page = stack.call("GET", f"/v1/jobs/{job_id}/metrics")
        if page["metrics"]:
            seen = time.perf_counter() - began
            return seen - page["metrics"][0]["seconds"]
        time.sleep(0.01)
    raise RuntimeError("no metrics")


def run(workers: int, jobs: list[dict], quick: bool) -> tuple[float, float]:
    """(jobs per minute, median start latency) with `workers` worker processes."""
    with embedded_stack(workers) as stack:
        warm = {**jobs[0], "training": {**jobs[0]["training"], "epochs": 1}}
        wait_all(stack, [stack.call("POST", "/v1/jobs", warm)["id"]])
        latencies = [start_latency(stack, warm) for _ in range(3 if quick else 5)]
        time.sleep(1)  # let those finish
        began = time.perf_counter()
        ids = [stack.call("POST", "/v1/jobs", job)["id"] for job in jobs]
        wait_all(stack, ids)
        minutes = (time.perf_counter() - began) / 60
        return len(jobs) / minutes, statistics.median(latencies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    jobs = mix(args.quick)
    print(f"{len(jobs)} jobs per run (LSTM/GRU/RNN, hidden 32, horizon 12), "
          f"embedded stack, {os.cpu_count()} cores")
    print()
    print("| workers | jobs/min | start latency (s, median) |")
    print("|---|---|---|")
    for workers in args.workers:
        rate, latency = run(workers, jobs, args.quick)
        print(f"| {workers} | {rate:.1f} | {latency:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
