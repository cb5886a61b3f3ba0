"""How close a job's estimate (bptt.estimate_cost, admission control's figures) comes to what it
really takes: duration and peak memory, estimated at submit against measured by the worker.

Starts the embedded stack with one worker process (which times its kernels when it starts: the
estimates use that measurement), then submits a spread of real jobs over HTTP one after
another: cells, sizes, data sizes, ensembles, truncated BPTT, cross-validation. For each it
prints the estimate from the job document against the worker's measurement of the attempt
(`usage`): seconds from claim to end (and the worker's CPU seconds: the estimate is of a
worker with a core to itself, which a shared machine's wall time is not), and the memory the
job added to the worker (peak resident size less the size when the attempt began), and the
whole worker's peak resident size against its size at the start plus the estimate. It also
samples the job's time left while it runs and prints, at half-way, what the job said was left
against what was.

    python benchmarks/cost.py                 # the spread (about 10 minutes here)
    python benchmarks/cost.py --quick         # a smoke run
    python benchmarks/cost.py --budgets       # short budgets: fixed costs dominate
    python benchmarks/cost.py --fit-rates     # refit DEFAULT_KERNEL_SPEED's rates (bptt.speed)

Numbers depend on the machine and on what else runs on it: rerun it rather than trust a copy.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np
from _stack import Stack, embedded_stack

DEADLINE_S = 3600
MIB = 2**20


def series(count: int, low: int, high: int, seed: int = 0) -> list[dict]:
    """Seasonal series with a trend, noise and a few gaps, lengths in [low, high]."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        n = int(rng.integers(low, high + 1))
        t = np.arange(n)
        values = (50 + 0.02 * t + 10 * np.sin(2 * np.pi * t / 12 + i)
                  + rng.normal(0, 1, n)).round(2).tolist()
        for gap in rng.choice(n, size=max(1, n // 100), replace=False):
            values[int(gap)] = None
        out.append({"id": f"s{i}", "values": values})
    return out


def store_sales() -> list[dict]:
    """examples/store_sales.csv (long format: unique_id, ds, y) as series with their starts."""
    rows: dict[str, list[tuple[str, str]]] = {}
    text = (Path(__file__).parent.parent / "examples" / "store_sales.csv").read_text()
    for line in text.splitlines()[1:]:
        name, ds, y = line.split(",")
        rows.setdefault(name, []).append((ds, y))
    return [{"id": name, "start": points[0][0], "freq": "MS",
             "values": [float(y) if y else None for _, y in points]}
            for name, points in rows.items()]


def spread(quick: bool, budgets: bool = False) -> list[tuple[str, dict]]:
    """(label, job request) of every job the benchmark runs: the spread, a smoke run (quick),
    or the short budgets of `bptt submit examples/store_sales.csv --max-steps N` and a
    default job on it (budgets)."""
    fixed = {"early_stopping_patience": None}  # the whole budget runs: what is estimated
    jobs = [
        ("lstm 32, 20 series, 2 members", series(20, 100, 200),
         {"model": {"hidden_size": 32}, "training": {"epochs": 20, "ensemble": 2, **fixed}}),
        ("gru 64, 200 series", series(200, 250, 350),
         {"model": {"cell": "gru", "hidden_size": 64},
          "training": {"epochs": 4, "ensemble": 1, **fixed}}),
        ("rnn 16, 2 short series, 5 members", series(2, 90, 110),
         {"horizon": 6, "model": {"cell": "rnn", "hidden_size": 16},
          "training": {"epochs": 30, "ensemble": 5, **fixed}}),
        ("lstm 128 x 2 layers, dropout", series(50, 300, 500),
         {"model": {"hidden_size": 128, "num_layers": 2, "dropout": 0.1},
          "training": {"epochs": 2, "ensemble": 1, **fixed}}),
        ("lstm 32, window 192, truncated (24, 48)", series(20, 550, 650),
         {"window": {"input_size": 192}, "model": {"hidden_size": 32},
          "training": {"epochs": 4, "ensemble": 1, "truncate": [24, 48], **fixed}}),
        ("lstm, 1,000 series x 500 (0.5M values)", series(1000, 450, 550),
         {"training": {"epochs": 1, "ensemble": 1, **fixed}}),
        ("lstm 32, cross-validation (3 windows)", series(30, 180, 220),
         {"model": {"hidden_size": 32}, "training": {"epochs": 5, "ensemble": 2, **fixed},
          "cross_validation": {"windows": 3}}),
        ("gru 256", series(10, 280, 320),
         {"model": {"cell": "gru", "hidden_size": 256},
          "training": {"epochs": 2, "ensemble": 1, **fixed}}),
        ("defaults, early stopping on", series(2, 60, 84), {}),
    ]
    if budgets:
        data = store_sales()
        jobs = [(f"store_sales, max_steps {steps}", data,
                 {"horizon": 12, "training": {"max_steps": steps}}) for steps in (50, 200, 1000)]
        jobs += [("store_sales, defaults", data, {"horizon": 12}),
                 ("1,000 series x 500, max_steps 200", series(1000, 450, 550),
                  {"training": {"max_steps": 200}})]
        return [(label, {"series": data, "horizon": 12, "season_length": 12, **spec})
                for label, data, spec in jobs]
    if quick:
        jobs = [("lstm 8, 2 series (quick)", series(2, 80, 100),
                 {"model": {"hidden_size": 8}, "training": {"epochs": 5, "ensemble": 1}})]
    return [(label, {"series": data, "horizon": 12, "season_length": 12, **spec})
            for label, data, spec in jobs]


def run_job(stack: Stack, request: dict) -> tuple[dict, float | None, float | None]:
    """Submit one job and follow it: (its final document, the time left it said at about
    half-way, the time that was really left then)."""
    job = stack.call("POST", "/v1/jobs", request)
    samples = []  # (seconds since submit, remaining_seconds) while running
    began = time.monotonic()
    while time.monotonic() - began < DEADLINE_S:
        job = stack.call("GET", f"/v1/jobs/{job['id']}")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        if job["status"] == "running":
            samples.append((time.monotonic() - began, job["progress"]["remaining_seconds"]))
        time.sleep(0.25)
    else:
        raise RuntimeError(f"job {job['id']} did not end in {DEADLINE_S} s")
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['id']} {job['status']}: {job['error']}")
    ended = time.monotonic() - began
    while job.get("usage") is None:  # written as the job ends
        time.sleep(0.1)
        job = stack.call("GET", f"/v1/jobs/{job['id']}")
    if not samples:
        return job, None, None
    start = samples[0][0]
    at, said = min(samples, key=lambda s: abs(s[0] - (start + ended) / 2))
    return job, said, ended - at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budgets", action="store_true",
                        help="short budgets (max_steps 50-1000) and defaults on the example data")
    parser.add_argument("--fit-rates", action="store_true")
    args = parser.parse_args(argv)
    if args.fit_rates:
        return fit_rates()
    jobs = spread(args.quick, args.budgets)
    print(f"{len(jobs)} jobs, one at a time, on one worker process (embedded stack); "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the start")
    print()
    print("| job | expected s (at most) | measured s (CPU) | ratio (CPU) | half-way: said left "
          "/ was left (s) | estimated MiB | measured MiB | ratio | worker RSS est. / measured "
          "(MiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    with embedded_stack(1) as stack:
        warm = spread(True)[0][1]  # the worker has timed its kernels before its first job
        run_job(stack, {**warm, "training": {"epochs": 1, "ensemble": 1}})
        for label, request in jobs:
            job, said, was = run_job(stack, request)
            estimate, usage = job["estimate"], job["usage"]
            before = usage["peak_rss_bytes"] - usage["peak_bytes"]
            halfway = f"{said:.1f} / {was:.1f}" if said is not None else "–"
            wall, cpu, expected = usage["seconds"], usage["cpu_seconds"], estimate["seconds"]
            bound = estimate.get("max_seconds") or expected
            print(f"| {label} | {expected:.1f} ({bound:.1f}) | {wall:.1f} ({cpu:.1f}) | "
                  f"{wall / expected:.2f} ({cpu / expected:.2f}) | {halfway} | "
                  f"{estimate['peak_bytes'] / MIB:.0f} | {usage['peak_bytes'] / MIB:.0f} | "
                  f"{usage['peak_bytes'] / estimate['peak_bytes']:.2f} | "
                  f"{(before + estimate['peak_bytes']) / MIB:.0f} / "
                  f"{usage['peak_rss_bytes'] / MIB:.0f} |", flush=True)
        print()
        print(f"worker speed used: {job['estimate']['speed']}; load "
              f"{os.getloadavg()[0]:.1f} at the end")
    return 0


def fit_rates() -> int:
    """Time training steps over a grid of shapes and fit the three rates of bptt.speed by
    non-negative least squares on relative errors: the balance DEFAULT_KERNEL_SPEED keeps."""
    from scipy.optimize import nnls

    import bptt
    from bptt import NetworkSpec
    from bptt.cost import step_work
    from bptt.speed import _median_step_seconds

    bptt.warm_kernels((np.float32,))
    rows, times = [], []
    for cell, hidden, steps, batch in itertools.product(
            ("rnn", "lstm", "gru"), (4, 16, 32, 64, 128, 256), (24, 96), (16, 64)):
        network = NetworkSpec(cell=cell, hidden_size=hidden, output_size=12)
        work = step_work(network, steps, batch)
        rows.append([work.passes, work.elements, work.flops])
        times.append(_median_step_seconds(network, steps, batch, 0.1, 1))
    counts, seconds = np.array(rows), np.array(times)
    fitted = nnls(counts / seconds[:, None], np.ones(len(seconds)))[0]
    per_pass, per_element, per_flop = np.maximum(fitted, 1e-30)  # a zero rate: unmeasurable
    ratio = seconds / (counts @ [per_pass, per_element, per_flop])
    print(f"{len(seconds)} step shapes, load {os.getloadavg()[0]:.1f}: "
          f"KernelSpeed(gflops={1e-9 / per_flop:.1f}, gelements={1e-9 / per_element:.2f}, "
          f"pass_seconds={per_pass:.2e}); measured / fitted {ratio.min():.2f}..{ratio.max():.2f}"
          f" (median {np.median(ratio):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
