"""Peak memory of one fit on a large synthetic problem: does it grow with the windows?

Makes `--series` monthly series of `--length` points (trend, yearly season, noise, a gap in
each), loads the kernels, then fits one ensemble member (horizon 6, every other choice the
default's) for `--steps` optimizer updates, and prints the process's peak RSS before and after
the fit, with the training windows the data holds and bptt.estimate_cost's memory estimate.
Peak RSS is the operating system's (ru_maxrss), so run one configuration per process.

On an engine without `training.max_steps` (an older checkout: PYTHONPATH=../main) the fit
trains full passes, and is cancelled after `--steps` updates instead: it stops before its
calibration, so its peak is if anything under what the whole fit would reach.

    python benchmarks/fit_memory.py                       # 5,000 series x 500 points
    PYTHONPATH=../main python benchmarks/fit_memory.py    # the same on another checkout
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time

import numpy as np

import bptt
from bptt.data import window_counts
from bptt.spec import TrainingConfig


def synthetic(count: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Monthly series with trend, a yearly season, noise and one gap each."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    out = {}
    for i in range(count):
        values = (50 + rng.normal(0, 0.05) * t + 5 * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6))
                  + rng.normal(0, 1, length))
        values[rng.integers(length)] = np.nan
        out[f"s{i}"] = values
    return out


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()

    series = synthetic(args.series, args.length)
    bptt.warm_kernels()
    spec = bptt.TrainingSpec(horizon=6, season_length=12)
    by_steps = "max_steps" in {f.name for f in dataclasses.fields(TrainingConfig)}
    training = {"ensemble": 1, **({"max_steps": args.steps} if by_steps else {"epochs": 1})}
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training, **training))
    lengths = [args.length] * args.series
    plan = bptt.resolve_spec(lengths, spec)
    train, val = window_counts(lengths, plan.window.input_size, 6, 0.1)
    estimate = bptt.estimate_cost(spec, lengths)
    updates = [0]

    def cancel() -> bool:  # asked before every update
        updates[0] += 1
        return not by_steps and updates[0] > args.steps

    before, began = peak_mib(), time.perf_counter()
    try:
        bptt.fit(series, spec=spec, callbacks=bptt.Callbacks(should_cancel=cancel))
        ended = "completed"
    except bptt.TrainingCancelled:
        ended = "cancelled"
    seconds = time.perf_counter() - began
    print(f"{args.series:,} series x {args.length} points, input window "
          f"{plan.window.input_size}: {train:,} training and {val:,} validation windows")
    print(f"budget: {'max_steps' if by_steps else 'epochs 1, cancelled after'} {args.steps}; "
          f"fit {ended} after {min(updates[0], args.steps)} updates in {seconds:.1f} s")
    print(f"peak RSS before the fit {before:.0f} MiB, after it {peak_mib():.0f} MiB "
          f"(the fit added {peak_mib() - before:.0f} MiB); estimate_cost's peak "
          f"{estimate.peak_bytes / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
