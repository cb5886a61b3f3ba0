"""The warm-up's plan (a default job's kernels first) and its compiling child processes."""

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
