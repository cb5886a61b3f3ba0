"""Both cores per fit: a default 5-member fit on 1 thread and on 2 (members side by side).

Fits the README's example series (examples/store_sales.csv, 2 monthly series, horizon 12) and a
synthetic group (8 monthly series of 144 points) with every choice left to the defaults (LSTM,
5 members), once per thread count, after a warm-up fit that loads the kernels; prints the wall
time of each, their ratio, the cores the 2-thread fit kept busy (CPU seconds over wall seconds:
2 when both threads ran all the time), and whether every member's weights came out identical.
"floor" is the ratio the members' own one-thread times allow on two threads, each thread taking
the next member as it frees up, with the rest of the fit (data preparation before the members,
calibration after) serial: for five equal members, 0.6 plus 0.4 times that serial share (three
rounds of members where one thread runs five), lower where early stopping ends some members
sooner. "two busy cores" is what the machine itself loses when both cores work: the wall time
of two one-thread fits run at once in two forked processes (no GIL or memory shared), over one
such fit alone; "floor here" is the floor times that. What the ratio has above "floor here" is
what the two members lose to each other in one process (the Python between kernels holds the
GIL; the kernels release it).
Timings follow the machine's load: the 1-minute load average is printed beside them.

    python benchmarks/members.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import multiprocessing
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
              ) -> tuple[float, float, np.ndarray, list[float]]:
    """(seconds, CPU seconds, every member's weights, the seconds each member took) of one fit
    on `threads` threads. A member's seconds run from the start of its first epoch (its end
    less its seconds) to the end of its last, read off the epoch callbacks, which a one-thread
    fit calls as each epoch ends; on more threads they mean nothing."""
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training,
                                                                  threads=threads))
    first_epoch_start: dict[int, float] = {}
    last_epoch_end: dict[int, float] = {}

    def on_epoch(metrics: bptt.EpochMetrics) -> None:
        now = time.perf_counter()
        first_epoch_start.setdefault(metrics.member, now - metrics.seconds)
        last_epoch_end[metrics.member] = now

    began, used = time.perf_counter(), time.process_time()
    result = bptt.fit(series, spec=spec, callbacks=bptt.Callbacks(on_epoch=on_epoch))
    seconds = time.perf_counter() - began
    members = [last_epoch_end[m] - first_epoch_start[m] for m in sorted(last_epoch_end)]
    return seconds, time.process_time() - used, result.model.members, members


def schedule_floor(fit_seconds: float, members: list[float], threads: int) -> float:
    """The ratio to one thread that `threads` threads could reach with these members' own
    times, each thread taking the next member in order as it frees up (as bptt does), with
    nothing lost to sharing the process: the rest of the fit (preparing the data before the
    members, calibrating after them) stays serial."""
    free = [0.0] * threads
    for seconds in members:
        free[free.index(min(free))] += seconds
    serial = fit_seconds - sum(members)
    return (serial + max(free)) / fit_seconds


def two_busy_cores(series, spec: bptt.TrainingSpec) -> float:
    """How much slower a one-thread fit runs while another runs beside it: the mean wall time
    of two at once, each in a forked process, over one alone. Each process fits once first (its
    buffers and caches warm, as the fit alone has them), then the two start together."""
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training, threads=1))
    alone = timed_fit(series, spec, 1)[0]
    fork = multiprocessing.get_context("fork")
    start, results = fork.Barrier(2), fork.Queue()

    def side_by_side() -> None:
        timed_fit(series, spec, 1)
        start.wait()
        results.put(timed_fit(series, spec, 1)[0])

    children = [fork.Process(target=side_by_side) for _ in range(2)]
    for child in children:
        child.start()
    seconds = [results.get(timeout=600) for _ in children]
    for child in children:
        child.join()
    return float(np.mean(seconds)) / alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="fits per row (best kept)")
    args = parser.parse_args()
    groups = {"store_sales (2 series)": store_sales(), "synthetic (8 series)": synthetic()}
    bptt.warm_kernels()
    print(f"{os.cpu_count()} CPUs\n")
    print("| series | members | 1 thread s | 2 threads s | ratio | floor | two busy cores "
          "| floor here | cores used (2 threads) | same weights | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, series in groups.items():
        spec = bptt.TrainingSpec(horizon=12, season_length=12)
        load = os.getloadavg()[0]
        best: dict[int, tuple[float, float]] = {}
        weights, floors, slowdowns = {}, [], []
        for _ in range(args.repeat):
            for threads in (1, 2):  # alternated, so a change of load touches both alike
                seconds, cpu, weights[threads], members = timed_fit(series, spec, threads)
                best[threads] = min(best.get(threads, (seconds, cpu)), (seconds, cpu))
                if threads == 1:
                    floors.append(schedule_floor(seconds, members, 2))
            slowdowns.append(two_busy_cores(series, spec))
        load = (load + os.getloadavg()[0]) / 2
        same = np.array_equal(weights[1], weights[2])
        (one, _), (two, two_cpu) = best[1], best[2]
        floor, slowdown = min(floors), min(slowdowns)
        print(f"| {name} | {spec.training.ensemble} | {one:.2f} | {two:.2f} | {two / one:.2f} | "
              f"{floor:.2f} | {slowdown:.2f}x | {floor * slowdown:.2f} | {two_cpu / two:.2f} | "
              f"{'yes' if same else 'NO'} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    main()
