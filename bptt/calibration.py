"""Calibration after training, on the validation windows: how forecasts combine the network
with simple forecasts, and how far its quantiles move to be calibrated.

Both are fitted on the latest windows of each series, which training never used as targets.
"""

import numpy as np

from . import combination
from .data import Windows
from .model import Model


def calibrate(model: Model, val: Windows, scaled: list[np.ndarray]) -> float | None:
    """Fit the model's combination weights and conformal quantile shifts on the validation
    windows `val` of the `scaled` series (nothing without validation windows). Returns the
    validation coverage of the network's own outer quantile interval, before the shifts (None
    without quantiles or validation windows)."""
    if not len(val):
        return None
    # the network with classical forecasts of the same window (bptt.combination)
    model.combination = combination.fitted(model, val, scaled)
    if not model.quantiles:
        return None
    coverage = quantile_coverage(model, val)  # of the network's own quantiles
    model.quantile_offsets = conformal_offsets(model, val)
    return coverage


def quantile_coverage(model: Model, windows: Windows) -> float:
    """Share of known targets that fall inside the model's outermost quantile interval."""
    paths = np.sort(model.quantile_paths(windows.x.transpose(1, 0, 2),
                                         head_features=windows.head)[:, :, 1:], axis=2)
    known = np.isfinite(windows.y)
    inside = (windows.y >= paths[:, :, 0]) & (windows.y <= paths[:, :, -1])
    return float(inside[known].mean())


MIN_CALIBRATION_RESIDUALS = 8  # fewer residuals per shift give too noisy a quantile


def conformal_offsets(model: Model, windows: Windows) -> np.ndarray:
    """Split-conformal shifts (h, Q) for the quantile outputs: for quantile q at step s, the
    q-quantile of (target − predicted q-quantile) over the validation windows, so that the
    shifted quantile is exceeded by a share 1 − q of them. Pinball training alone gave
    intervals far too narrow out of sample. With few validation windows (a short single
    series has 4 or 5) a step pools the residuals of its nearest steps, widening the band
    step by step until it holds MIN_CALIBRATION_RESIDUALS: errors grow smoothly with the step,
    and an uncalibrated step kept intervals as narrow as training left them (15 % coverage of
    the 10-90 % interval on the Nile series). Without that many residuals in all: no shift.
    The quantiles are the ones forecasts use: moved with the model's combination, if any."""
    paths = combination.window_paths(model, windows)[:, :, 1:]  # (N, h, Q)
    residuals = windows.y[:, :, None] - paths
    known = np.isfinite(windows.y)
    known_per_step = known.sum(axis=0)
    offsets = np.zeros((model.horizon, len(model.quantiles)))
    if known_per_step.sum() < MIN_CALIBRATION_RESIDUALS:
        return offsets
    for step in range(model.horizon):
        band = _calibration_band(known_per_step, step)
        pooled = residuals[:, band][known[:, band]]  # (residuals, Q)
        for k, q in enumerate(model.quantiles):
            offsets[step, k] = np.quantile(pooled[:, k], q)
    return offsets


def _calibration_band(known_per_step: np.ndarray, step: int) -> slice:
    """The narrowest band of steps around `step` (one more on each side at a time, clipped to
    the horizon) holding MIN_CALIBRATION_RESIDUALS known residuals."""
    horizon = len(known_per_step)
    for width in range(horizon):
        band = slice(max(0, step - width), min(horizon, step + width + 1))
        if known_per_step[band].sum() >= MIN_CALIBRATION_RESIDUALS:
            return band
    return slice(0, horizon)
