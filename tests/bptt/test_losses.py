"""The compiled losses against their formulas written out in numpy, with missing targets.

Every loss is also checked through training against PyTorch (test_torch_parity) and finite
differences (test_gradcheck); this covers the combinations those cases leave out (a mean-and-
quantiles loss with an MAE or Huber point loss) and float32 beside float64.
"""

import numpy as np
import pytest

from bptt.losses import MAE, MSE, Huber, MeanAndQuantiles, Pinball

ROWS, HORIZON = 7, 3


def point_terms(kind, r, delta=1.0):
    """(value, d value / d pred) per element of residual r = pred − target."""
    if kind == "mse":
        return r * r, 2 * r
    if kind == "mae":
        return np.abs(r), np.sign(r)
    inside = np.abs(r) < delta
    return (np.where(inside, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)),
            np.where(inside, r, delta * np.sign(r)))


def pinball_terms(levels, r):
    """(value, d value / d pred) per element of residual r = target − pred (…, Q)."""
    grad = (r <= 0).astype(float) - levels
    return np.where(r > 0, levels * r, (levels - 1) * r), grad


def reference(loss, pred, target, mask):
    """The loss's sum and gradient, from the formulas, in float64."""
    pred, target = pred.astype(np.float64), np.where(mask, target, 0.0)
    point = {MSE: "mse", MAE: "mae", Huber: "huber"}
    if type(loss) in point:
        value, grad = point_terms(point[type(loss)], pred - target, getattr(loss, "delta", 1.0))
        return (value * mask).sum(), grad * mask
    levels = np.asarray(loss.quantiles)
    if isinstance(loss, Pinball):
        p = pred.reshape(ROWS, HORIZON, -1)
        value, grad = pinball_terms(levels, target[:, :, None] - p)
        return (value * mask[..., None]).sum(), (grad * mask[..., None]).reshape(pred.shape)
    q = len(levels)
    p = pred.reshape(ROWS, HORIZON, 1 + q)
    inner = loss.point
    pv, pg = point_terms(point[type(inner)], p[:, :, 0] - target, getattr(inner, "delta", 1.0))
    qv, qg = pinball_terms(levels, target[:, :, None] - p[:, :, 1:])
    grad = np.concatenate([(pg * mask * (1 + q))[..., None],
                           qg * mask[..., None] * (1 + q) / q], axis=2)
    value = (pv * mask).sum() * (1 + q) + (qv * mask[..., None]).sum() * (1 + q) / q
    return value, grad.reshape(pred.shape)


LOSSES = [MSE(), MAE(), Huber(0.3), Pinball((0.1, 0.5, 0.9)), MeanAndQuantiles((0.2, 0.8)),
          MeanAndQuantiles((0.1, 0.5, 0.9), MAE()), MeanAndQuantiles((0.25,), Huber(0.5))]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: repr(loss))
def test_loss_sum_and_gradient_follow_the_formulas(loss, dtype):
    rng = np.random.default_rng(0)
    target = rng.normal(size=(ROWS, HORIZON))
    mask = rng.random((ROWS, HORIZON)) > 0.25
    target[~mask] = np.nan  # a missing target may be NaN: it counts nothing
    pred = rng.normal(size=(ROWS, HORIZON * loss.outputs_per_target))
    value, grad = loss.sum_and_grad(pred.astype(dtype), target.astype(dtype), mask)
    want_value, want_grad = reference(loss, pred.astype(dtype), target.astype(dtype), mask)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert grad.dtype == dtype and grad.shape == pred.shape
    assert value == pytest.approx(want_value, rel=tolerance)
    np.testing.assert_allclose(grad, want_grad, rtol=tolerance, atol=tolerance)
    assert np.all(grad.reshape(ROWS, HORIZON, -1)[~mask] == 0)
