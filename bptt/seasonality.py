"""Per-series seasonality taken out before scaling and put back after forecasting.

In the spirit of the hybrids that won M4 (ES-RNN: a per-series level and seasonality with a
global recurrent network on what remains), a model may train its network on each series with
its seasonal pattern removed, and add the pattern back to every forecast, so that no weight on a
flat partner of the combination can wash a stable season out. Three kinds:

- "none": the series as given (the network sees the season in its window);
- "additive": y - s(t), s the series' seasonal indices (a classical decomposition);
- "multiplicative": log y - s(t) on a series whose values are all positive (a multiplicative
  decomposition: a season whose amplitude grows with the level becomes a constant one); a
  series with a value <= 0 is decomposed additively instead.

Seasonal indices come from a classical decomposition of the last SEASONS_USED seasons of the
series (all of it when shorter): the centred moving average of order m (2 x m for even m) is
the trend, and index p is the mean of the detrended values at phase p, centred to sum to zero.
They are estimated from whatever history a forecast is given, so a forecast, a stateful append
and a cross-validation window all compute them the same way from the values before their origin,
and no phase is stored: position t of a history of n values has phase (t - n) mod m relative to
the first step after its end. A series shorter than MIN_SEASONS seasons gets zero indices.

The kind is one choice per model, made on the validation windows (choose_kind) and stored in
the model (a file without one: "none"), with per-series flags saying which training series were
log-transformed.
"""

from dataclasses import dataclass

import numpy as np

from .data import DataError, interpolate_gaps, rows_by_length, split_counts
from .spec import SEASONALITIES

KINDS = SEASONALITIES
SEASONS_USED = 10  # the indices follow the latest seasons, and a state keeps a bounded history
MIN_SEASONS = 2  # fewer complete seasons do not separate a season from the trend
LOG_FLAGS = "seasonality.log"  # (S,) 1 where a training series was log-transformed
INDICES = "seasonality.indices"  # (S, m) seasonal indices after each training series' end


def history_needed(m: int) -> int:
    """Values of a series' recent history that its seasonal indices are estimated from."""
    return SEASONS_USED * m if m > 1 else 0


def seasonal_indices(values: np.ndarray, m: int) -> np.ndarray:
    """(m,) the seasonal component of the m steps after the end of `values` (NaN: gap), from a
    classical decomposition of its last SEASONS_USED seasons; zeros when m < 2 or the series
    holds fewer than MIN_SEASONS seasons (plus the trend's half-windows at both ends)."""
    if m < 2 or len(values) < (MIN_SEASONS + 1) * m:
        return np.zeros(max(m, 1))
    recent = values[-history_needed(m):]
    y = interpolate_gaps(recent)  # for the trend; the indices average observed values only
    n = len(y)
    trend = centred_moving_average(y, m)  # NaN where the window does not fit
    detrended = np.where(np.isfinite(recent), y - trend, np.nan)
    phase = (np.arange(n) - n) % m  # relative to the first step after the end
    known = np.isfinite(detrended)
    sums = np.bincount(phase[known], weights=detrended[known], minlength=m)
    counts = np.bincount(phase[known], minlength=m)
    if not counts.all():  # a phase never observed: no season can be told
        return np.zeros(m)
    indices = sums / counts
    return indices - indices.mean()


def seasonal_indices_block(recent: np.ndarray, m: int) -> np.ndarray:
    """seasonal_indices of many series at once, to the bit: recent (S, n), each series' last
    n = min(its length, history_needed(m)) values, every series at least (MIN_SEASONS + 1) x m
    long. The trend is still each row's np.convolve (its sums are BLAS dot products, whose
    order nothing vectorised here repeats); a phase's sum adds its known values in position
    order, as np.bincount does."""
    count, n = recent.shape
    gaps = ~np.isfinite(recent)
    y = recent.copy()
    for row in np.flatnonzero(gaps.any(axis=1)):
        y[row] = interpolate_gaps(recent[row])
    weights = moving_average_weights(m)
    half = len(weights) // 2
    trend = np.full((count, n), np.nan)
    for row in range(count):
        trend[row, half:n - half] = np.convolve(y[row], weights, mode="valid")
    detrended = np.where(gaps, np.nan, y - trend)
    known = np.isfinite(detrended).T  # (n, S): a position's values lie together
    values = np.where(known, detrended.T, 0.0)  # +0.0 for a skipped value: the same sums
    phase = (np.arange(n) - n) % m
    sums, counts = np.zeros((m, count)), np.zeros((m, count), np.int64)
    for position in range(n):
        sums[phase[position]] += values[position]
        counts[phase[position]] += known[position]
    seen = counts.all(axis=0)
    indices = np.zeros((count, m))
    indices[seen] = (sums[:, seen] / counts[:, seen]).T
    indices[seen] -= indices[seen].mean(axis=1, keepdims=True)
    return indices


def adjusted_series(z: list[np.ndarray], indices: np.ndarray) -> list[np.ndarray]:
    """Each series z[i] with its seasonal indices laid over its history taken out (transform's
    z - seasonal_path(indices, len(z), -len(z)): the last value's phase is m - 1), series of
    one length at once."""
    m = indices.shape[1]
    out: list[np.ndarray] = [np.empty(0)] * len(z)
    for length, rows in rows_by_length(z).items():
        tiled = np.tile(indices[rows], -(-length // m))[:, -length:]
        for i, adjusted in zip(rows, np.stack([z[i] for i in rows]) - tiled, strict=True):
            out[i] = adjusted
    return out


def moving_average_weights(m: int) -> np.ndarray:
    """The centred moving average's weights: m of 1/m (2 x m for even m: 1/2m at both ends)."""
    weights = np.full(m + 1, 1.0 / m) if m % 2 == 0 else np.full(m, 1.0 / m)
    if m % 2 == 0:
        weights[[0, -1]] = 0.5 / m
    return weights


def centred_moving_average(y: np.ndarray, m: int) -> np.ndarray:
    """The centred moving average of order m (2 x m for even m: weights 1/2m at both ends), NaN
    where the window runs off the series."""
    weights = moving_average_weights(m)
    half = len(weights) // 2
    out = np.full(len(y), np.nan)
    out[half : len(y) - half] = np.convolve(y, weights, mode="valid")
    return out


def seasonal_path(indices: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """The indices laid over `length` positions starting `offset` steps after the end of the
    history they were estimated from (negative offset: positions inside it)."""
    return indices[(np.arange(length) + offset) % len(indices)]


def can_log(values: np.ndarray) -> bool:
    """Whether a series can be decomposed multiplicatively: every observed value positive."""
    observed = values[np.isfinite(values)]
    return bool(observed.size) and bool((observed > 0).all())


@dataclass
class Seasonality:
    """The kind a model's series were trained with, and which training series were logged."""

    kind: str  # one of KINDS
    m: int  # season length
    log: np.ndarray  # (S,) bool per training series
    # (S, m) each training series' seasonal indices for the steps after its end (zeros: none)
    indices: np.ndarray

    @classmethod
    def none(cls, count: int, m: int = 1) -> "Seasonality":
        """No transform (what a model file without one means)."""
        return cls("none", m, np.zeros(count, bool), np.zeros((count, max(m, 1))))

    @classmethod
    def fitted(cls, kind: str, m: int, series: list[np.ndarray]
               ) -> tuple["Seasonality", list[np.ndarray]]:
        """The transform of `kind` for these training series, and the series transformed."""
        logs = np.array([kind == "multiplicative" and can_log(v) for v in series], bool)
        season = cls(kind, m, logs, np.zeros((len(series), max(m, 1))))
        adjusted, season.indices = season.transform_all(series, logs)
        return season, adjusted

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def flags_for(self, ids: list[str], series_ids: list[str],
                  series: list[np.ndarray]) -> np.ndarray:
        """(S,) log flags for forecasts of series `ids`: a training series keeps its own (and
        must still be positive if logged), another is logged when the kind is multiplicative
        and it is positive."""
        flags = np.zeros(len(ids), bool)
        if not self.active:
            return flags
        index = {name: i for i, name in enumerate(series_ids)}
        for i, (name, values) in enumerate(zip(ids, series, strict=True)):
            if name in index:
                flags[i] = self.log[index[name]]
                if flags[i] and not can_log(values):
                    raise DataError(["series", i, "values"],
                                    f"series {name!r} was trained on its logarithm "
                                    "(multiplicative seasonality): its values must be positive")
            else:
                flags[i] = self.kind == "multiplicative" and can_log(values)
        return flags

    def transform(self, values: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
        """(the series with its season taken out, its indices (m,) for the steps after it)."""
        if not self.active:
            return values, np.zeros(max(self.m, 1))
        z = np.log(values) if log else values
        indices = seasonal_indices(z, self.m)
        return z - seasonal_path(indices, len(z), -len(z)), indices

    def transform_all(self, series: list[np.ndarray], logs: np.ndarray
                      ) -> tuple[list[np.ndarray], np.ndarray]:
        """transform for many series: (adjusted series, indices (S, m))."""
        if not self.active:
            return series, np.zeros((len(series), max(self.m, 1)))
        # the same numbers as transform's, series of one recent length at once: 48,000 series
        # one by one took 2.5 s, mostly numpy's per-call overhead
        z = [np.log(v) if f else v for v, f in zip(series, logs, strict=True)]
        indices = np.zeros((len(series), self.m))
        recent = history_needed(self.m)
        groups: dict[int, list[int]] = {}
        for i, values in enumerate(z):
            if len(values) >= (MIN_SEASONS + 1) * self.m:
                groups.setdefault(min(len(values), recent), []).append(i)
        for length, rows in groups.items():
            indices[rows] = seasonal_indices_block(np.stack([z[i][-length:] for i in rows]),
                                                   self.m)
        return adjusted_series(z, indices), indices

    def inverse(self, paths: np.ndarray, indices: np.ndarray, logs: np.ndarray) -> np.ndarray:
        """Paths (S, h, k) in the transformed series' units back to the series' own: the season
        added back, then exp where logged (quantiles stay quantiles: both are monotone)."""
        if not self.active:
            return paths
        h = paths.shape[1]
        season = indices[:, np.arange(h) % indices.shape[1]]  # (S, h): each seasonal_path
        out = paths + season[:, :, None]
        return np.where(logs[:, None, None], np.exp(np.minimum(out, 700.0)), out)

    def tensors(self) -> dict[str, np.ndarray]:
        """The arrays a model file stores for it."""
        return {LOG_FLAGS: self.log.astype(np.uint8),
                INDICES: np.asarray(self.indices, np.float64)}

    def card(self) -> dict:
        """The model card's description of it."""
        return {"kind": self.kind, "season_length": self.m, "log": f"{LOG_FLAGS} (series)",
                "indices": f"{INDICES} (series x m): after each training series' end",
                "seasons_used": SEASONS_USED,
                "rule": "the network forecasts z - s: z = log y for logged series, else y; s the "
                        "series' seasonal indices from a classical decomposition of the last "
                        f"{SEASONS_USED} seasons of the history a forecast is given; forecasts "
                        "add s back, then exp where logged"}

    @classmethod
    def pop(cls, tensors: dict[str, np.ndarray], card: dict, count: int) -> "Seasonality":
        """The transform of a model file (none for files written before transforms existed)."""
        flags, indices = tensors.pop(LOG_FLAGS, None), tensors.pop(INDICES, None)
        info = card.get("seasonality")
        if info is None or flags is None or indices is None:
            return cls.none(count)
        return cls(info["kind"], int(info["season_length"]), flags.astype(bool), indices)


def choose_kind(series: list[np.ndarray], m: int, input_size: int, horizon: int,
                validation_fraction: float) -> tuple[str, dict[str, float]]:
    """The kind with the lowest pooled validation error of its own classical forecast, and
    every offered kind's score. Each kind forecasts a validation window by its naive forecast
    of the adjusted series with the season put back: "none" the last value, "additive" and
    "multiplicative" the seasonally adjusted last value re-seasonalised (Naive2 of the M4
    competition, additive or multiplicative), with indices estimated from the history before
    the window's origin. A score is the mean over series of the validation MAE relative to
    the "none" forecast's, as the combination weights are scored. The windows are the ones
    make_windows holds out (the latest validation_fraction of each series' windows)."""
    offered = ["none"]
    if m > 1:
        offered.append("additive")
        if any(can_log(v) for v in series):
            offered.append("multiplicative")
    errors = {kind: [] for kind in offered}
    for values in series:
        per_kind = _validation_errors(values, m, input_size, horizon, validation_fraction,
                                      offered)
        if per_kind is None:
            continue
        for kind in offered:
            errors[kind].append(per_kind[kind])
    if len(offered) == 1 or not errors["none"]:
        return "none", {}
    base = np.array(errors["none"])
    usable = base > 0
    if not usable.any():
        return "none", {}
    scores = {k: float(np.mean(np.array(e)[usable] / base[usable])) for k, e in errors.items()}
    return min(offered, key=lambda k: (scores[k], offered.index(k))), scores


def _validation_errors(values: np.ndarray, m: int, input_size: int, horizon: int,
                       fraction: float, offered: list[str]) -> dict[str, float] | None:
    """Each offered kind's validation MAE on one series (None: no validation window)."""
    count = len(values) - input_size - horizon + 1
    if count < 1:
        return None
    _, n_val = split_counts(count, horizon, fraction)
    if not n_val:
        return None
    totals = dict.fromkeys(offered, 0.0)
    known_total = 0
    logged = can_log(values)
    for window in range(count - n_val, count):
        origin = input_size + window  # values[:origin] is what the window sees
        past, target = values[:origin], values[origin : origin + horizon]
        known = np.isfinite(target)
        if not known.any():
            continue
        known_total += int(known.sum())
        last = interpolate_gaps(past)[-1]
        for kind in offered:
            if kind == "none":
                guess = np.full(horizon, last)
            else:
                log = kind == "multiplicative" and logged
                z = np.log(past) if log else past
                indices = seasonal_indices(z, m)
                adjusted = interpolate_gaps(z)[-1] - indices[-1 % m]
                guess = adjusted + seasonal_path(indices, horizon)
                guess = np.exp(guess) if log else guess
            totals[kind] += float(np.abs(guess - target)[known].sum())
    if not known_total:
        return None
    return {kind: total / known_total for kind, total in totals.items()}
