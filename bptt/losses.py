"""Training losses over head outputs, with a mask for missing targets.

Each loss maps predictions (N, horizon * Q) and targets (N, horizon) to the *sum* of its
elementwise values and the gradient of that sum; the caller divides both by the number of
counted elements, so a loss split over truncated-BPTT segments is still one mean. Q is the number
of outputs per target: 1, or the number of quantiles for the pinball loss.
"""

from dataclasses import dataclass
from functools import cache

import numpy as np

from .cells import _head


class _Loss:
    """What every loss shares: its sum and gradient come from the compiled loss_terms, given
    the loss's `terms` (point loss, Huber's delta, quantile levels; cells/_head.py)."""

    def sum_and_grad(self, pred, target, mask):
        """(sum over the known targets, d sum / d pred) for pred (N, horizon * Q), target and
        mask (N, horizon); masked targets (they may be NaN) count nothing."""
        point, delta, quantiles = self.terms
        rows = pred.shape[0]
        flat = np.ascontiguousarray(pred).reshape(rows, -1)
        target = np.ascontiguousarray(target, flat.dtype).reshape(rows, -1)
        mask = np.ascontiguousarray(mask, bool).reshape(target.shape)
        grad = np.empty_like(flat)
        value = _head.loss_terms(flat, target, mask, point, delta,
                                 levels(quantiles, flat.dtype), grad)
        return value, grad.reshape(pred.shape)


@dataclass(frozen=True)
class MSE(_Loss):
    """Mean squared error."""

    outputs_per_target: int = 1
    terms = (_head.MSE, 0.0, ())


@dataclass(frozen=True)
class MAE(_Loss):
    """Mean absolute error."""

    outputs_per_target: int = 1
    terms = (_head.MAE, 0.0, ())


@dataclass(frozen=True)
class Huber(_Loss):
    """Huber loss as torch.nn.HuberLoss: ½r² inside |r| < delta, delta·(|r| − ½delta) outside."""

    delta: float = 1.0
    outputs_per_target: int = 1

    @property
    def terms(self) -> tuple:
        return (_head.HUBER, float(self.delta), ())


@dataclass(frozen=True)
class Pinball(_Loss):
    """Pinball (quantile) loss; the head emits Q quantiles per target, quantile fastest."""

    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)

    def __post_init__(self) -> None:
        qs = tuple(float(q) for q in self.quantiles)
        if not qs or any(not 0.0 < q < 1.0 for q in qs) or list(qs) != sorted(set(qs)):
            raise ValueError("quantiles must be distinct, increasing and inside (0, 1)")
        object.__setattr__(self, "quantiles", qs)

    @property
    def outputs_per_target(self) -> int:
        return len(self.quantiles)

    @property
    def terms(self) -> tuple:
        return (_head.NO_POINT, 0.0, self.quantiles)


@cache
def levels(quantiles: tuple[float, ...], dtype: np.dtype) -> np.ndarray:
    """The quantile levels as an array of `dtype`, made once per loss and dtype (shared: never
    written to)."""
    return np.asarray(quantiles, dtype=dtype)


@dataclass(frozen=True)
class MeanAndQuantiles(_Loss):
    """A point forecast and quantiles (pinball) from one head: per target the head emits 1 + Q
    outputs, the point forecast first, trained by `point` (MSE by default). Both parts are means
    over their own outputs, summed."""

    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    point: MSE | MAE | Huber = MSE()

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantiles", Pinball(self.quantiles).quantiles)  # checked

    @property
    def outputs_per_target(self) -> int:
        return 1 + len(self.quantiles)

    @property
    def terms(self) -> tuple:
        point, delta, _ = self.point.terms
        return (point, delta, self.quantiles)


LOSSES = {"mse": MSE, "mae": MAE, "huber": Huber, "pinball": Pinball,
          "mse+pinball": MeanAndQuantiles}


def make_loss(name: str, **options):
    """Build a loss by name: mse, mae, huber (delta=), pinball (quantiles=), mse+pinball."""
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, not {name!r}")
    return LOSSES[name](**options)
