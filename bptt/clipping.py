"""Gradient clipping on the flat gradient vector, in place, as PyTorch's clip_grad_*_."""

from dataclasses import dataclass

import numpy as np
from numba import njit

from .cells._common import KERNEL


@dataclass(frozen=True)
class ClipSpec:
    """How to clip: by global L2 norm, by value, both (value first), or neither (None)."""

    max_norm: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_norm", "max_value"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"clip {name} must be a positive number")


@njit(**KERNEL)
def _sum_of_squares(values):
    total = 0.0
    for v in values:
        total += float(v) * float(v)
    return total


def global_norm(grad: np.ndarray) -> float:
    """L2 norm of the whole gradient, accumulated in float64.

    A Numba loop rather than np.dot: a BLAS call here would wake BLAS's worker threads, which
    then spin for a while and steal the cores from the engine's own threads.
    """
    return float(np.sqrt(_sum_of_squares(grad)))


def clip_gradients(grad: np.ndarray, clip: ClipSpec | None) -> tuple[float, bool]:
    """Clip `grad` in place; return (pre-clip global norm, whether any clipping fired).

    The norm rule is torch.nn.utils.clip_grad_norm_'s: scale by max_norm / (norm + 1e-6) when that
    is below 1. The value rule is clip_grad_value_'s: clamp each element to ±max_value.
    """
    norm = global_norm(grad)
    clipped = False
    if clip is None:
        return norm, clipped
    if clip.max_value is not None:
        limit = grad.dtype.type(clip.max_value)
        if np.any(np.abs(grad) > limit):
            np.clip(grad, -limit, limit, out=grad)
            clipped = True
    if clip.max_norm is not None:
        current = global_norm(grad) if clipped else norm
        scale = clip.max_norm / (current + 1e-6)
        if scale < 1.0:
            grad *= grad.dtype.type(scale)
            clipped = True
    return norm, clipped
