"""Forecast accuracy scores: MASE, sMAPE, pinball loss and interval coverage.

Every score takes plain arrays (anything np.asarray reads; None becomes NaN) of the same length
`h`: the actual values and the forecast. A NaN actual is a gap in the data: the scores skip that
step. A NaN forecast is a missing forecast, not a gap: it makes the score NaN, so that a failed
method never looks good. A score with no step left to average is NaN.
"""

import math
from collections.abc import Mapping

import numpy as np


def _floats(values) -> np.ndarray:
    """A float64 array; None (a gap) becomes NaN."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def mase(actual, forecast, history, season_length: int = 1) -> float:
    """Mean absolute scaled error: the mean absolute error of `forecast` over the in-sample mean
    absolute error of the seasonal-naive forecast (lag `season_length`) on `history`.

    Below 1 beats the seasonal naive in sample. The scale falls back to lag 1 (the naive
    forecast) when the history is too short for one seasonal difference (fewer than
    season_length + 1 points). Differences that touch a gap in the history are skipped, as are
    steps whose actual is a gap. NaN when the scale is zero (a constant history) or undefined.
    """
    actual, forecast, history = _floats(actual), _floats(forecast), _floats(history)
    lag = max(int(season_length), 1)
    if history.size < lag + 1:
        lag = 1
    diffs = np.abs(history[lag:] - history[:-lag])
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return math.nan
    scale = np.mean(diffs)
    errors = np.abs(actual - forecast)[~np.isnan(actual)]
    if errors.size == 0:
        return math.nan
    return float(np.mean(errors) / scale) if scale > 0 else math.nan


def smape(actual, forecast) -> float:
    """Symmetric MAPE in percent, 0..200, as in the M4 competition:
    200 · mean(|y − f| / (|y| + |f|)); a term with y = f = 0 counts as 0. Gaps in `actual` are
    skipped."""
    actual, forecast = _floats(actual), _floats(forecast)
    known = ~np.isnan(actual)
    actual, forecast = actual[known], forecast[known]
    if actual.size == 0:
        return math.nan
    if np.isnan(forecast).any():
        return math.nan
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(np.abs(actual - forecast), denominator, out=np.zeros_like(denominator),
                      where=denominator > 0)
    return float(200 * np.mean(ratio))


def pinball(actual, quantile_paths: Mapping[float, object]) -> float:
    """Mean pinball (quantile) loss over quantiles and steps, in the units of the data.

    `quantile_paths` maps each quantile level q in (0, 1) to its forecast path; the loss of one
    step is q·(y − f) when y ≥ f and (1 − q)·(f − y) otherwise. Gaps in `actual` are skipped.
    NaN without quantiles.
    """
    actual = _floats(actual)
    known = ~np.isnan(actual)
    if not quantile_paths or not known.any():
        return math.nan
    losses = []
    for q, path in quantile_paths.items():
        q = float(q)
        if not 0 < q < 1:
            raise ValueError(f"quantile {q} is not strictly between 0 and 1")
        diff = actual[known] - _floats(path)[known]
        losses.append(np.maximum(q * diff, (q - 1) * diff))
    return float(np.mean(np.stack(losses)))


def coverage(actual, lower, upper) -> float:
    """Share of the actual values inside [lower, upper] (both ends included), 0..1; gaps in
    `actual` are skipped. A NaN bound makes it NaN."""
    actual, lower, upper = _floats(actual), _floats(lower), _floats(upper)
    known = ~np.isnan(actual)
    if not known.any():
        return math.nan
    lower, upper = lower[known], upper[known]
    if np.isnan(lower).any() or np.isnan(upper).any():
        return math.nan
    inside = (actual[known] >= lower) & (actual[known] <= upper)
    return float(np.mean(inside))
