"""The warm-up's plan (a default job's kernels first) and its compiling child processes."""

import subprocess
import sys

import numpy as np
import pytest

import bptt
from bptt.warmup import KernelGroup, compile_in_processes, kernel_groups


def test_a_default_jobs_kernels_come_first_then_the_largest():
    groups = [str(g) for g in kernel_groups((np.float32, np.float64))]
    assert groups[:2] == ["lstm:float32", "update:float32"]  # TrainingSpec's cell, float32
    assert sorted(groups) == sorted(f"{kind}:{dtype}" for kind in ("rnn", "lstm", "gru", "update")
                                    for dtype in ("float32", "float64"))
    assert groups.index("gru:float32") < groups.index("rnn:float32")  # longest first
    assert [str(g) for g in kernel_groups()] == [
        "lstm:float32", "update:float32", "gru:float32", "rnn:float32"]  # training's dtype only


def test_children_compile_every_group_and_report_each():
    # The suite's kernel cache is warm by now, so the children only load: the protocol is what
    # is tested here (benchmarks/cold_start.py times a cold run).
    bptt.warm_kernels()
    seen = []
    compile_in_processes(kernel_groups(), 2, lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_failing_child_is_reported_with_its_error():
    said = "(?s)compiling lstm:float16 failed.*unknown kernel group .lstm:float16.$"
    with pytest.raises(RuntimeError, match=said):
        compile_in_processes([KernelGroup("lstm", "float16")], 2)


# Run in a fresh process, so that no other test has loaded a kernel before: what it prints are
# the kernels (and argument types) a fit and a forecast needed beyond what warm_kernels loaded.
AFTER_THE_WARM_UP = """
import sys
import numpy as np
from numba.core.registry import CPUDispatcher
import bptt, bptt.cells._gemm, bptt.cells._head, bptt.clipping, bptt.optimizers
from bptt.cells import CELLS

def signatures():
    modules = [*CELLS.values(), bptt.cells._gemm, bptt.cells._head, bptt.clipping,
               bptt.optimizers]
    return {f"{m.__name__}.{name}": set(kernel.signatures) for m in modules
            for name, kernel in vars(m).items() if isinstance(kernel, CPUDispatcher)}

bptt.warm_kernels()
before = signatures()
t = np.arange(60.0)
series = {"a": 10 + np.sin(t / 3), "b": 5 + np.cos(t / 4)}
spec = bptt.TrainingSpec.from_dict(
    {"horizon": 4, "model": {"cell": sys.argv[1]}, "training": {"ensemble": 2, "max_steps": 6}})
bptt.forecast(bptt.fit(series, spec=spec).model, series)
print(sorted(f"{name}{sorted(map(str, sigs - before[name]))}"
             for name, sigs in signatures().items() if sigs - before[name]))
"""


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_after_the_warm_up_a_fit_needs_no_other_kernel(cell):
    """What warm_kernels makes ready is all a float32 fit and forecast call (each cell's step,
    head and loss, evaluation, the update), so a worker's first job never waits for a kernel
    to compile."""
    done = subprocess.run([sys.executable, "-c", AFTER_THE_WARM_UP, cell], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
