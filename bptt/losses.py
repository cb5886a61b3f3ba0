"""Training losses over head outputs, with a mask for missing targets.

Each loss maps predictions (N, horizon * Q) and targets (N, horizon) to the *sum* of its
elementwise values and the gradient of that sum; the caller divides both by the number of
counted elements, so a loss split over truncated-BPTT segments is still one mean. Q is the number
of outputs per target: 1, or the number of quantiles for the pinball loss.
"""

from dataclasses import dataclass
from functools import cache

import numpy as np


def _residual(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """pred - target where the target is known, 0 where it is masked (NaN-safe); a new array."""
    if mask.all():  # the usual case, and one pass instead of three
        return np.subtract(pred, target, dtype=pred.dtype)
    return np.where(mask, pred - np.where(mask, target, 0), 0).astype(pred.dtype, copy=False)


@dataclass(frozen=True)
class MSE:
    """Mean squared error."""

    outputs_per_target: int = 1

    def sum_and_grad(self, pred, target, mask):
        r = _residual(pred, target, mask).ravel()
        value = float(np.dot(r, r))  # BLAS: no (N, h) temporary for r * r
        r *= 2
        return value, r.reshape(pred.shape)


@dataclass(frozen=True)
class MAE:
    """Mean absolute error."""

    outputs_per_target: int = 1

    def sum_and_grad(self, pred, target, mask):
        r = _residual(pred, target, mask)
        return float(np.sum(np.abs(r), dtype=np.float64)), np.sign(r)


@dataclass(frozen=True)
class Huber:
    """Huber loss as torch.nn.HuberLoss: ½r² inside |r| < delta, delta·(|r| − ½delta) outside."""

    delta: float = 1.0
    outputs_per_target: int = 1

    def sum_and_grad(self, pred, target, mask):
        r = _residual(pred, target, mask)
        a = np.abs(r)
        d = pred.dtype.type(self.delta)
        inside = a < d
        value = np.where(inside, 0.5 * r * r, d * (a - 0.5 * d))
        grad = np.where(inside, r, d * np.sign(r)).astype(pred.dtype, copy=False)
        return float(np.sum(value, dtype=np.float64)), grad


@dataclass(frozen=True)
class Pinball:
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

    def sum_and_grad(self, pred, target, mask):
        n, h = target.shape
        q = _levels(self.quantiles, pred.dtype)  # (Q,)
        p = pred.reshape(n, h, len(q))
        known = mask.all()  # the usual case: no masking passes
        r = (target if known else np.where(mask, target, 0))[:, :, None] - p  # target − pred
        if not known:
            r = np.where(mask[:, :, None], r, 0)
        grad = np.subtract(r <= 0, q, dtype=pred.dtype)  # d value / d pred: −q, or 1 − q
        # pinball = q·r for r > 0 and (q − 1)·r otherwise, which is −r·grad: one dot product
        # (BLAS, as MSE's) rather than an (N, h, Q) array of values; the loss runs every step
        value = -float(np.dot(r.ravel(), grad.ravel()))
        if not known:
            grad *= mask[:, :, None]
        return value, grad.reshape(n, h * len(q))


@cache
def _levels(quantiles: tuple[float, ...], dtype: np.dtype) -> np.ndarray:
    """The quantile levels as an array of `dtype`, made once per loss and dtype (shared: never
    written to)."""
    return np.asarray(quantiles, dtype=dtype)


@dataclass(frozen=True)
class MeanAndQuantiles:
    """A point forecast and quantiles (pinball) from one head: per target the head emits 1 + Q
    outputs, the point forecast first, trained by `point` (MSE by default). Both parts are means
    over their own outputs, summed."""

    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    point: MSE | MAE | Huber = MSE()

    def __post_init__(self) -> None:
        pinball = Pinball(self.quantiles)  # checks the levels
        object.__setattr__(self, "quantiles", pinball.quantiles)
        object.__setattr__(self, "_pinball", pinball)

    @property
    def outputs_per_target(self) -> int:
        return 1 + len(self.quantiles)

    def sum_and_grad(self, pred, target, mask):
        n, h = target.shape
        q = len(self.quantiles)
        p = pred.reshape(n, h, 1 + q)
        mean_sum, mean_grad = self.point.sum_and_grad(p[:, :, 0], target, mask)
        quant_sum, quant_grad = self._pinball.sum_and_grad(p[:, :, 1:], target, mask)
        # The caller divides by (1 + Q) × targets; weight the parts so each is its own mean.
        grad = np.empty_like(p)
        np.multiply(mean_grad.reshape(n, h), 1 + q, out=grad[:, :, 0])
        np.multiply(quant_grad.reshape(n, h, q), (1 + q) / q, out=grad[:, :, 1:])
        return mean_sum * (1 + q) + quant_sum * (1 + q) / q, grad.reshape(n, h * (1 + q))


LOSSES = {"mse": MSE, "mae": MAE, "huber": Huber, "pinball": Pinball,
          "mse+pinball": MeanAndQuantiles}


def make_loss(name: str, **options):
    """Build a loss by name: mse, mae, huber (delta=), pinball (quantiles=), mse+pinball."""
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, not {name!r}")
    return LOSSES[name](**options)
