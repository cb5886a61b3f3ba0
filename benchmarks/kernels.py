"""Training-step speed of the bptt engine against PyTorch on the CPU, side by side.

One training step is forward + BPTT + global-norm clipping + Adam, float32, batch 64, one layer,
a 12-step head, MSE. Each row runs both engines on the same weights and data at the same thread
count, alternating repetitions so that both see the same machine load, and reports medians.
It also prints the engine's achieved GFLOP/s beside a float32 GEMM measured in the same run, and
the kernels' cold compile time and cache load time.

The "GEMM floor" column is the time numpy's BLAS takes for the step's recurrent GEMMs alone,
back to back on preallocated arrays (forward h·W_hhᵀ per step, backward dgates·W_hh per step,
and dW_hh as one GEMM over all steps): no gate math, no head, no optimizer. No implementation
that calls this BLAS for them can take less; where the floor is above PyTorch's time divided by
the target speed-up, that target is out of reach on this machine with this BLAS.

    python benchmarks/kernels.py                 # the full table (several minutes)
    python benchmarks/kernels.py --quick         # a smoke run

Needs the bench extra (torch). Numbers depend on the machine: rerun it rather than trust a copy.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from bptt import NetworkSpec, init_parameters, make_loss
from bptt.clipping import ClipSpec
from bptt.optimizers import make_optimizer
from bptt.training_step import train_step

BATCH, STEPS, HORIZON, LR, MAX_NORM = 64, 48, 12, 1e-3, 1.0


class EngineStep:
    """One bptt training step on fixed data."""

    def __init__(self, spec, params, x, y, threads, first_output, truncate):
        self.spec, self.params, self.x, self.y = spec, params.copy(), x, y
        self.adam = make_optimizer("adam")
        self.state = self.adam.init_state(self.params)
        self.kw = dict(loss=make_loss("mse"), optimizer=self.adam, optimizer_state=self.state,
                       lr=LR, clip=ClipSpec(max_norm=MAX_NORM), truncate=truncate,
                       first_output=first_output, threads=threads)

    def __call__(self):
        train_step(self.spec, self.params, self.x, self.y, **self.kw)


class TorchStep:
    """The same step in PyTorch; truncation detaches the state every k steps (k1 = k2 = k)."""

    def __init__(self, spec, params, x, y, first_output, truncate):
        kinds = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
        self.rnn = kinds[spec.cell](spec.input_size, spec.hidden_size, spec.num_layers)
        self.head = torch.nn.Linear(spec.hidden_size, spec.output_size)
        tensors = {k: torch.tensor(v) for k, v in spec.layout.views(params).items()}
        self.rnn.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("head.")})
        self.head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
        self.params = list(self.rnn.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.Adam(self.params, lr=LR)
        self.x, self.y = torch.tensor(x), torch.tensor(y)
        self.first_output, self.k = first_output, (truncate or (len(x),))[0]

    def __call__(self):
        self.opt.zero_grad()
        state, steps = None, len(self.x)
        count = self.y.numel()
        for start in range(0, steps, self.k):
            out, state = self.rnn(self.x[start : start + self.k], state)
            lo = max(start, self.first_output)
            if lo < start + len(out):
                pred = self.head(out[lo - start :])
                target = self.y[lo - self.first_output : start + len(out) - self.first_output]
                (((pred - target) ** 2).sum() / count).backward()
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        torch.nn.utils.clip_grad_norm_(self.params, MAX_NORM)
        self.opt.step()


def step_flops(spec, steps, batch, outputs) -> float:
    """Multiply-adds ×2 of the GEMMs in one forward + backward (elementwise work ignored)."""
    gh, h = spec.gates * spec.hidden_size, spec.hidden_size
    flops = 0.0
    for layer in range(spec.num_layers):
        i = spec.input_size if layer == 0 else h
        flops += 2 * steps * batch * gh * (i + h)  # forward: input and recurrent projections
        flops += 2 * steps * batch * gh * (2 * h + i + (i if layer else 0))  # dh, dW_hh, dW_ih, dx
    return flops + 6 * outputs * batch * h * spec.output_size  # head forward + backward


def gemm_floor(spec, steps: int, batch: int, reps: int, rng) -> float:
    """Median seconds of the recurrent GEMMs of one forward + backward, in numpy's BLAS."""
    h, g = spec.hidden_size, spec.gates * spec.hidden_size
    state = rng.random((batch, h), dtype=np.float32)
    w_hh = rng.random((g, h), dtype=np.float32)
    dgates = rng.random((batch, g), dtype=np.float32)
    states = rng.random((steps * batch, h), dtype=np.float32)
    all_dgates = rng.random((steps * batch, g), dtype=np.float32)
    gates_out, dh_out, dw_out = (np.empty((batch, g), np.float32),
                                 np.empty((batch, h), np.float32), np.empty((g, h), np.float32))

    def step() -> None:
        for _ in range(spec.num_layers):
            for _ in range(steps):
                np.matmul(state, w_hh.T, out=gates_out)
            for _ in range(steps - 1):
                np.matmul(dgates, w_hh, out=dh_out)
            np.matmul(all_dgates.T, states, out=dw_out)

    return median_seconds(step, reps)


def median_seconds(fn, reps: int) -> float:
    """Median seconds of `reps` calls of fn, after one untimed call."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_pair(engine, reference, reps: int, block: int = 5) -> tuple[float, float]:
    """Median seconds of each callable, alternating blocks of `block` repetitions.

    Blocks (rather than strict alternation) keep one engine's idle threads, which spin for a
    while after their work, out of the other's timings; the first run of a block is discarded.
    """
    ours, theirs = [], []
    while len(ours) < reps:
        for fn, times in ((engine, ours), (reference, theirs)):
            fn()
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
    return statistics.median(ours), statistics.median(theirs)


def gemm_gflops(threads: int, n: int = 1024, reps: int = 10) -> float:
    """float32 GEMM rate of numpy's BLAS at this thread count (median of reps)."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    with threadpool_limits(threads, user_api="blas"):
        seconds = median_seconds(lambda: a @ a, reps)
    return 2 * n**3 / seconds / 1e9


def compile_times() -> tuple[float, float]:
    """Seconds to compile every kernel from nothing, then to load them from Numba's cache."""
    code = "import bptt; print(bptt.warm_kernels())"
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = [subprocess.run([sys.executable, "-c", code], env=env, check=True,
                               capture_output=True, text=True) for _ in range(2)]
    cold, warm = (float(r.stdout.split()[-1]) for r in runs)
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--long-hidden", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile timing")
    args = parser.parse_args()
    if args.quick:
        args.threads, args.hidden, args.reps, args.long_hidden = [1], [8], 3, 8
    rng = np.random.default_rng(0)

    cases = [(cell, h, STEPS, None, None) for cell in args.cells for h in args.hidden]
    # The long case: 512 steps, a forecast at every step, truncated BPTT with k1 = k2 = 64.
    cases += [(cell, args.long_hidden, 512, 0, (64, 64)) for cell in args.cells]

    print(f"torch {torch.__version__}, numpy {np.__version__}, batch {BATCH}, "
          f"horizon {HORIZON}, float32, median of {args.reps}")
    print()
    print("| threads | cell | hidden | steps | bptt ms | torch ms | speed-up | target | "
          "torch ms / target | GEMM floor ms | bptt GFLOP/s | of GEMM |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        gemm = gemm_gflops(threads)
        with threadpool_limits(threads):  # numpy's and SciPy's BLAS too: the same thread budget
            for case in cases:
                run_case(case, threads, gemm, args.reps, rng)
    if not args.no_compile:
        cold, warm = compile_times()
        print()
        print(f"kernels: cold compile {cold:.1f} s, load from cache {warm:.2f} s "
              f"(both dtypes, all cells)")


def run_case(case, threads: int, gemm: float, reps: int, rng) -> None:
    """Time one table row and print it."""
    cell, hidden, steps, first_output, truncate = case
    spec = NetworkSpec(cell=cell, hidden_size=hidden, output_size=HORIZON)
    params = init_parameters(spec, 0)
    outputs = 1 if first_output is None else steps - first_output
    x = rng.normal(size=(steps, BATCH, 1)).astype(np.float32)
    y = rng.normal(size=(outputs, BATCH, HORIZON)).astype(np.float32)
    engine = EngineStep(spec, params, x, y, threads, first_output, truncate)
    reference = TorchStep(spec, params, x, y,
                          steps - 1 if first_output is None else first_output, truncate)
    ours, theirs = time_pair(engine, reference, reps)
    floor = gemm_floor(spec, steps, BATCH, reps, rng)
    rate = step_flops(spec, steps, BATCH, outputs) / ours / 1e9
    label = f"{steps} (k1=k2={truncate[1]})" if truncate else str(steps)
    target = target_speedup(hidden)
    print(f"| {threads} | {cell} | {hidden} | {label} | {ours * 1e3:.2f} | "
          f"{theirs * 1e3:.2f} | {theirs / ours:.2f}x | {target:g}x | "
          f"{theirs / target * 1e3:.2f} | {floor * 1e3:.2f} | {rate:.0f} | "
          f"{rate / gemm:.0%} of {gemm:.0f} |", flush=True)


def target_speedup(hidden: int) -> float:
    """The issue's speed-up target against PyTorch at this hidden size."""
    return 3.0 if hidden <= 64 else 1.5 if hidden <= 128 else 1.0


if __name__ == "__main__":
    main()
