"""Optimizers over the flat parameter vector, with PyTorch's update rules.

An optimizer is a small frozen config; its state (moments, step count) is a plain dict of arrays
and numbers, so it can be checkpointed and restored exactly. `step` updates params in place
through one fused Numba loop per rule: numpy expressions would allocate several temporaries the
size of the whole model on every step.
"""

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .cells._common import KERNEL


@njit(**KERNEL)
def _sgd(params, grad, buf, lr, momentum, undamped, nesterov, weight_decay, first):
    for i in range(params.size):
        g = grad[i] + weight_decay * params[i]
        if momentum != 0:
            # torch starts the momentum buffer at the first gradient
            buf[i] = g if first else momentum * buf[i] + undamped * g
            g = g + momentum * buf[i] if nesterov else buf[i]
        params[i] -= lr * g


@njit(**KERNEL)
def _rmsprop(params, grad, square_avg, lr, alpha, eps, weight_decay):
    one = params.dtype.type(1)
    for i in range(params.size):
        g = grad[i] + weight_decay * params[i]
        square_avg[i] = alpha * square_avg[i] + (one - alpha) * g * g
        params[i] -= lr * g / (np.sqrt(square_avg[i]) + eps)


@njit(**KERNEL)
def _adam(params, grad, exp_avg, exp_avg_sq, step_size, beta1, beta2, eps, bias2_sqrt,
          l2, decay):
    # the scalars come as Python floats, cast here: a numpy scalar argument costs Numba's
    # dispatcher several times a float's, at every step
    t = params.dtype.type
    step_size, beta1, beta2, eps = t(step_size), t(beta1), t(beta2), t(eps)
    bias2_sqrt, l2, decay = t(bias2_sqrt), t(l2), t(decay)
    one = t(1)
    for i in range(params.size):
        p = params[i] * decay  # AdamW's decoupled decay (decay = 1 otherwise)
        g = grad[i] + l2 * p  # Adam's L2 term (l2 = 0 otherwise)
        exp_avg[i] = beta1 * exp_avg[i] + (one - beta1) * g
        exp_avg_sq[i] = beta2 * exp_avg_sq[i] + (one - beta2) * g * g
        params[i] = p - step_size * exp_avg[i] / (np.sqrt(exp_avg_sq[i]) / bias2_sqrt + eps)


@dataclass(frozen=True)
class SGD:
    """SGD with optional momentum (Nesterov too) and L2 weight decay, as torch.optim.SGD."""

    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def init_state(self, params: np.ndarray) -> dict:
        return {"step": 0, "momentum_buffer": np.zeros_like(params)}

    def step(self, params: np.ndarray, grad: np.ndarray, state: dict, lr: float) -> None:
        t = params.dtype.type
        undamped = t(1)  # 1 - dampening; torch's default dampening is 0
        _sgd(params, grad, state["momentum_buffer"], t(lr), t(self.momentum), undamped,
             self.nesterov, t(self.weight_decay), state["step"] == 0)
        state["step"] += 1


@dataclass(frozen=True)
class RMSprop:
    """RMSprop as torch.optim.RMSprop (uncentred, no momentum)."""

    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0

    def init_state(self, params: np.ndarray) -> dict:
        return {"step": 0, "square_avg": np.zeros_like(params)}

    def step(self, params: np.ndarray, grad: np.ndarray, state: dict, lr: float) -> None:
        t = params.dtype.type
        _rmsprop(params, grad, state["square_avg"], t(lr), t(self.alpha), t(self.eps),
                 t(self.weight_decay))
        state["step"] += 1


@dataclass(frozen=True)
class Adam:
    """Adam as torch.optim.Adam; with decoupled=True it is AdamW (torch.optim.AdamW)."""

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    decoupled: bool = False

    def init_state(self, params: np.ndarray) -> dict:
        return {"step": 0, "exp_avg": np.zeros_like(params), "exp_avg_sq": np.zeros_like(params)}

    def step(self, params: np.ndarray, grad: np.ndarray, state: dict, lr: float) -> None:
        state["step"] += 1
        n = state["step"]
        decay = 1 - lr * self.weight_decay if self.decoupled else 1.0
        l2 = 0.0 if self.decoupled else self.weight_decay
        # (floats, whatever the caller passed: one compiled signature)
        _adam(params, grad, state["exp_avg"], state["exp_avg_sq"], float(lr / (1 - self.beta1**n)),
              float(self.beta1), float(self.beta2), float(self.eps),
              math.sqrt(1 - self.beta2**n), float(l2), float(decay))


def default_weight_decay(name: str) -> float:
    """The weight decay optimizer `name` uses when none is given: PyTorch's defaults (AdamW's
    decoupled decay is 0.01; L2 decay is off for the others)."""
    return 0.01 if name == "adamw" else 0.0


def make_optimizer(name: str, **options):
    """Build an optimizer by name: sgd, momentum, nesterov, rmsprop, adam, adamw. Options
    given as None take the optimizer's defaults."""
    options = {k: v for k, v in options.items() if v is not None}
    if name == "sgd":
        return SGD(**options)
    if name == "momentum":
        return SGD(**{"momentum": 0.9, **options})
    if name == "nesterov":
        return SGD(**{"momentum": 0.9, "nesterov": True, **options})
    if name == "rmsprop":
        return RMSprop(**options)
    if name == "adam":
        return Adam(**options)
    if name == "adamw":
        return Adam(**{"weight_decay": default_weight_decay(name), **options, "decoupled": True})
    raise ValueError(f"optimizer must be one of sgd, momentum, nesterov, rmsprop, adam, adamw, "
                     f"not {name!r}")
