"""Compile (or load from Numba's on-disk cache) the kernels before the first real job.

The kernels come in groups: one cell's forward and backward, or the update's (the step's head
and loss, clipping, the optimizers), for one dtype. Compiling a group from nothing takes seconds
(a GRU's about 8 s of CPU, the update's about 3 s); loading it from the cache a fraction of that.
Training runs in float32, so a service needs the float32 groups only; float64 is for gradient
checks, compiled on first use unless asked for here.

With `processes` > 1 the groups are compiled by that many child processes at once (Numba
compiles one function at a time per process, under a lock), each taking
the next group from a queue as it finishes one, into the shared cache; this process then loads
them all from there. The queue starts with what a default job needs (its cell and the update,
float32), so those are ready first, then the remaining groups, largest first.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .backprop import head_and_loss, loss_and_gradients
from .cells import CELLS
from .clipping import global_norm
from .forward import predict
from .losses import MSE
from .network import NetworkSpec, init_parameters
from .optimizers import make_optimizer
from .spec import ModelConfig

OPTIMIZERS = ("sgd", "rmsprop", "adam")  # one kernel each; the others are variants of these
DEFAULT_CELL = ModelConfig().cell
UPDATE = "update"  # the group of the head and loss, clipping and optimizer kernels
# Compile seconds, relative: the order in which the groups after a default job's are queued
# (longest first, so that no process is left with a long group at the end).
COST = {"gru": 8, "lstm": 6, "rnn": 4, UPDATE: 3}


@dataclass(frozen=True)
class KernelGroup:
    """Kernels compiled together: one cell's forward and backward, or the update's."""

    kind: str  # a cell name, or UPDATE
    dtype: str  # "float32" or "float64"

    def __str__(self) -> str:
        return f"{self.kind}:{self.dtype}"

    @classmethod
    def parse(cls, text: str) -> "KernelGroup":
        text = text.strip()
        kind, dtype = text.split(":")
        if kind not in (*CELLS, UPDATE) or dtype not in ("float32", "float64"):
            raise ValueError(f"unknown kernel group {text!r}")
        return cls(kind, dtype)


def kernel_groups(dtypes=(np.float32,)) -> list[KernelGroup]:
    """Every group for these dtypes, in the order to compile them: a default job's first."""
    names = [np.dtype(d).name for d in dtypes]
    first = [KernelGroup(kind, "float32") for kind in (DEFAULT_CELL, UPDATE)
             if "float32" in names]
    rest = sorted((KernelGroup(kind, name) for name in names for kind in (*CELLS, UPDATE)
                   if KernelGroup(kind, name) not in first),
                  key=lambda g: (-COST.get(g.kind, 0), g.dtype))
    return first + rest


def default_compile_processes() -> int:
    """Compiling processes worth starting: one per idle core this process may use (its cores
    less the 1-minute load average), at least 1 and at most 4. On cores that other work keeps
    busy a second process only adds its own start-up and makes both slower: on 2 cores at load
    10, compiling everything in 2 processes took 50 s of CPU and 208 s, in one 41 s and 114 s."""
    cores = len(os.sched_getaffinity(0))
    return max(1, min(4, cores, round(cores - os.getloadavg()[0])))


def warm_kernels(dtypes=(np.float32,), processes: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> float:
    """Compile or load every kernel of these dtypes, so a job's first step does not; seconds.

    Kernels are compiled per argument types, so each dtype is one compilation (or cache load)
    of each kernel. `processes` > 1 compiles the groups in that many child processes at once
    (see the module docstring), then loads them here. `progress(done, total)` is called before
    the first group and after each one (counted as the children finish them), so that a
    caller can say how far a cold compilation has got.
    """
    start = time.perf_counter()
    groups = kernel_groups(dtypes)
    if progress is not None:
        progress(0, len(groups))
    if processes > 1 and len(groups) > 1:
        compile_in_processes(groups, processes, progress)
        progress = None  # the loads below are counted already
    for done, group in enumerate(groups, start=1):
        warm_group(group)
        if progress is not None:
            progress(done, len(groups))
    return time.perf_counter() - start


def compile_in_processes(groups: list[KernelGroup], processes: int,
                         progress: Callable[[int, int], None] | None = None) -> None:
    """Compile `groups` in up to `processes` children (compile_from_stdin), each given the
    next group on its stdin once it has echoed the last on its stdout; raise RuntimeError
    if one fails. The children share this process's environment, hence its kernel cache."""
    queue = list(groups)
    lock = threading.Lock()
    done = [0]
    failures: list[str] = []

    def next_group() -> KernelGroup | None:
        with lock:
            return queue.pop(0) if queue else None

    def serve(child: subprocess.Popen) -> None:
        group = next_group()
        while group is not None:
            child.stdin.write(f"{group}\n")
            child.stdin.flush()
            if child.stdout.readline().strip() != str(group):
                break
            with lock:
                done[0] += 1
                if progress is not None:
                    progress(done[0], len(groups))
            group = next_group()
        child.stdin.close()
        if child.wait() != 0 or group is not None:
            with lock:
                child.stderr.seek(0)
                said = child.stderr.read().decode(errors="replace").strip()[-2000:]
                failures.append(f"compiling {group or 'the kernels'} failed: {said}")

    children = []
    for _ in range(min(processes, len(groups))):
        # stderr to a file, not a pipe: a child that says much there must not block on it
        errors = tempfile.TemporaryFile()
        children.append(subprocess.Popen(CHILD_COMMAND, text=True, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=errors))
        children[-1].stderr = errors
    servers = [threading.Thread(target=serve, args=(child,), daemon=True) for child in children]
    for server in servers:
        server.start()
    for server in servers:
        server.join()
    for child in children:
        child.stderr.close()
    if failures:
        raise RuntimeError("; ".join(failures))


def warm_group(group: KernelGroup) -> None:
    """Run the group's kernels once on a tiny batch (compiling them, or loading them)."""
    dtype = np.dtype(group.dtype).type
    if group.kind == UPDATE:
        _update_step(init_parameters(NetworkSpec(cell="rnn", input_size=1, hidden_size=2), 0,
                                     dtype))
        return
    # Two layers make the backward kernels' input-gradient path run too.
    spec = NetworkSpec(cell=group.kind, input_size=1, hidden_size=2, num_layers=2)
    params = init_parameters(spec, 0, dtype)
    x = np.random.default_rng(0).normal(size=(3, 2, 1)).astype(dtype)
    loss_and_gradients(spec, params, x, x[-1:], MSE())
    predict(spec, params, x)


def _update_step(params: np.ndarray) -> None:
    # The head and loss kernel of every cell's step, here rather than with a cell: compiling
    # processes then build it once, while the first takes the default cell; and the losses'
    # kernel as evaluation calls it (the step's compiles it only inside the head's).
    zeros = np.zeros((2, 2), params.dtype)
    head_and_loss(zeros, None, zeros, zeros[0], zeros.copy(), zeros[0].copy(), zeros,
                  np.ones((2, 2), bool), 4, MSE(), zeros.copy())
    MSE().sum_and_grad(zeros, zeros, np.ones((2, 2), bool))
    global_norm(params)
    for name in OPTIMIZERS:
        optimizer = make_optimizer(name)
        optimizer.step(params, params.copy(), optimizer.init_state(params), lr=0.0)


def compile_from_stdin() -> None:
    """compile_in_processes' child: warm each group named on stdin, echo its name when done."""
    for line in sys.stdin:
        group = KernelGroup.parse(line)
        warm_group(group)
        print(group, flush=True)


CHILD_COMMAND = [sys.executable, "-c", "from bptt.warmup import compile_from_stdin as c; c()"]
