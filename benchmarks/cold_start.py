"""Cold start: how long the kernels take to compile on a fresh machine, before and after.

Every figure is one fresh Python process with an empty NUMBA_CACHE_DIR (a cold compile):

- "a default job's kernels": the first small default fit (LSTM, float32, one member, one epoch)
  less the same fit run again in that process: what the kernels a default job needs cost when
  compiled on their own, whatever the version's warm-up does.
- "bptt up's warm-up": what `bptt up` compiles before any worker starts (main: every kernel in
  float32 and float64, one after another; now: float32, in `--processes` processes; bptt up
  starts one per idle core).
- "all kernels": every cell and the update in float32 and float64 (now: `--processes`).

Each row gives wall seconds and CPU seconds (children included); the load average is printed
beside them, since on a shared machine the wall time follows the load. "before" runs the same
code on a copy of another revision (`--before main`, extracted with `git archive`).

    python benchmarks/cold_start.py [--before main] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent

# Run in the measured checkout's code: prints one JSON line of {name: seconds}.
CPU = """
import resource
def cpu():
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))
"""
DEFAULT_JOB = CPU + """
import json, math, time
import bptt
series = [[20 + 10 * math.sin(i / 3) for i in range(80)]]
spec = bptt.TrainingSpec.from_dict({"horizon": 4, "training": {"epochs": 1, "ensemble": 1}})
runs = []
for _ in range(2):
    began, used = time.perf_counter(), cpu()
    bptt.fit(series, spec=spec)
    runs.append((time.perf_counter() - began, cpu() - used))
print(json.dumps({"seconds": runs[0][0] - runs[1][0], "cpu": runs[0][1] - runs[1][1]}))
"""
WARM_UP = CPU + """
import json, time, inspect
import numpy as np
import bptt
now = "processes" in inspect.signature(bptt.warm_kernels).parameters
dtypes = {dtypes}
options = dict(processes={processes}) if now and {parallel} else dict()
if dtypes is not None:
    options["dtypes"] = tuple(np.dtype(d).type for d in dtypes)
began, used = time.perf_counter(), cpu()
bptt.warm_kernels(**options)
print(json.dumps({{"seconds": time.perf_counter() - began, "cpu": cpu() - used}}))
"""


def load() -> float:
    """The one-minute load average."""
    return os.getloadavg()[0]


def measure(code: str, source: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) that the code reports,
    run with an empty kernel cache and `source` first on the import path."""
    with tempfile.TemporaryDirectory(prefix="bptt-cold-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(source)}
        env.pop("BPTT_REFERENCE_GEMM", None)
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=source, check=True,
                             capture_output=True, text=True)
    said = json.loads(out.stdout.strip().splitlines()[-1])
    return said["seconds"], said["cpu"]


def extract(revision: str, into: Path) -> Path:
    """A copy of the checkout's files at `revision` (git archive), to import from."""
    archive = subprocess.run(["git", "-C", str(CHECKOUT), "archive", revision], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="revision to compare with ('' for none)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each row (best kept)")
    parser.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)),
                        help="compiling processes now (bptt up: one per idle core)")
    args = parser.parse_args()
    processes = args.processes
    rows = [
        ("a default job's kernels (first fit, alone)", DEFAULT_JOB, DEFAULT_JOB),
        ("bptt up's warm-up (before a worker starts)",
         WARM_UP.format(dtypes=None, parallel=False, processes=1),
         WARM_UP.format(dtypes=None, parallel=True, processes=processes)),
        ("all kernels (3 cells and update, float32 and float64)",
         WARM_UP.format(dtypes=None, parallel=False, processes=1),
         WARM_UP.format(dtypes=["float32", "float64"], parallel=True, processes=processes)),
    ]
    with tempfile.TemporaryDirectory(prefix="bptt-before-") as scratch:
        sources = [("now", CHECKOUT)]
        if args.before:
            sources.insert(0, (args.before, extract(args.before, Path(scratch))))
        print(f"{os.cpu_count()} CPUs; compiling processes now: {processes}\n")
        measured: dict[tuple[str, str], tuple[float, float, float]] = {}
        print("| kernels | version | wall s | CPU s | load (1 min) |")
        print("|---|---|---|---|---|")
        for name, before_code, now_code in rows:
            for label, source in sources:
                code = now_code if label == "now" else before_code
                if (label, code) not in measured:  # main's warm-up is both rows' "before"
                    runs = []
                    for _ in range(args.repeat):
                        started_load = load()
                        wall, cpu = measure(code, source)
                        runs.append((wall, cpu, (started_load + load()) / 2))
                    measured[label, code] = min(runs)
                wall, cpu, average = measured[label, code]
                print(f"| {name} | {label} | {wall:.1f} | {cpu:.1f} | {average:.1f} |",
                      flush=True)
    print(f"\nfinished {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
