"""Calibration after training, on the validation windows: how forecasts combine the network
with simple forecasts, and how far its quantiles move to be calibrated.

Both are fitted on the latest windows of each series, which training never used as targets.
"""

import numpy as np

from . import combination
from .data import GATHER_CHUNK, WindowIndex
from .model import Model

CALIBRATION_CHUNK = GATHER_CHUNK  # validation windows gathered and evaluated at once


def calibrate(model: Model, val: WindowIndex, scaled: list[np.ndarray],
              chunk: int = CALIBRATION_CHUNK) -> float | None:
    """Fit the model's combination weights and conformal quantile shifts on the validation
    windows `val` of the `scaled` series (nothing without validation windows). Returns the
    validation coverage of the network's own outer quantile interval, before the shifts (None
    without quantiles or validation windows).

    The windows are gathered `chunk` at a time (whole series each, WindowIndex.series_chunks),
    in two passes: the combination's, then one forward for the coverage and the residuals the
    shifts are quantiles of. Beyond those residuals (h x Q per window), memory is O(chunk), and
    the results are those of one pass over every window, to the bit."""
    if not len(val):
        return None
    # the network with classical forecasts of the same window (bptt.combination)
    model.combination = combination.fitted(model, val, scaled, chunk)
    if not model.quantiles:
        return None
    inside = known = 0
    residuals, known_targets = [], []
    for part in val.series_chunks(chunk):
        paths = model.quantile_paths(part.x.transpose(1, 0, 2), head_features=part.head)
        counted = quantile_coverage_counts(paths, part.y)  # of the network's own quantiles
        inside, known = inside + counted[0], known + counted[1]
        combined = combination.combined_paths(model, paths, part)
        residuals.append(part.y[:, :, None] - combined[:, :, 1:])  # (n, h, Q)
        known_targets.append(np.isfinite(part.y))
    model.quantile_offsets = conformal_offsets(model, np.concatenate(residuals),
                                               np.concatenate(known_targets))
    return inside / known if known else float("nan")


def quantile_coverage_counts(paths: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    """(known targets inside the outermost quantile interval of paths (N, h, 1 + Q), known
    targets) of targets y (N, h)."""
    outer = np.sort(paths[:, :, 1:], axis=2)
    known = np.isfinite(y)
    inside = (y >= outer[:, :, 0]) & (y <= outer[:, :, -1])
    return int(inside[known].sum()), int(known.sum())


MIN_CALIBRATION_RESIDUALS = 8  # fewer residuals per shift give too noisy a quantile


def conformal_offsets(model: Model, residuals: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Split-conformal shifts (h, Q) for the quantile outputs: for quantile q at step s, the
    q-quantile of (target − predicted q-quantile) over the validation windows, so that the
    shifted quantile is exceeded by a share 1 − q of them. Pinball training alone gave
    intervals far too narrow out of sample. With few validation windows (a short single
    series has 4 or 5) a step pools the residuals of its nearest steps, widening the band
    step by step until it holds MIN_CALIBRATION_RESIDUALS: errors grow smoothly with the step,
    and an uncalibrated step kept intervals as narrow as training left them (15 % coverage of
    the 10-90 % interval on the Nile series). Without that many residuals in all: no shift.
    The quantiles are the ones forecasts use: moved with the model's combination, if any.
    residuals (N, h, Q): each validation window's target minus those quantile paths; known
    (N, h): whether the target was known."""
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
