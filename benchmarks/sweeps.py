"""Scale-out of a sweep: the same 16-trial random search with 1 and 2 worker processes.

Starts the embedded stack (API under gunicorn, N Celery workers, SQLite data and broker) for
each worker count, posts one sweep over HTTP and times it from the POST until the sweep has
settled (its last trial finished and the best one picked). Trials are ordinary jobs, so the
workers share them out through the broker with no coordination beyond the database.

    python benchmarks/sweeps.py                 # 16 trials, 1 and 2 workers
    python benchmarks/sweeps.py --quick         # 4 short trials, a smoke run
    python benchmarks/sweeps.py --workers 1 2 4

Prints one Markdown row per worker count: wall time, trials per minute, speed-up over the first
row, and the mean training time of a trial. The speed-up is bounded by the cores: on 2 vCPUs
two workers cannot give 2x. Numbers depend on the machine: rerun it rather than trust a copy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from _stack import Stack, embedded_stack

DEADLINE_S = 3600


def sweep_request(quick: bool) -> dict:
    """A random search over cell, size and learning rate on 8 seasonal series."""
    rng = np.random.default_rng(0)
    t = np.arange(200)
    series = [{"id": f"s{i}", "values": [round(float(v), 3) for v in
               10 + 3 * np.sin(2 * np.pi * t / 12 + i) + 0.01 * t + rng.normal(0, .3, t.size)]}
              for i in range(8)]
    job = {"series": series, "horizon": 12, "season_length": 12,
           "training": {"epochs": 4 if quick else 30, "ensemble": 1,
                        "early_stopping_patience": None}}
    return {"job": job, "strategy": "random", "budget": 4 if quick else 16, "seed": 0,
            "space": {"model.cell": ["rnn", "gru", "lstm"], "model.hidden_size": [16, 32, 64],
                      "training.learning_rate": {"log_uniform": [0.001, 0.01]}}}


def run_sweep(stack: Stack, request: dict) -> tuple[float, dict]:
    """(seconds from POST to the settled sweep, the sweep document)."""
    began = time.perf_counter()
    sweep_id = stack.call("POST", "/v1/sweeps", request)["id"]
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        sweep = stack.call("GET", f"/v1/sweeps/{sweep_id}")
        if sweep["finished_at"] is not None:
            if sweep["status"] != "succeeded":
                raise RuntimeError(f"sweep {sweep['status']}: {sweep['trials']}")
            return time.perf_counter() - began, sweep
        time.sleep(0.1)
    raise RuntimeError(f"the sweep did not finish in {DEADLINE_S} s")


def trial_seconds(stack: Stack, sweep: dict) -> float:
    """Mean training time of a trial: the sum of its epochs' seconds."""
    totals = [sum(m["seconds"] for m in stack.call(
        "GET", f"/v1/jobs/{t['job_id']}/metrics")["metrics"]) for t in sweep["trials"]]
    return float(np.mean(totals))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    request = sweep_request(args.quick)
    print(f"{request['budget']} trials (random search over cell, hidden size, learning rate; "
          f"{request['job']['training']['epochs']} epochs each), embedded stack, "
          f"{os.cpu_count()} cores")
    print()
    print("| workers | wall time (s) | trials/min | speed-up | mean trial training (s) | "
          "best trial |")
    print("|---|---|---|---|---|---|")
    first = None
    for workers in args.workers:
        with embedded_stack(workers) as stack:
            seconds, sweep = run_sweep(stack, request)
            per_trial = trial_seconds(stack, sweep)
        first = first or seconds
        best = next(t for t in sweep["trials"] if t["job_id"] == sweep["best_job_id"])
        print(f"| {workers} | {seconds:.1f} | {60 * len(sweep['trials']) / seconds:.1f} | "
              f"{first / seconds:.2f}x | {per_trial:.2f} | "
              f"{best['settings']['model.cell']} {best['settings']['model.hidden_size']} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
