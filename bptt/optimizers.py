"""Optimizers over the flat parameter vector, with PyTorch's update rules.

An optimizer is a small frozen config; its state (moments, step count) is a plain dict of arrays
and numbers, so it can be checkpointed and restored exactly. `step` updates params in place.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SGD:
    """SGD with optional momentum (Nesterov too) and L2 weight decay, as torch.optim.SGD."""

    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def init_state(self, params: np.ndarray) -> dict:
        return {"step": 0, "momentum_buffer": np.zeros_like(params)}

    def step(self, params: np.ndarray, grad: np.ndarray, state: dict, lr: float) -> None:
        g = grad + self.weight_decay * params if self.weight_decay else grad
        if self.momentum:
            buf = state["momentum_buffer"]
            if state["step"] == 0:
                buf[...] = g  # torch starts the buffer at the first gradient
            else:
                buf *= self.momentum
                buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        params -= params.dtype.type(lr) * g
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
        g = grad + self.weight_decay * params if self.weight_decay else grad
        avg = state["square_avg"]
        avg *= self.alpha
        avg += (1 - self.alpha) * g * g
        params -= params.dtype.type(lr) * g / (np.sqrt(avg) + params.dtype.type(self.eps))
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
        dtype = params.dtype.type
        if self.weight_decay and self.decoupled:
            params *= dtype(1 - lr * self.weight_decay)
            g = grad
        elif self.weight_decay:
            g = grad + dtype(self.weight_decay) * params
        else:
            g = grad
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= dtype(self.beta1)
        m += dtype(1 - self.beta1) * g
        v *= dtype(self.beta2)
        v += dtype(1 - self.beta2) * g * g
        bias1 = 1 - self.beta1**t
        bias2_sqrt = np.sqrt(1 - self.beta2**t)
        denom = np.sqrt(v) / dtype(bias2_sqrt) + dtype(self.eps)
        params -= dtype(lr / bias1) * m / denom


def make_optimizer(name: str, **options):
    """Build an optimizer by name: sgd, momentum, nesterov, rmsprop, adam, adamw."""
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
        return Adam(**{"weight_decay": 0.01, **options, "decoupled": True})
    raise ValueError(f"optimizer must be one of sgd, momentum, nesterov, rmsprop, adam, adamw, "
                     f"not {name!r}")
