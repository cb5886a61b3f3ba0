"""One optimisation step: forward + BPTT, clipping, finite checks, optimizer update."""

from dataclasses import dataclass

import numpy as np

from .backprop import loss_and_gradients
from .clipping import ClipSpec, clip_gradients
from .errors import NonFiniteError
from .network import NetworkSpec


@dataclass
class StepReport:
    """What one update did: the loss before it, the pre-clip gradient norm, clipping."""

    loss: float
    grad_norm: float  # global L2 norm before clipping
    clipped: bool
    grad_flow: np.ndarray  # (L, T) mean |dL/dh_t|


def train_step(spec: NetworkSpec, params: np.ndarray, x: np.ndarray, y: np.ndarray, *, loss,
               optimizer, optimizer_state: dict, lr: float, clip: ClipSpec | None = None,
               truncate: tuple[int, int] | None = None, mask: np.ndarray | None = None,
               first_output: int | None = None, dropout_masks: list | None = None,
               step: int | None = None, threads: int = 1,
               head_features: np.ndarray | None = None) -> StepReport:
    """Update params in place from one batch; raise NonFiniteError before touching them if the
    loss or the gradient is NaN or infinite. `head_features`: as loss_and_gradients takes
    them, for a network with head inputs (None otherwise)."""
    result = loss_and_gradients(spec, params, x, y, loss, mask=mask, first_output=first_output,
                                truncate=truncate, dropout_masks=dropout_masks, threads=threads,
                                head_features=head_features)
    return apply_update(params, result.grad, result.loss, result.grad_flow, clip=clip,
                        optimizer=optimizer, optimizer_state=optimizer_state, lr=lr, step=step)


def apply_update(params: np.ndarray, grad: np.ndarray, loss: float, grad_flow: np.ndarray, *,
                 clip: ClipSpec | None, optimizer, optimizer_state: dict, lr: float,
                 step: int | None) -> StepReport:
    """The end of a step, given its loss and gradient: the finite checks (NonFiniteError
    before params are touched), clipping `grad` in place, the optimizer's update."""
    if not np.isfinite(loss):
        raise NonFiniteError("loss", step, f"loss is {loss}")
    norm, clipped = clip_gradients(grad, clip)
    if not np.isfinite(norm):
        raise NonFiniteError("gradient", step, f"pre-clip gradient norm is {norm}")
    optimizer.step(params, grad, optimizer_state, lr)
    return StepReport(loss, norm, clipped, grad_flow)
