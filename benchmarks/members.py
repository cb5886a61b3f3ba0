"""Both cores per fit: a default 5-member fit on 1 thread and on 2 (members side by side).

Fits the README's example series (examples/store_sales.csv, 2 monthly series, horizon 12) and a
synthetic group (8 monthly series of 144 points) with every choice left to the defaults (LSTM,
5 members), once per thread count, after a warm-up fit that loads the kernels; prints the wall
time of each, their ratio, the cores the 2-thread fit kept busy (CPU seconds over wall seconds:
2 when both threads ran all the time), and whether every member's weights came out identical.
Timings follow the machine's load: the 1-minute load average is printed beside them. Five
members on two threads take three rounds, so 0.6 is the ratio's floor when members are alike.

    python benchmarks/members.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

import bptt

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "store_sales.csv"


def store_sales() -> dict[str, np.ndarray]:
    """examples/store_sales.csv as {id: values} (empty values are gaps)."""
    series: dict[str, list[float]] = {}
    with open(EXAMPLE) as f:
        for row in sorted(csv.DictReader(f), key=lambda r: (r["unique_id"], r["ds"])):
            series.setdefault(row["unique_id"], []).append(float(row["y"] or "nan"))
    return {k: np.asarray(v) for k, v in series.items()}


def synthetic(count: int = 8, length: int = 144) -> dict[str, np.ndarray]:
    """Monthly series with trend, a yearly season and noise."""
    rng = np.random.default_rng(0)
    t = np.arange(length)
    return {f"s{i}": 50 + 0.1 * (i + 1) * t + 8 * np.sin(2 * np.pi * t / 12 + i)
            + rng.normal(0, 1.5, length) for i in range(count)}


def timed_fit(series, spec: bptt.TrainingSpec, threads: int
              ) -> tuple[float, float, np.ndarray]:
    """(seconds, CPU seconds, every member's weights) of one fit on `threads` threads."""
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training,
                                                                  threads=threads))
    began, used = time.perf_counter(), time.process_time()
    result = bptt.fit(series, spec=spec)
    return time.perf_counter() - began, time.process_time() - used, result.model.members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="fits per row (best kept)")
    args = parser.parse_args()
    groups = {"store_sales (2 series)": store_sales(), "synthetic (8 series)": synthetic()}
    bptt.warm_kernels()
    print(f"{os.cpu_count()} CPUs\n")
    print("| series | members | 1 thread s | 2 threads s | ratio | cores used (2 threads) "
          "| same weights | load |")
    print("|---|---|---|---|---|---|---|---|")
    for name, series in groups.items():
        spec = bptt.TrainingSpec(horizon=12, season_length=12)
        load = os.getloadavg()[0]
        best: dict[int, tuple[float, float]] = {}
        weights = {}
        for _ in range(args.repeat):
            for threads in (1, 2):  # alternated, so a change of load touches both alike
                seconds, cpu, weights[threads] = timed_fit(series, spec, threads)
                best[threads] = min(best.get(threads, (seconds, cpu)), (seconds, cpu))
        load = (load + os.getloadavg()[0]) / 2
        same = np.array_equal(weights[1], weights[2])
        (one, _), (two, two_cpu) = best[1], best[2]
        print(f"| {name} | {spec.training.ensemble} | {one:.2f} | {two:.2f} | {two / one:.2f} | "
              f"{two_cpu / two:.2f} | {'yes' if same else 'NO'} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    main()
