"""Training-step speed of the bptt engine against PyTorch on the CPU, side by side, and against
the machine's limit.

One training step is forward + BPTT + global-norm clipping + Adam, float32, batch 64, one layer,
a 12-step head, MSE, taken as fit's members take it (on one thread, with the head on the last
step and full BPTT, the prepared step of bptt/prepared.py; otherwise train_step). Each row
runs both engines on the same weights and data at the same thread count, alternating
repetitions so that both see the same machine load, and reports medians.

Efficiency. "GFLOP" counts the multiply-adds (×2) of every matrix product one step needs:
input projection, recurrent forward, backward dgates·W_hh, dW_hh, dW_ih, and the head's three
products; the recurrent products of a window's first step from the all-zero state are not
counted, since they multiply zeros (the engine skips them). "bptt GFLOP/s" is that over the
step's time. The same run measures, at the same thread count, before the table and again
after it (the higher rate counts, each the best of its repetitions):
- the float32 GEMM peak: the faster of numpy's BLAS (OpenBLAS, which runs its Haswell AVX2
  kernels on this AVX-512 machine) and the engine's own micro-kernel blocked for a large
  product (_gemm.blocked_matmul), both on 1024 x 1024 x 1024; "of peak" divides by it;
- the FMA limit: the engine's micro-kernel multiplying operands that stay in registers, i.e.
  what the cores' fused multiply-add units do at most; "of FMA" divides by it.

The "GEMM floor" is the time the engine's GEMMs of the step take alone, at the step's shapes,
back to back on preallocated arrays (the batch split over the threads as the engine splits it):
no gate math, head, clipping or optimizer. Where it is above the time a target allows ("torch
ms / target"), that target is out of reach for any implementation doing those products at
that speed.

    python benchmarks/kernels.py                 # the full table (several minutes)
    python benchmarks/kernels.py --quick         # a smoke run
    python benchmarks/kernels.py --threads 1 --clock cpu   # 1 thread, timed by CPU time

Needs the bench extra (torch). Numbers depend on the machine: rerun it rather than trust a copy.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import njit
from threadpoolctl import threadpool_limits

from bptt import NetworkSpec, default_compile_processes, init_parameters, make_loss
from bptt.cells._gemm import (
    MR,
    NV,
    VL,
    address,
    blocked_matmul,
    matmul,
    matmul_packed,
    pack,
    packed_shape,
    tile,
)
from bptt.clipping import ClipSpec
from bptt.optimizers import make_optimizer
from bptt.parallel import chunk_bounds, single_threaded_blas
from bptt.prepared import prepare
from bptt.training_step import train_step

BATCH, STEPS, HORIZON, LR, MAX_NORM = 64, 48, 12, 1e-3, 1.0
# What the timings read: wall-clock time, or with --clock cpu the process's CPU time, which on a
# machine shared with other work is the step's own time at 1 thread (all threads' sum at more).
CLOCK = time.perf_counter


class EngineStep:
    """One bptt training step on fixed data, as fit's members take it: prepared once
    (bptt.prepared) where that applies (one thread, the head on the last step, full
    BPTT), else train_step."""

    def __init__(self, spec, params, x, y, threads, first_output, truncate):
        self.spec, self.params, self.x, self.y = spec, params.copy(), x, y
        self.adam = make_optimizer("adam")
        self.state = self.adam.init_state(self.params)
        self.kw = dict(loss=make_loss("mse"), optimizer=self.adam, optimizer_state=self.state,
                       lr=LR, clip=ClipSpec(max_norm=MAX_NORM), truncate=truncate,
                       first_output=first_output, threads=threads)
        self.prepared = None if first_output is not None else prepare(
            spec, self.params, loss=self.kw["loss"], optimizer=self.adam, clip=self.kw["clip"],
            truncate=truncate, threads=threads)

    def __call__(self):
        if self.prepared is not None:
            self.prepared(self.x, self.y, optimizer_state=self.state, lr=LR)
        else:
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


def windows(steps: int, truncate) -> list[tuple[int, bool]]:
    """(length, starts from the zero state) of each window the step backpropagates through
    (truncation with k1 = k2, the only kind the table runs)."""
    if truncate is not None and truncate[0] != truncate[1]:
        raise ValueError("windows() counts truncation with k1 = k2 only")
    k = steps if truncate is None else truncate[1]
    return [(min(k, steps - start), start == 0) for start in range(0, steps, k)]


def step_flops(spec, steps, batch, outputs, truncate=None) -> float:
    """Multiply-adds ×2 of every GEMM in one forward + backward (elementwise work ignored).

    Per layer and step: input projection and dW_ih (2·B·G·I each), dx above the first layer,
    and, except at a window's first step from the zero state, the recurrent projection,
    dL/dh_{t-1} = dgates·W_hh and dW_hh (2·B·G·H each). The head: its output, its weight
    gradient and dL/dh (2·B·H·O each per output step)."""
    g, h = spec.gates * spec.hidden_size, spec.hidden_size
    flops = 0.0
    for length, zero_start in windows(steps, truncate):
        recurrent = length - 1 if zero_start else length
        for layer in range(spec.num_layers):
            i = spec.input_size if layer == 0 else h
            flops += 2 * batch * g * i * length * (3 if layer else 2)  # projection, dW_ih, dx
            flops += 2 * batch * g * h * recurrent * 3  # forward, dh, dW_hh
    return flops + 6 * outputs * batch * h * spec.output_size


@njit(cache=True, nogil=True)
def _step_gemms(h, w_p, d, w_bp, dh, dw, steps, zero_start):
    """The recurrent GEMMs of one window, as the kernels do them (weights packed)."""
    first = 1 if zero_start else 0
    for _ in range(first, steps):
        matmul_packed(h, w_p, d, False, False)  # forward: (B, H) @ W_hh^T into the gates
    for _ in range(first, steps):
        matmul_packed(d, w_bp, dh, False, False)  # dL/dh_{t-1} = dgates @ W_hh
        matmul(d, h, dw, True, True)  # dW_hh += dgates^T @ h_{t-1}


def gemm_floor(spec, steps: int, batch: int, threads: int, truncate, reps: int, rng) -> float:
    """Median seconds of the engine's recurrent GEMMs of one step alone (input_size 1: its
    input projection is folded into the gate loops), the batch split over the threads."""
    h, g = spec.hidden_size, spec.gates * spec.hidden_size
    w_hh = rng.random((g, h), dtype=np.float32)
    w_p = np.empty(packed_shape(np.float32(0), h, g), np.float32)
    w_bp = np.empty(packed_shape(np.float32(0), g, h), np.float32)
    pack(w_hh, w_p, True)
    pack(w_hh, w_bp, False)
    parts = []
    for lo, hi in chunk_bounds(batch, threads):
        rows = hi - lo
        parts.append((rng.random((rows, h), dtype=np.float32),
                      np.zeros((rows, g + 16), np.float32)[:, :g],
                      np.zeros((rows, h), np.float32), np.zeros((g, h), np.float32)))
    pool = ThreadPoolExecutor(len(parts))

    def part(arrays) -> None:
        state, dgates, dh, dw = arrays
        for _ in range(spec.num_layers):
            for length, zero_start in windows(steps, truncate):
                _step_gemms(state, w_p, dgates, w_bp, dh, dw, length, zero_start)

    def step() -> None:
        list(pool.map(part, parts))

    try:
        return median_seconds(step, reps)
    finally:
        pool.shutdown()


def best_seconds(fn, reps: int) -> float:
    """Fewest seconds of `reps` calls of fn, after one untimed call: for peak rates, which the
    machine reaches when nothing else holds the core and its clock is at its highest."""
    fn()
    times = []
    for _ in range(reps):
        t = CLOCK()
        fn()
        times.append(CLOCK() - t)
    return min(times)


def median_seconds(fn, reps: int) -> float:
    """Median seconds of `reps` calls of fn, after one untimed call."""
    fn()
    times = []
    for _ in range(reps):
        t = CLOCK()
        fn()
        times.append(CLOCK() - t)
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
                t = CLOCK()
                fn()
                times.append(CLOCK() - t)
    return statistics.median(ours), statistics.median(theirs)


def gemm_gflops(threads: int, n: int = 1024, reps: int = 10) -> float:
    """float32 GEMM rate of numpy's BLAS at this thread count (best of reps)."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    with threadpool_limits(threads, user_api="blas"):
        seconds = best_seconds(lambda: a @ a, reps)
    return 2 * n**3 / seconds / 1e9


def engine_gemm_gflops(threads: int, n: int = 1024, reps: int = 10) -> float:
    """float32 GEMM rate of the engine's micro-kernel on a large product (blocked_matmul), rows
    of C split over the threads."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    bounds = [(round(n * k / threads), round(n * (k + 1) / threads)) for k in range(threads)]
    scratch = [np.empty(packed_shape(np.float32(0), 256, 256), np.float32) for _ in bounds]
    with ThreadPoolExecutor(threads) as pool:
        def run() -> None:
            list(pool.map(lambda k: blocked_matmul(a[bounds[k][0]:bounds[k][1]], b,
                                                   c[bounds[k][0]:bounds[k][1]], scratch[k]),
                          range(threads)))
        seconds = best_seconds(run, reps)
    assert np.allclose(c, a @ b, rtol=1e-3)
    return 2 * n**3 / seconds / 1e9


@njit(cache=True, nogil=True)
def _fma_spin(a, b, c, k, reps) -> None:
    """The micro-kernel on operands that never leave registers and L1 (strides 0)."""
    for _ in range(reps):
        tile(MR, NV, np.float32(0), k, address(a), 1, 0, address(b), 0, address(c), NV * VL, MR,
             NV * VL, False)


def fma_gflops(threads: int, k: int = 10_000, reps: int = 20, spins: int = 200) -> float:
    """float32 multiply-add rate of the micro-kernel with everything in registers: the FMA
    units' limit, as the engine's code can reach it, on `threads` threads at once. Each call
    spins for milliseconds (`spins` tiles of depth k): with a quarter of a millisecond, as
    before, handing the work to the threads took as long as the work, and 2 threads measured
    no faster than one."""
    buffers = [(np.ones(64, np.float32), np.ones(64, np.float32),
                np.zeros((MR, NV * VL), np.float32)) for _ in range(threads)]
    flops = 2 * MR * NV * VL * k * spins * threads
    with ThreadPoolExecutor(threads) as pool:
        def run() -> None:
            list(pool.map(lambda abc: _fma_spin(*abc, k, spins), buffers))
        seconds = best_seconds(run, reps)
    return flops / seconds / 1e9


def compile_times() -> tuple[float, float]:
    """Seconds to compile every kernel (float32 and float64) from nothing, in one process per
    core as bptt up does, then to load them from Numba's cache (benchmarks/cold_start.py breaks
    the compile down and compares it with another revision)."""
    code = ("import numpy as np, bptt; print(bptt.warm_kernels((np.float32, np.float64), "
            "processes=bptt.default_compile_processes()))")
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
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: time by the process's CPU time (1 thread only), for a "
                             "machine shared with other work")
    args = parser.parse_args()
    if args.quick:
        args.threads, args.hidden, args.reps, args.long_hidden = [1], [8], 3, 8
    if args.clock == "cpu":
        if args.threads != [1]:
            parser.error("--clock cpu times one thread only (--threads 1)")
        global CLOCK
        CLOCK = time.process_time
    rng = np.random.default_rng(0)

    cases = [(cell, h, STEPS, None, None) for cell in args.cells for h in args.hidden]
    # The long case: 512 steps, a forecast at every step, truncated BPTT with k1 = k2 = 64.
    cases += [(cell, args.long_hidden, 512, 0, (64, 64)) for cell in args.cells]

    print(f"torch {torch.__version__}, numpy {np.__version__}, batch {BATCH}, "
          f"horizon {HORIZON}, float32, median of {args.reps} ({args.clock} clock); "
          f"load average before: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    # The peaks are measured before the table and again after it, and the higher rates count:
    # the cores' clock, and so every rate, varies with what else the machine runs.
    rows, peaks = {}, {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        peaks[threads] = measure_peaks(threads)
        with threadpool_limits(threads):  # numpy's and SciPy's BLAS too: the same thread budget
            rows[threads] = [run_case(case, threads, args.reps, rng) for case in cases]
        after = measure_peaks(threads)
        peaks[threads] = tuple(max(x, y) for x, y in zip(peaks[threads], after, strict=True))
    for threads, (numpy_gemm, engine_gemm, fma) in peaks.items():
        print(f"{threads} thread(s): float32 GEMM 1024^3 numpy {numpy_gemm:.0f} GFLOP/s, engine "
              f"{engine_gemm:.0f} GFLOP/s; FMA limit {fma:.0f} GFLOP/s (best before or after)")
    print()
    print("| threads | cell | hidden | steps | GFLOP | bptt ms | torch ms | speed-up | target | "
          "torch ms / target | GEMM floor ms | bptt GFLOP/s | of peak | of FMA |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for threads, cells in rows.items():
        numpy_gemm, engine_gemm, fma = peaks[threads]
        for cells_of_row, rate in cells:
            print("| " + " | ".join(cells_of_row) + f" | {rate / max(numpy_gemm, engine_gemm):.0%} "
                  f"| {rate / fma:.0%} |")
    print()
    print("peak: the faster float32 GEMM of the run at that thread count; FMA: the multiply-add "
          f"units' limit (see the docstring); load average after: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if not args.no_compile:
        cold, warm = compile_times()
        print(f"kernels: cold compile {cold:.1f} s, load from cache {warm:.2f} s "
              f"(both dtypes, all cells; {default_compile_processes()} compiling processes)")


def measure_peaks(threads: int) -> tuple[float, float, float]:
    """(numpy's GEMM, the engine's GEMM, the FMA limit) in GFLOP/s at this thread count."""
    return gemm_gflops(threads), engine_gemm_gflops(threads), fma_gflops(threads)


def run_case(case, threads: int, reps: int, rng) -> tuple[list[str], float]:
    """Time one table row: (its cells up to the rate, the rate in GFLOP/s)."""
    cell, hidden, steps, first_output, truncate = case
    spec = NetworkSpec(cell=cell, hidden_size=hidden, output_size=HORIZON)
    params = init_parameters(spec, 0)
    outputs = 1 if first_output is None else steps - first_output
    x = rng.normal(size=(steps, BATCH, 1)).astype(np.float32)
    y = rng.normal(size=(outputs, BATCH, HORIZON)).astype(np.float32)
    engine = EngineStep(spec, params, x, y, threads, first_output, truncate)
    reference = TorchStep(spec, params, x, y,
                          steps - 1 if first_output is None else first_output, truncate)
    # BLAS held to one thread around the whole timing, as bptt.fit holds it around a whole fit:
    # entered and lifted around every step, the hand-off to parallel.py's BLAS-control thread
    # and threadpoolctl cost about 0.2 ms a step, which fit never pays (torch's own threads are
    # OpenMP's, which this does not touch).
    with single_threaded_blas():
        ours, theirs = time_pair(engine, reference, reps)
    floor = gemm_floor(spec, steps, BATCH, threads, truncate, reps, rng)
    flops = step_flops(spec, steps, BATCH, outputs, truncate)
    rate = flops / ours / 1e9
    label = f"{steps} (k1=k2={truncate[1]})" if truncate else str(steps)
    target = target_speedup(cell, hidden)
    print(f"  {threads} thread(s) {cell} {hidden} {label}: {ours * 1e3:.2f} ms, torch "
          f"{theirs * 1e3:.2f} ms", file=sys.stderr, flush=True)
    return [str(threads), cell, str(hidden), label, f"{flops / 1e9:.3f}", f"{ours * 1e3:.2f}",
            f"{theirs * 1e3:.2f}", f"{theirs / ours:.2f}x", f"{target:g}x",
            f"{theirs / target * 1e3:.2f}", f"{floor * 1e3:.2f}", f"{rate:.0f}"], rate


def target_speedup(cell: str, hidden: int) -> float:
    """The issues' speed-up target against PyTorch: the LSTM 1.3x at every size (issue 21,
    against oneDNN's fused LSTM); RNN and GRU 3x up to 64 units, 1.5x at 128, 1x above."""
    if cell == "lstm":
        return 1.3
    return 3.0 if hidden <= 64 else 1.5 if hidden <= 128 else 1.0


if __name__ == "__main__":
    main()
