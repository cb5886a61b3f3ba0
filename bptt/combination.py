"""Forecast combination: the network's forecast with classical ones, weighted on validation.

A model's forecast of a series is a convex combination, weights >= 0 summing to 1, of the
forecasts of PARTNERS, all in the series' scaled (and, with a seasonal transform, seasonally
adjusted: bptt.seasonality) units and centred on the window's last value, as the network sees
them:

- "network": the network's mean path;
- "mean": the series' mean, a flat path at mean - level (its observed values' mean up to the
  forecast origin; the training mean, for a series the model was trained on). Only models
  fitted before "reverting" replaced it weigh it (see below);
- "naive": the last value, a flat path at 0;
- "snaive": the seasonal naive forecast, the window's values one season back, season after
  season (only with a season, m > 1, and an input window of at least m values; otherwise its
  weight is 0). Seasonal indices repeat every m steps, so in adjusted units too this is exactly
  the series' own seasonal naive forecast once the season is added back: a forecast that keeps
  whatever season the last m values show, as the one-line baseline does;
- "reverting": an AR(1) around the same mean, mean - level + phi^k (level - mean) at step k,
  phi fitted on the input window (reverting_paths): the mean's partner made safe. The mean
  matters because the network reads its window centred on the last value and so cannot see
  where that value stands against the series' long-run level; for stationary series (AR
  processes, say) reverting towards it is most of the forecast. But the flat mean jumps there
  at once whatever the series does, and a few validation windows that happened to revert put
  weight on it for series that had left their mean for good: on benchmarks/accuracy.py's heart
  rate (150 readings, one series, 7-10 overlapping validation windows) the weights swung to the
  mean at half the origins and the combination scored MASE 5.3 where the network alone scored
  3.1. The AR(1) reverts only as fast as the window's own persistence says (phi near 1 for a
  wandering series: the last value), so the same validation noise costs little. Measured on
  the benchmark (seed 0, 17 real series): mean MASE 1.106 with the mean, 0.963 with
  "reverting" instead, 1.057 with both offered (the noise found the mean again: heart rate
  4.5); the synthetic groups as before or better (AR(2) 1.075 -> 1.045).

It amounts to shrinking the network's forecast change towards no change, towards the season
and towards the series' mean: the classical combination of forecasts (Bates and Granger 1969;
the "Comb" benchmark and the combination-based winners of M4). Quantiles are combined the same
way (quantile averaging, Lichtendahl, Grushka-Cockayne and Winkler 2013), a classical partner's
quantiles being its point forecast: the combined band is the network's band around its mean,
shrunk by w_net, around the combined mean. The conformal calibration of the model
(calibration.conformal_offsets) is fitted on the combined paths and adds the spread the
partners' errors need. (Moving the network's whole band with the mean, as before, left a
trained network's quantiles worse than an untrained one's wherever the weights moved to a
seasonal partner: the network's band stayed as narrow as its own errors.)

The weights are fitted by fit_weights on the validation windows of every series (the latest
windows, which training never uses as targets; for each window the mean is the series' mean up
to that window's origin, so no validation target is ever seen). A weight's score is the mean
over series of its validation MAE relative to the network's own MAE (so a series' units do not
matter, nor its number of windows). The weights are not the one best of the convex weights on a
grid of step GRID_STEP over the OFFERED partners but the mean of the best ones under DRAWS
Bayesian bootstrap draws of that evidence (every window's errors and every series' ratio weighed
by an exponential draw, a fixed seed; on a tie the weight with more on the network): bagging the
choice (Breiman 1996). Where the evidence is decisive every draw picks the same weight and
nothing changes; where it is not, a single best weight sits at whichever corner the last few
windows' noise favours and jumps between corners from one fit to the next. On
benchmarks/accuracy.py's heart rate (one series of 150 readings, 7-10 overlapping validation
windows: under two independent horizons) the single best weights were, at the four origins of
seed 0, the reverting partner alone, the network alone, 0.35 network with 0.65 naive and the
reverting partner alone again, and the combination scored MASE 2.99 against the last value's
2.68; with the draws' mean 2.82. Measured there (the 17 real series, seeds 0-2, the same trained
networks weighted both ways): real mean MASE 0.981, 0.975, 0.978 with the single best weights
against 0.968, 0.963, 0.966 with the draws' mean, the geometric mean relative to seasonal naive
0.624, 0.623, 0.623 against 0.620, 0.618, 0.618 (400 draws, seed 2: 0.969); the synthetic
groups' means over the seeds within noise (before, now: AR(2) 1.230, 1.231; level shifts 1.027,
1.024; multiplicative season 0.750, 0.748; trend+season 0.538, 0.538). Not kept (real mean
MASE at seeds 0 and 1): the reverting partner's phi corrected for its small-sample bias,
phi + (1 + 3 phi) / (L - 1), 0.990 and 0.980; equal weights on the offered partners, 1.195 and
1.190; the single best weights shrunk towards equal ones by the evidence, 1.001 and 0.997.
One set of weights is fitted for all series of a model and stored per series (and as the
default for series the model was not trained on). Weights fitted on each series' own validation
windows alone were measured on benchmarks/accuracy.py (3 synthetic seeds, 120 series) to do
worse than these pooled ones, and worse than the network alone: a series has few, heavily
overlapping validation windows, too few to tell which forecast will be better after them;
shrinking per-series weights towards the pooled ones helped the more, the stronger the
shrinkage. The pooled weights lowered the mean MASE there. Also measured there (seed 0) and not
kept: simple and damped-trend exponential smoothing of the window (a grid of parameters per
window) as two more partners, real mean MASE 0.957 (0.963 without; the multiplicative-season
group 0.813 against 0.798, and O(N L G) work at forecast time); and shrinking the chosen
weights towards the network by the validation evidence (E independent horizons, share
E / (E + 1)): with those partners, 1.029 against 1.058 while the mean was offered, but 0.972
against 0.957 once "reverting" replaced it.
Without validation windows (validation_fraction 0) a model has no combination: the network only.
Files written with fewer partners (3 before seasonal naive, 4 before "reverting") load with
the missing weights 0 and forecast as they did.
"""

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .data import GATHER_CHUNK, rows_by_length, scaler_arrays

GRID_STEP = 0.05
GRID_BLOCK = 64  # candidate weights scored at once (WeightScores): bounds the temporaries
DRAWS = 100  # bootstrap draws of the validation evidence that fit_weights averages over
BOOTSTRAP_BLOCK_VALUES = 1 << 21  # bounds bootstrap_scores' temporaries (16 MB of float64)
BAGGED_WINDOWS = 4096  # up to this many validation windows, the weights are bagged (fitted)
PARTNERS = ("network", "mean", "naive", "snaive", "reverting")
# A new fit weighs all but "mean", which only forecasts for files fitted before "reverting"
# replaced it (see the module docstring).
OFFERED = ("network", "naive", "snaive", "reverting")
SNAIVE, REVERTING = PARTNERS.index("snaive"), PARTNERS.index("reverting")
WEIGHTS = "combination.weights"  # (S, P) per training series, in PARTNERS order
DEFAULT = "combination.default"  # (P,) for series the model was not trained on
MEANS = "series.means"  # (S,) scaled observed mean of each training series


def weight_grid(step: float = GRID_STEP, seasonal: bool = False) -> np.ndarray:
    """(G, P) convex weights on a grid over the OFFERED partners (w_mean 0), the network alone
    first and then in order of decreasing weight on the network (so that argmin favours it on
    ties); w_snaive is 0 unless `seasonal`."""
    n = round(1 / step)
    rows = [(a, 0, b, c, n - a - b - c) for a in range(n, -1, -1) for b in range(n - a + 1)
            for c in range(n - a - b + 1) if seasonal or c == 0]
    rows.sort(key=lambda r: -r[0])  # stable: within a network weight, the order above
    return np.array(rows, dtype=np.float64) / n


def padded(weights: np.ndarray) -> np.ndarray:
    """Weights of files written with fewer partners (..., 3 or 4), as (..., P): the partners
    added since weigh 0."""
    weights = np.asarray(weights, np.float64)
    missing = len(PARTNERS) - weights.shape[-1]
    if not missing:
        return weights
    return np.concatenate([weights, np.zeros((*weights.shape[:-1], missing))], axis=-1)


def has_seasonal_naive(m: int, length: int) -> bool:
    """Whether windows of `length` values have a seasonal naive forecast at season m."""
    return m >= 2 and length >= m


def seasonal_naive_paths(x: np.ndarray, m: int, horizon: int) -> np.ndarray | None:
    """(N, horizon) the seasonal naive forecast of centred windows x (N, L): the value one
    season back, season after season; None without a season or with L < m."""
    if not has_seasonal_naive(m, x.shape[1]):
        return None
    length = x.shape[1]
    return x[:, length - m + np.arange(horizon) % m]


def reverting_paths(x: np.ndarray, mean_offset: np.ndarray, horizon: int) -> np.ndarray:
    """(N, horizon) an AR(1) around the series' mean: the last value's distance from the mean
    shrinks by phi each step, phi the lag-1 autoregression (least squares through 0) of the
    window's distances from the mean, clipped to [0, 1]. A stationary series reverts to its
    mean as fast as its window says; a wandering one (phi near 1) stays near its last value.
    mean_offset (N,): series mean minus level (0 where unknown)."""
    offset = mean_offset[:, None]
    z = x - offset  # distances from the mean
    lagged = np.sum(z[:, :-1] * z[:, :-1], axis=1)
    phi = np.sum(z[:, 1:] * z[:, :-1], axis=1) / np.where(lagged > 0, lagged, 1.0)
    phi = np.clip(np.where(lagged > 0, phi, 1.0), 0.0, 1.0)
    return offset * (1.0 - phi[:, None] ** np.arange(1, horizon + 1))


def partner_paths(x: np.ndarray, mean_offset: np.ndarray, m: int,
                  horizon: int) -> tuple[np.ndarray, bool]:
    """The classical partners' forecasts of centred windows x (N, L): (paths (N, horizon,
    P - 1) in PARTNERS[1:] order, whether seasonal naive is one: without a season, or with a
    window shorter than it, its paths are 0 and its weight must be). mean_offset (N,): series
    mean minus level (NaN: unknown, no mean part). O(N L): no fitting beyond phi's sums."""
    offset = np.nan_to_num(mean_offset)
    out = np.zeros((x.shape[0], horizon, len(PARTNERS) - 1))
    out[:, :, 0] = offset[:, None]  # the naive part, [:, :, 1], is 0
    snaive = seasonal_naive_paths(x, m, horizon)
    if snaive is not None:
        out[:, :, SNAIVE - 1] = snaive
    out[:, :, REVERTING - 1] = reverting_paths(x, offset, horizon)
    return out, snaive is not None


@dataclass
class Combination:
    """Fitted combination weights of one model (see the module docstring)."""

    weights: np.ndarray  # (S, P) per training series, in the order of model.series_ids
    default: np.ndarray  # (P,) for any other series
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
                   averaged=weights.shape[-1] > 3)

    def card(self) -> dict:
        """The model card's description of it."""
        return {"partners": list(PARTNERS),
                "weights": f"{WEIGHTS} (series x {len(PARTNERS)}), {DEFAULT} "
                           f"({len(PARTNERS)}) for other series",
                "default": [float(w) for w in self.default],
                "rule": "mean path = w_net * network + w_mean * (series mean - level) "
                        "+ w_naive * 0 + w_snaive * (the input window's value one season back, "
                        "centred) + w_reverting * (series mean - level) * (1 - phi^k) at step "
                        "k, phi in [0, 1] the lag-1 least-squares autoregression of the input "
                        "window's distances from the series mean, in scaled units centred on "
                        "the last value (level); "
                        f"the series mean of a training series is {MEANS}, of another series "
                        "its own scaled mean; quantile k = mean path + w_net * (network "
                        "quantile k - network mean), then the conformal offsets"}

    def rows_for(self, ids: list[str], series_ids: list[str], levels: np.ndarray,
                 means: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(weights (S, P), partner means (S,)) for forecasts of series `ids`. A training
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
              levels: np.ndarray, x: np.ndarray, m: int,
              means: np.ndarray | None = None) -> np.ndarray:
        """Combined (S, h, 1 + Q) paths from the network's scaled, centred ones; x (S, L): the
        centred input windows the classical partners forecast from; m: the season length."""
        weights, partner = self.rows_for(ids, series_ids, levels, means)
        return self.combined(paths, weights, x, partner - levels, m)

    def combined(self, paths: np.ndarray, weights: np.ndarray, x: np.ndarray,
                 mean_offset: np.ndarray, m: int) -> np.ndarray:
        """combine with the partners' paths of windows x (N, L) (only those with weight)."""
        forecasts, _ = partner_paths(x, mean_offset, m, paths.shape[1])
        return combine(paths, weights, forecasts, self.averaged)


def combine(paths: np.ndarray, weights: np.ndarray, forecasts: np.ndarray,
            averaged: bool = True) -> np.ndarray:
    """Paths (N, h, 1 + Q) combined with weights (N, P): the mean is the weighted mean of the
    partners' forecasts, each quantile the weighted mean of the partners' quantiles (quantile
    averaging), where a classical partner's quantiles are its point forecast: so the combined
    quantile is the combined mean plus w_net times the network's distance from its own mean.
    The conformal calibration fitted on these paths supplies the rest of the spread.
    forecasts (N, h, P - 1): the classical partners' paths (partner_paths); averaged False: the
    quantiles move with the mean instead (files written before quantile averaging)."""
    net = paths[:, :, 0]
    combined = weights[:, :1] * net + np.einsum("np,nhp->nh", weights[:, 1:], forecasts)
    spread = paths[:, :, 1:] - net[:, :, None]
    if averaged:
        spread = weights[:, :1, None] * spread
    return np.concatenate([combined[:, :, None], combined[:, :, None] + spread], axis=2)


def fitted(model, windows, scaled: list[np.ndarray], chunk: int = GATHER_CHUNK,
           bagged_limit: int = BAGGED_WINDOWS) -> "Combination":
    """The combination of a freshly trained model (whose own forecasts are the network's),
    fitted on its validation windows `windows` (a data.WindowIndex), `chunk` windows at a
    time (whole series each: the weights are those of one pass over all of them, to the bit);
    scaled: its training series, scaled.

    Up to `bagged_limit` validation windows get the bagged weights of fit_weights (the mean of
    the best under bootstrap draws: few windows are weak, noisy evidence, see the module
    docstring), built at once; more get the single best weights, scored a chunk at a time
    (WeightScores): past that many windows the draws would cost DRAWS times the grid's work and
    memory while every draw picks nearly the same weights."""
    m = model.spec.season_length or 1
    seasonal = has_seasonal_naive(m, windows.input_size)
    if len(windows) <= bagged_limit:
        part = windows.all()
        net = model.quantile_paths(part.x.transpose(1, 0, 2), head_features=part.head)[:, :, 0]
        forecasts, _ = partner_paths(part.x[:, :, 0], part.mean - part.level, m, model.horizon)
        weights = fit_weights(net, part.y, forecasts, part.series, seasonal=seasonal)
        return Combination(np.tile(weights, (len(scaled), 1)), weights, series_means(scaled))
    scores = WeightScores(seasonal=seasonal)
    for part in windows.series_chunks(chunk):
        net = model.quantile_paths(part.x.transpose(1, 0, 2), head_features=part.head)[:, :, 0]
        forecasts, _ = partner_paths(part.x[:, :, 0], part.mean - part.level, m, model.horizon)
        scores.add(net, part.y, forecasts, part.series)
    weights = scores.best()
    return Combination(np.tile(weights, (len(scaled), 1)), weights, series_means(scaled))


def combined_paths(model, paths: np.ndarray, windows) -> np.ndarray:
    """The model's (N, h, 1 + Q) scaled, centred paths for training-style windows, combined
    as its forecasts are (each window's mean partner: its series' mean up to its origin), from
    its own paths of those windows (quantile_paths), in a new array."""
    if model.combination is None or windows.level is None:
        return paths
    combination = model.combination
    return model.shifted(combination.combined(
        paths, combination.weights[windows.series], windows.x[:, :, 0],
        windows.mean - windows.level, model.spec.season_length or 1))


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


def fit_weights(net: np.ndarray, y: np.ndarray, forecasts: np.ndarray, series: np.ndarray,
                step: float = GRID_STEP, seasonal: bool = True,
                draws: int = DRAWS) -> np.ndarray:
    """The pooled weights (P,) from validation windows: network mean paths net (N, h), targets
    y (N, h) (NaN: gap), the classical partners' paths forecasts (N, h, P - 1) (partner_paths),
    series index (N,) of each window, seasonal: whether seasonal naive may take weight (see the
    module docstring). The mean of the best grid weights of `draws` Bayesian bootstrap draws of
    the validation evidence (bootstrap_scores). No window with a known target: the network
    alone."""
    known = np.isfinite(y)
    grid = weight_grid(step, seasonal=seasonal)
    if not known.any():
        return grid[0]
    order = np.argsort(series, kind="stable")  # each series' windows together
    candidates = np.concatenate([net[:, :, None], forecasts], axis=2)[order]  # (N, h, P)
    scores = bootstrap_scores(candidates, y[order], series[order], grid, draws)
    if scores is None:
        return grid[0]
    return grid[np.argmin(scores, axis=0)].mean(axis=0)  # ties: more on the network


def bootstrap_scores(candidates: np.ndarray, y: np.ndarray, series: np.ndarray,
                     grid: np.ndarray, draws: int) -> np.ndarray | None:
    """(G, draws) each grid weight's score under each draw: the mean over series of its
    validation MAE relative to the network's, where every window's errors and every series'
    ratio carry a random weight, exponential with mean 1 (Rubin's Bayesian bootstrap), drawn
    from a fixed seed so that a fit is reproducible. candidates (N, h, P) and y (N, h) with
    each series' windows together (series (N,) sorted). None: no series to score on (no known
    target, or the network exact on every one)."""
    known = np.isfinite(y)
    unknown = ~known
    target = np.where(known, y, 0.0)
    starts = np.flatnonzero(np.r_[True, series[1:] != series[:-1]])  # each series' first row
    rng = np.random.default_rng(0)
    window_weights = rng.exponential(size=(len(y), draws))
    series_weights = rng.exponential(size=(len(starts), draws))
    count = np.add.reduceat(known.sum(axis=1)[:, None] * window_weights, starts)  # (S, draws)
    divisor = np.where(count > 0, count, 1.0)

    # grid weights scored at once: their (N, h, block) paths stay under BOOTSTRAP_BLOCK_VALUES
    block = max(1, BOOTSTRAP_BLOCK_VALUES // (len(y) * y.shape[1]))

    def errors(weights: np.ndarray) -> np.ndarray:  # (N, block): each window's summed |error|
        deviations = candidates @ weights.T  # (N, h, block) paths, then their |errors|
        deviations -= target[:, :, None]
        np.abs(deviations, out=deviations)
        deviations[unknown] = 0.0
        return deviations.sum(axis=1)

    own = np.add.reduceat(errors(grid[:1]) * window_weights, starts) / divisor  # (S, draws)
    usable = (count[:, 0] > 0) & (own[:, 0] > 0)  # a series the network forecasts exactly
    if not usable.any():  # tells nothing
        return None
    share = series_weights[usable] / series_weights[usable].sum(axis=0)
    # A weight's score, the sum over series of share · MAE / own, is linear in its windows'
    # errors: each window carries one coefficient per draw, and a block of weights is scored
    # by one matrix product (a loop over the weights took 4.6 s for 4,000 windows).
    per_series = np.zeros_like(own)
    per_series[usable] = share / (divisor[usable] * own[usable])
    lengths = np.diff(np.r_[starts, len(y)])
    coefficients = window_weights * np.repeat(per_series, lengths, axis=0)  # (N, draws)
    scores = np.empty((len(grid), draws))
    for first in range(0, len(grid), block):
        scores[first : first + block] = errors(grid[first : first + block]).T @ coefficients
    return scores


class WeightScores:
    """The single best grid weights (fit_weights without the bootstrap draws) over windows
    given a chunk at a time, in O(chunk + grid) memory: a chunk's
    series are scored whole (data.WindowIndex.series_chunks never splits one), and each
    candidate's sum over series of (its MAE / the network's own) is kept exactly (ExactSums):
    the weights do not depend on how the windows were chunked, to the bit."""

    def __init__(self, step: float = GRID_STEP, seasonal: bool = True) -> None:
        self.grid = weight_grid(step, seasonal=seasonal)
        self.ratios = ExactSums(len(self.grid))
        self.usable = 0  # series that tell something (known targets, network not exact)

    def add(self, net: np.ndarray, y: np.ndarray, forecasts: np.ndarray,
            series: np.ndarray) -> None:
        """Windows' network mean paths net (N, h), targets y (N, h), partners' paths
        (N, h, P - 1) and series index (N,): every window of each series named, in order."""
        _, series = np.unique(series, return_inverse=True)  # 0.. within the chunk
        known = np.isfinite(y)
        count = np.bincount(series, weights=known.sum(axis=1))
        target = np.where(known, y, 0.0)
        candidates = np.concatenate([net[:, :, None], forecasts], axis=2)  # (N, h, P)

        def per_series_mae(w: np.ndarray) -> np.ndarray:
            errors = np.where(known, np.abs(candidates @ w - target), 0.0)
            return np.bincount(series, weights=errors.sum(axis=1)) / np.maximum(count, 1)

        own = per_series_mae(self.grid[0])
        usable = (count > 0) & (own > 0)  # a series the network forecasts exactly tells nothing
        if usable.any():
            self.usable += int(usable.sum())
            for first in range(0, len(self.grid), GRID_BLOCK):  # a block of candidates at once
                block = self.grid[first:first + GRID_BLOCK]
                self.ratios.add(first, np.stack([per_series_mae(w)[usable] / own[usable]
                                                 for w in block]))

    def best(self) -> np.ndarray:
        """The weights (P,) of least mean ratio of per-series MAE to the network's own (the
        network alone when no series tells anything)."""
        if not self.usable:
            return self.grid[0]
        scores = self.ratios.totals() / self.usable
        return self.grid[int(np.argmin(scores))]


class ExactSums:
    """Per row, the sum of float64 values added a block of columns at a time, correctly
    rounded whatever the blocks: each value is split into two integers (26 and 27 bits of its
    significand) per binary exponent, summed per (exponent, row) in float64, which is exact
    for up to 2^26 values, and the pieces are joined as Python integers at the end. Only the
    exponents that occur are touched (the zeros of the rest are never paged in)."""

    EXPONENTS = 2200  # frexp's exponents, -1073..1024, offset by OFFSET
    OFFSET = 1100

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.high = np.zeros((self.EXPONENTS, rows))
        self.low = np.zeros((self.EXPONENTS, rows))
        self.other = np.zeros(rows)  # infinities and NaN, which no order changes
        self.used: set[int] = set()  # the rows of high and low ever added to

    def add(self, first: int, values: np.ndarray) -> None:
        """values (k, n) into the sums of rows first..first + k."""
        rows = slice(first, first + len(values))
        finite = np.isfinite(values)
        self.other[rows] += np.where(finite, 0.0, values).sum(axis=1)
        significand, exponent = np.frexp(np.where(finite, values, 0.0))
        whole = np.ldexp(significand, 53)  # an integer, |whole| < 2^53
        high = np.floor(whole / 2.0**27)
        low = int(exponent.min())
        span = int(exponent.max()) - low + 1
        keys = ((exponent - low) * len(values) + np.arange(len(values))[:, None]).ravel()
        shape = (span, len(values))
        exponents = range(low + self.OFFSET, low + self.OFFSET + span)
        self.used.update(exponents)
        where = (slice(exponents.start, exponents.stop), rows)
        self.high[where] += np.bincount(keys, high.ravel(), span * len(values)).reshape(shape)
        self.low[where] += np.bincount(keys, (whole - high * 2.0**27).ravel(),
                                       span * len(values)).reshape(shape)

    def totals(self) -> np.ndarray:
        """(rows,) each row's sum, correctly rounded."""
        out = np.empty(self.rows)
        used = sorted(self.used)
        for row in range(self.rows):
            total = 0
            for e in used:  # value = whole * 2^(exponent - 53)
                piece = (int(self.high[e, row]) << 27) + int(self.low[e, row])
                total += piece << e  # scaled by 2^(53 + OFFSET) for every exponent
            out[row] = float(Fraction(total, 2 ** (53 + self.OFFSET))) + self.other[row]
        return out
