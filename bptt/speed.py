"""How fast this machine runs the engine's kernels: the rates that turn a Cost into seconds.

A fit's time is modelled as three kinds of work (bptt.cost.Work): the GEMM FLOPs of the forward
and backward kernels, the gate elements their elementwise loops visit, and a fixed cost per
pass (the Python around one update or one forward chunk). None of the three alone predicts
time: a hidden size of 8 spends most of a step in the gate loops and the dispatch around them,
256 in its GEMMs. How the two kinds of arithmetic weigh against each other is a property of
the kernels, fitted once over many step shapes (benchmarks/cost.py --fit-rates); a machine
then scales both by one factor, from timing representative steps, and measures its pass cost
on a tiny step. Solving for all three rates on every machine from a few timings was tried:
on a shared machine the timings are too noisy for three unknowns (one run put the GEMMs at
400 GFLOP/s and the gate loops at a tenth of their rate).
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


# What a service assumes before any of its workers has reported its own measurement, and the
# balance between GEMMs and gate loops every measurement keeps: fitted over step shapes with
# benchmarks/cost.py --fit-rates on the 2-core CI machine, one thread, by CPU time (three runs
# at load 6-7 over 72 step shapes: 177-196 GFLOP/s, 1.3-1.9 G elements/s, 85-133 us a pass;
# each shape within 0.6-2.6x of its fit, the worst the narrowest hidden sizes).
DEFAULT_KERNEL_SPEED = KernelSpeed(gflops=190.0, gelements=1.7, pass_seconds=110e-6)

# The steps measure_kernel_speed times (cell, hidden, steps, batch): a tiny one for the pass
# cost, and the shapes of typical jobs (the default LSTM at both of its default sizes, a GRU)
# for the arithmetic. Each takes milliseconds: the measurement adds about 0.3 s to a worker's
# start.
_TINY = ("lstm", 2, 3, 2)
_REPRESENTATIVE = (("lstm", 32, 48, 32), ("lstm", 64, 48, 32), ("gru", 64, 96, 32))


def measure_kernel_speed(seconds_per_step: float = 0.08, threads: int = 1) -> KernelSpeed:
    """This machine's KernelSpeed: the pass cost from a tiny training step (forward, BPTT,
    clipping, Adam; float32), the arithmetic rates DEFAULT_KERNEL_SPEED's scaled by how much
    faster or slower the representative steps run than those rates predict. Each step is timed
    for about `seconds_per_step` (median). Run it after warm_kernels (a compilation inside the
    timing would swamp it)."""
    default = DEFAULT_KERNEL_SPEED
    pass_seconds = _median_step_seconds(_network(_TINY), _TINY[2], _TINY[3], seconds_per_step,
                                        threads)
    predicted = measured = 0.0
    for shape in _REPRESENTATIVE:
        network, steps, batch = _network(shape), shape[2], shape[3]
        work = step_work(network, steps, batch)
        predicted += default.seconds(work) - work.passes * default.pass_seconds
        measured += max(_median_step_seconds(network, steps, batch, seconds_per_step, threads)
                        - work.passes * pass_seconds, 1e-9)
    scale = predicted / measured
    return KernelSpeed(gflops=float(default.gflops * scale),
                       gelements=float(default.gelements * scale),
                       pass_seconds=float(pass_seconds))


def _network(shape: tuple) -> NetworkSpec:
    cell, hidden, _, _ = shape
    return NetworkSpec(cell=cell, hidden_size=hidden, output_size=12)


def _median_step_seconds(network: NetworkSpec, steps: int, batch: int, budget: float,
                         threads: int) -> float:
    """Median seconds of one training step on random data, over about `budget` seconds: the
    thread's CPU time when it trains alone, so that a busy machine's preemptions (which land
    in any step longer than a time slice, and in a few ms steps almost surely) do not count as
    the kernels' slowness. What a job's wall time loses to neighbours is not the worker
    class's speed; a job's time left follows its own pace (service.api.estimates)."""
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
    clock = time.thread_time if threads == 1 else time.perf_counter  # several: wall time
    times = []
    began = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - began < budget and len(times) < 1000):
        t = clock()
        step()
        times.append(clock() - t)
    return float(np.median(times))
