"""How fast this machine runs the engine's kernels: the rates that turn a Cost into seconds.

A fit's time is modelled as three kinds of work (bptt.cost.Work): the GEMM FLOPs of the forward
and backward kernels, the gate elements their elementwise loops visit, and a fixed cost per
pass (the Python around one update or one forward chunk). None of the three alone predicts
time: a hidden size of 8 spends most of a step in the gate loops and the dispatch around them,
256 in its GEMMs. measure_kernel_speed times three training steps, each dominated by one kind,
and solves for the three rates.
"""

import time
from dataclasses import asdict, dataclass

import numpy as np

from .clipping import ClipSpec
from .cost import step_work
from .losses import MSE
from .network import NetworkSpec, init_parameters
from .optimizers import make_optimizer
from .training_step import train_step


@dataclass(frozen=True)
class KernelSpeed:
    """Measured rates of one worker class (one process, the engine's thread count)."""

    gflops: float  # GEMM work, 1e9 FLOPs per second
    gelements: float  # elementwise gate work, 1e9 elements per second
    pass_seconds: float  # the fixed cost of one pass (one update, one forward chunk)

    def seconds(self, work) -> float:
        """Seconds that `work` (a bptt.cost.Work) takes at these rates."""
        return (work.flops / (self.gflops * 1e9) + work.elements / (self.gelements * 1e9)
                + work.passes * self.pass_seconds)

    def to_dict(self) -> dict:
        """Plain JSON-ready numbers."""
        return asdict(self)


# What a service assumes before any of its workers has reported its own measurement: typical
# of measure_kernel_speed() on the 2-core CI machine, one thread, while other work shared it
# (7 runs: 26-47 GFLOP/s, 0.08-0.49 G elements/s, 70-90 us a pass; the gate loops suffer most
# from a busy neighbour).
DEFAULT_KERNEL_SPEED = KernelSpeed(gflops=40.0, gelements=0.3, pass_seconds=80e-6)

# The three calibration steps (cell, hidden, steps, batch): dispatch-bound, gate-loop-bound and
# GEMM-bound. Each takes a few milliseconds, so the measurement adds well under a second to a
# worker's start.
_STEPS = (("lstm", 2, 3, 2), ("lstm", 4, 200, 64), ("lstm", 128, 48, 32))


def measure_kernel_speed(seconds_per_step: float = 0.1, threads: int = 1) -> KernelSpeed:
    """Time one training step (forward, BPTT, clipping, Adam; float32) of each calibration
    shape for about `seconds_per_step` each, and solve for the rates that reproduce the three
    medians. Run it after warm_kernels (a compilation inside the timing would swamp it)."""
    works, times = [], []
    for cell, hidden, steps, batch in _STEPS:
        network = NetworkSpec(cell=cell, hidden_size=hidden, output_size=12)
        works.append(step_work(network, steps, batch))
        times.append(_median_step_seconds(network, steps, batch, seconds_per_step, threads))
    counts = np.array([[w.passes, w.elements, w.flops] for w in works])
    per_pass, per_element, per_flop = np.linalg.solve(counts, np.array(times))
    # Noise can push a small coefficient below zero; floor each at a tenth of the default's.
    default = DEFAULT_KERNEL_SPEED
    return KernelSpeed(
        gflops=float(1e-9 / max(per_flop, 1e-9 / (10 * default.gflops))),
        gelements=float(1e-9 / max(per_element, 1e-9 / (10 * default.gelements))),
        pass_seconds=float(max(per_pass, default.pass_seconds / 10)),
    )


def _median_step_seconds(network: NetworkSpec, steps: int, batch: int, budget: float,
                         threads: int) -> float:
    """Median seconds of one training step on random data, over about `budget` seconds."""
    rng = np.random.default_rng(0)
    params = init_parameters(network, 0)
    x = rng.normal(size=(steps, batch, 1)).astype(np.float32)  # (T, B, 1)
    y = rng.normal(size=(1, batch, network.output_size)).astype(np.float32)  # (1, B, O)
    adam = make_optimizer("adam")
    state = adam.init_state(params)

    def step() -> None:
        train_step(network, params, x, y, loss=MSE(), optimizer=adam, optimizer_state=state,
                   lr=1e-4, clip=ClipSpec(max_norm=1.0), threads=threads)

    step()  # scratch buffers allocated outside the timing, as in a fit's later steps
    times = []
    began = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - began < budget and len(times) < 1000):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return float(np.median(times))
