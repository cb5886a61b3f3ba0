"""Compile (or load from Numba's on-disk cache) every kernel before the first real job."""

import time
from collections.abc import Callable

import numpy as np

from .backprop import loss_and_gradients
from .cells import CELLS
from .clipping import global_norm
from .forward import predict
from .losses import MSE
from .network import NetworkSpec, init_parameters
from .optimizers import make_optimizer

OPTIMIZERS = ("sgd", "rmsprop", "adam")  # one kernel each; the others are variants of these


def warm_kernels(dtypes=(np.float32, np.float64),
                 progress: Callable[[int, int], None] | None = None) -> float:
    """Run every cell's forward and backward once per dtype on a tiny batch; return seconds.

    Kernels are compiled per argument types, so each dtype is one compilation (or cache load)
    of each kernel. Two layers make the backward kernels' input-gradient path run too.
    `progress(done, total)` is called before the first step and after each one (a step is one
    cell's kernels, or the update's: clipping and optimizers, for one dtype), so that a caller
    can say how far a cold compilation has got.
    """
    start = time.perf_counter()
    steps = _steps(dtypes)
    if progress is not None:
        progress(0, len(steps))
    for done, step in enumerate(steps, start=1):
        step()
        if progress is not None:
            progress(done, len(steps))
    return time.perf_counter() - start


def _steps(dtypes) -> list[Callable[[], None]]:
    """Each kernel's first call, in the order a training job needs them."""
    rng = np.random.default_rng(0)
    steps: list[Callable[[], None]] = []
    for dtype in dtypes:
        for cell in CELLS:
            spec = NetworkSpec(cell=cell, input_size=1, hidden_size=2, num_layers=2)
            params = init_parameters(spec, 0, dtype)
            x = rng.normal(size=(3, 2, 1)).astype(dtype)
            steps.append(lambda s=spec, p=params, x=x: _cell_step(s, p, x))
        steps.append(lambda p=params: _update_step(p))
    return steps


def _cell_step(spec: NetworkSpec, params: np.ndarray, x: np.ndarray) -> None:
    loss_and_gradients(spec, params, x, x[-1:], MSE())
    predict(spec, params, x)


def _update_step(params: np.ndarray) -> None:
    global_norm(params)
    for name in OPTIMIZERS:
        optimizer = make_optimizer(name)
        optimizer.step(params, params.copy(), optimizer.init_state(params), lr=0.0)
