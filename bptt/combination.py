"""Forecast combination: the network's forecast with classical ones, weighted on validation.

A model's forecast of a series is a convex combination (w_net, w_mean, w_naive, w_snaive),
weights >= 0 summing to 1, of four forecasts, all in the series' scaled (and, with a seasonal
transform, seasonally adjusted: bptt.seasonality) units and centred on the window's last value,
as the network sees them:

- the network's mean path;
- the series' mean: its observed values' mean up to the forecast origin (the training mean, for
  a series the model was trained on), a flat path at mean - level;
- the naive forecast: the last value, a flat path at 0;
- the seasonal naive forecast: the window's values one season back, season after season (only
  with a season, m > 1, and an input window of at least m values; otherwise its weight is 0).
  Seasonal indices repeat every m steps, so in adjusted units too this is exactly the series'
  own seasonal naive forecast once the season is added back: a forecast that keeps whatever
  season the last m values show, as the one-line baseline does.

It amounts to shrinking the network's forecast change towards no change and towards the series'
mean: the classical combination of forecasts (Bates and Granger 1969; the "Comb" benchmark and
the combination-based winners of M4). The mean matters because the network reads its window
centred on the last value and so cannot see where that value stands against the series' long-run
level; for stationary series (AR processes, say) reverting towards it is most of the forecast.
Quantiles are combined the same way (quantile averaging, Lichtendahl, Grushka-Cockayne and
Winkler 2013), a classical partner's quantiles being its point forecast: the combined band is
the network's band around its mean, shrunk by w_net, around the combined mean. The conformal
calibration of the model (calibration.conformal_offsets) is fitted on the combined paths and
adds the spread the partners' errors need. (Moving the network's whole band with the mean, as
before, left a trained network's quantiles worse than an untrained one's wherever the weights
moved to a seasonal partner: the network's band stayed as narrow as its own errors.)

The weights are fitted by fit_weights on the validation windows of every series (the latest
windows, which training never uses as targets; for each window the mean is the series' mean up
to that window's origin, so no validation target is ever seen): among the convex weights on a
grid of step GRID_STEP, the one with the lowest mean over series of the validation MAE relative
to the network's own MAE (so a series' units do not matter, nor its number of windows); on a tie
the weight with more on the network. One set of weights is fitted for all series of a model and
stored per series (and as the default for series the model was not trained on). Weights fitted
on each series' own validation windows alone were measured on benchmarks/accuracy.py (3
synthetic seeds, 120 series) to do worse than these pooled ones, and worse than the network
alone: a series has few, heavily overlapping validation windows, too few to tell which forecast
will be better after them; shrinking per-series weights towards the pooled ones helped the more,
the stronger the shrinkage. The pooled weights lowered the mean MASE there.
Without validation windows (validation_fraction 0) a model has no combination: the network only.
"""

from dataclasses import dataclass

import numpy as np

from .data import rows_by_length, scaler_arrays

GRID_STEP = 0.05
PARTNERS = ("network", "mean", "naive", "snaive")
WEIGHTS = "combination.weights"  # (S, 4) per training series, in PARTNERS order
DEFAULT = "combination.default"  # (4,) for series the model was not trained on
MEANS = "series.means"  # (S,) scaled observed mean of each training series


def weight_grid(step: float = GRID_STEP, seasonal: bool = False) -> np.ndarray:
    """(G, 4) convex weights (w_net, w_mean, w_naive, w_snaive) on a grid, the network alone
    first and then in order of decreasing weight on the network (so that argmin favours it on
    ties); w_snaive is 0 unless `seasonal`."""
    n = round(1 / step)
    rows = [(a, b, c, n - a - b - c) for a in range(n, -1, -1) for b in range(n - a + 1)
            for c in range(n - a - b + 1) if seasonal or a + b + c == n]
    rows.sort(key=lambda r: -r[0])  # stable: within a network weight, the order above
    return np.array(rows, dtype=np.float64) / n


def padded(weights: np.ndarray) -> np.ndarray:
    """Weights of files written before the seasonal naive partner, (..., 3), as (..., 4)."""
    weights = np.asarray(weights, np.float64)
    if weights.shape[-1] == len(PARTNERS):
        return weights
    return np.concatenate([weights, np.zeros((*weights.shape[:-1], 1))], axis=-1)


def seasonal_naive_paths(x: np.ndarray, m: int, horizon: int) -> np.ndarray | None:
    """(N, horizon) the seasonal naive forecast of centred windows x (N, L): the value one
    season back, season after season; None without a season or with L < m."""
    length = x.shape[1]
    if m < 2 or length < m:
        return None
    return x[:, length - m + np.arange(horizon) % m]


@dataclass
class Combination:
    """Fitted combination weights of one model (see the module docstring)."""

    weights: np.ndarray  # (S, 4) per training series, in the order of model.series_ids
    default: np.ndarray  # (4,) for any other series
    means: np.ndarray  # (S,) each training series' scaled observed mean

    # quantiles combined by quantile averaging (see combine); False: the rule of files written
    # before the seasonal naive partner, whose quantiles moved with the mean
    averaged: bool = True

    def __post_init__(self) -> None:
        self.weights, self.default = padded(self.weights), padded(self.default)

    def tensors(self) -> dict[str, np.ndarray]:
        """The arrays a model file stores for it."""
        return {WEIGHTS: np.asarray(self.weights, np.float64),
                DEFAULT: np.asarray(self.default, np.float64),
                MEANS: np.asarray(self.means, np.float64)}

    @classmethod
    def pop_tensors(cls, tensors: dict[str, np.ndarray]) -> "Combination | None":
        """Take the combination's arrays out of a model file's tensors (None: a file written
        before combinations existed, whose model forecasts with its network only)."""
        if WEIGHTS not in tensors:
            return None
        weights = tensors.pop(WEIGHTS)
        return cls(weights, tensors.pop(DEFAULT), tensors.pop(MEANS),
                   averaged=weights.shape[-1] == len(PARTNERS))

    def card(self) -> dict:
        """The model card's description of it."""
        return {"partners": list(PARTNERS),
                "weights": f"{WEIGHTS} (series x 4), {DEFAULT} (4) for other series",
                "default": [float(w) for w in self.default],
                "rule": "mean path = w_net * network + w_mean * (series mean - level) "
                        "+ w_naive * 0 + w_snaive * (the input window's value one season back, "
                        "centred), in scaled units centred on the last value (level); "
                        f"the series mean of a training series is {MEANS}, of another series "
                        "its own scaled mean; quantile k = mean path + w_net * (network "
                        "quantile k - network mean), then the conformal offsets"}

    def rows_for(self, ids: list[str], series_ids: list[str], levels: np.ndarray,
                 means: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(weights (S, 3), partner means (S,)) for forecasts of series `ids`. A training
        series uses its own weights and its training mean; another series the default weights
        and its entry of `means` (without it, its level: the mean part falls back to naive)."""
        if list(ids) == list(series_ids):
            return self.weights, self.means
        index = {name: i for i, name in enumerate(series_ids)}
        rows = np.array([index.get(name, -1) for name in ids])
        known = rows >= 0
        weights = np.where(known[:, None], self.weights[np.maximum(rows, 0)], self.default)
        fallback = levels if means is None else means
        return weights, np.where(known, self.means[np.maximum(rows, 0)], fallback)

    def apply(self, paths: np.ndarray, ids: list[str], series_ids: list[str],
              levels: np.ndarray, means: np.ndarray | None = None,
              snaive: np.ndarray | None = None) -> np.ndarray:
        """Combined (S, h, 1 + Q) paths from the network's scaled, centred ones; snaive (S, h):
        the windows' seasonal naive paths (None: the model has no such partner)."""
        weights, partner = self.rows_for(ids, series_ids, levels, means)
        return combine(paths, weights, partner - levels, snaive, self.averaged)


def combine(paths: np.ndarray, weights: np.ndarray, mean_offset: np.ndarray,
            snaive: np.ndarray | None = None, averaged: bool = True) -> np.ndarray:
    """Paths (N, h, 1 + Q) combined with weights (N, 4): the mean is the weighted mean of the
    partners' forecasts, each quantile the weighted mean of the partners' quantiles (quantile
    averaging), where a classical partner's quantiles are its point forecast: so the combined
    quantile is the combined mean plus w_net times the network's distance from its own mean.
    The conformal calibration fitted on these paths supplies the rest of the spread.
    mean_offset (N,): series mean minus level; snaive (N, h): the seasonal naive paths (None:
    that partner is absent, its weight must be 0); averaged False: the quantiles move with the
    mean instead (files written before quantile averaging)."""
    net = paths[:, :, 0]
    offset = np.nan_to_num(mean_offset)[:, None]  # an unknown mean: no mean part
    combined = weights[:, :1] * net + weights[:, 1:2] * offset  # the naive part is 0
    if snaive is not None:
        combined = combined + weights[:, 3:4] * snaive
    spread = paths[:, :, 1:] - net[:, :, None]
    if averaged:
        spread = weights[:, :1, None] * spread
    return np.concatenate([combined[:, :, None], combined[:, :, None] + spread], axis=2)


def fitted(model, windows, scaled: list[np.ndarray]) -> "Combination":
    """The combination of a freshly trained model (whose own forecasts are the network's),
    fitted on its validation windows; scaled: its training series, scaled."""
    net = model.quantile_paths(windows.x.transpose(1, 0, 2))[:, :, 0]
    snaive = seasonal_naive_paths(windows.x[:, :, 0], model.spec.season_length or 1,
                                  model.horizon)
    weights = fit_weights(net, windows.y, windows.mean - windows.level, windows.series,
                          snaive=snaive)
    return Combination(np.tile(weights, (len(scaled), 1)), weights, series_means(scaled))


def window_paths(model, windows) -> np.ndarray:
    """The model's (N, h, 1 + Q) scaled, centred paths for training-style windows, combined
    as its forecasts are (each window's mean partner: its series' mean up to its origin)."""
    paths = model.quantile_paths(windows.x.transpose(1, 0, 2))
    if model.combination is None or windows.level is None:
        return paths
    snaive = seasonal_naive_paths(windows.x[:, :, 0], model.spec.season_length or 1,
                                  model.horizon)
    return model.shifted(combine(paths, model.combination.weights[windows.series],
                                 windows.mean - windows.level, snaive,
                                 model.combination.averaged))


def new_series_means(model, named: list[tuple[str, np.ndarray]], scalers: list,
                     new: list[int]) -> np.ndarray | None:
    """(S,) the scaled observed mean of the series at positions `new` (series the model was not
    trained on; NaN elsewhere) for forecast's combination; None when it needs none. Series of
    equal length are averaged in one vectorised pass."""
    if model.combination is None or not new:
        return None
    out = np.full(len(named), np.nan)
    values = [v for _, v in named]
    for rows in rows_by_length(values, new).values():
        block = np.stack([values[i] for i in rows])
        observed = np.isfinite(block)
        raw = np.where(observed, block, 0.0).sum(axis=1) / np.maximum(observed.sum(axis=1), 1)
        center, scale = scaler_arrays([scalers[i] for i in rows])
        out[rows] = (raw - center) / scale
    return out


def series_means(scaled: list[np.ndarray]) -> np.ndarray:
    """(S,) the scaled observed mean of each series (NaN for one without observations)."""
    return np.array([np.nanmean(s) if np.isfinite(s).any() else np.nan for s in scaled])


def fit_weights(net: np.ndarray, y: np.ndarray, mean_offset: np.ndarray, series: np.ndarray,
                step: float = GRID_STEP, snaive: np.ndarray | None = None) -> np.ndarray:
    """The pooled weights (4,) from validation windows: network mean paths net (N, h), targets
    y (N, h) (NaN: gap), series mean minus level mean_offset (N,), series index (N,) of each
    window, seasonal naive paths snaive (N, h) (None: no such partner, weight 0; see the
    module docstring). No window with a known target: the network alone."""
    known = np.isfinite(y)
    grid = weight_grid(step, seasonal=snaive is not None)
    if not known.any():
        return grid[0]
    _, series = np.unique(series, return_inverse=True)
    count = np.bincount(series, weights=known.sum(axis=1))
    target = np.where(known, y, 0.0)
    offset = np.nan_to_num(mean_offset)[:, None]

    def per_series_mae(w: np.ndarray) -> np.ndarray:
        guess = w[0] * net + w[1] * offset
        if w[3]:
            guess = guess + w[3] * snaive
        errors = np.where(known, np.abs(guess - target), 0.0)
        return np.bincount(series, weights=errors.sum(axis=1)) / np.maximum(count, 1)

    own = per_series_mae(grid[0])
    usable = (count > 0) & (own > 0)  # a series the network forecasts exactly tells nothing
    if not usable.any():
        return grid[0]
    scores = [np.mean(per_series_mae(w)[usable] / own[usable]) for w in grid]
    return grid[int(np.argmin(scores))]
