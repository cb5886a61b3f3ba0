"""Compile (or load from Numba's on-disk cache) every kernel before the first real job."""

import time

import numpy as np

from .backprop import loss_and_gradients
from .cells import CELLS
from .forward import predict
from .losses import MSE
from .network import NetworkSpec, init_parameters
from .optimizers import make_optimizer


def warm_kernels(dtypes=(np.float32, np.float64)) -> float:
    """Run every cell's forward and backward once per dtype on a tiny batch; return seconds.

    Kernels are compiled per argument types, so each dtype is one compilation (or cache load)
    of each kernel. Two layers make the backward kernels' input-gradient path run too.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        for cell in CELLS:
            spec = NetworkSpec(cell=cell, input_size=1, hidden_size=2, num_layers=2)
            params = init_parameters(spec, 0, dtype)
            x = rng.normal(size=(3, 2, 1)).astype(dtype)
            loss_and_gradients(spec, params, x, x[-1:], MSE())
            predict(spec, params, x)
        for name in ("sgd", "rmsprop", "adam"):
            optimizer = make_optimizer(name)
            optimizer.step(params, params.copy(), optimizer.init_state(params), lr=0.0)
    return time.perf_counter() - start
