"""From raw series to training windows: parsing, gaps, per-series scaling, windows, splits.

A window is `input_size` consecutive points and the `horizon` points after them. Inputs are the
series after per-series scaling and linear interpolation of gaps, then centred on the window's
last input value; targets are centred the same way but keep their gaps (NaN), which the loss
masks. Centring makes the network forecast changes from the last observation, which carries
trends and level shifts over to unseen series and windows.
"""

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

SeriesLike = Mapping[str, Iterable] | Iterable


class DataError(ValueError):
    """The series cannot be used as given; `loc` names the offending series or field."""

    def __init__(self, loc: list, msg: str) -> None:
        self.loc, self.msg = loc, msg
        super().__init__(f"{'.'.join(map(str, loc))}: {msg}")


@dataclass(frozen=True)
class Scaler:
    """Per-series affine scaling: scaled = (value - center) / scale."""

    kind: str
    center: float
    scale: float

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.center) / self.scale

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.center

    def to_dict(self) -> dict:
        return {"kind": self.kind, "center": self.center, "scale": self.scale}


def fit_scaler(kind: str, values: np.ndarray) -> Scaler:
    """Scaling parameters from a series' observed values.

    standard: mean and standard deviation; robust: median and IQR / 1.349 (the IQR of a normal
    distribution is 1.349 σ, so both put typical values on the same scale); minmax: minimum and
    range; none: identity. A constant series gets scale max(|center|, 1) instead of zero.
    """
    return fit_scalers(kind, [values])[0]


def fit_scalers(kind: str, series: list[np.ndarray]) -> list[Scaler]:
    """fit_scaler for many series at once: series of equal length are scaled in one vectorised
    pass (a forecast request may hold ten thousand of them)."""
    if kind not in ("none", "standard", "robust", "minmax"):
        raise ValueError(f"unknown scaler {kind!r}")
    out: list[Scaler | None] = [None] * len(series)
    for rows in rows_by_length(series).values():
        block = np.stack([series[i] for i in rows])  # (n, length), NaN for gaps
        for i, center, scale in zip(rows, *_centers_and_scales(kind, block), strict=True):
            if not scale > 1e-12 * max(abs(center), 1.0):
                scale = max(abs(center), 1.0)
            out[i] = Scaler(kind, float(center), float(scale))
    return out


def rows_by_length(series: list[np.ndarray], rows: Iterable[int] | None = None
                   ) -> dict[int, list[int]]:
    """The positions of the series (all, or those in `rows`) grouped by length: series of one
    length stack into one block for a vectorised pass."""
    groups: dict[int, list[int]] = {}
    for i in range(len(series)) if rows is None else rows:
        groups.setdefault(len(series[i]), []).append(i)
    return groups


def scaler_arrays(scalers: list[Scaler]) -> tuple[np.ndarray, np.ndarray]:
    """(centers (S,), scales (S,)) of the scalers, to apply every Scaler.transform or inverse
    at once (elementwise: the same numbers)."""
    return np.array([s.center for s in scalers]), np.array([s.scale for s in scalers])


def _centers_and_scales(kind: str, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row centre and scale of the observed values of (n, length) `block`."""
    if kind == "none":
        return np.zeros(len(block)), np.ones(len(block))
    if kind == "standard":
        return np.nanmean(block, axis=1), np.nanstd(block, axis=1)
    if kind == "robust":
        q1, median, q3 = np.nanpercentile(block, [25, 50, 75], axis=1)
        return median, (q3 - q1) / 1.349
    low, high = np.nanmin(block, axis=1), np.nanmax(block, axis=1)
    return low, high - low


def as_series(series: SeriesLike) -> list[tuple[str, np.ndarray]]:
    """Normalise the accepted shapes of input into [(id, float64 values with NaN gaps)].

    Accepted: {id: values}, [values, ...] (ids "0", "1", ...), or [{"id": ..., "values": [...]},
    ...]. None and NaN mark gaps; infinities, strings and empty series are errors.
    """
    if isinstance(series, Mapping):
        items = [(str(k), v) for k, v in series.items()]
    else:
        items = []
        for i, item in enumerate(series):
            if isinstance(item, Mapping):
                if "values" not in item:
                    raise DataError(["series", i, "values"], "field required")
                items.append((str(item.get("id", i)), item["values"]))
            else:
                items.append((str(i), item))
    if not items:
        raise DataError(["series"], "at least one series is required")
    out, seen = [], set()
    for i, (name, raw) in enumerate(items):
        if name in seen:
            raise DataError(["series", i, "id"], f"duplicate series id {name!r}")
        seen.add(name)
        out.append((name, _as_values(raw, ["series", i, "values"])))
    return out


# Exact types, checked at C speed with set(map(type, ...)): bools and strings are refused
# (numpy would quietly read True as 1 and "1.5" as 1.5).
_NUMBER_TYPES = frozenset({int, float, type(None), np.float64, np.float32, np.float16, np.int64,
                           np.int32, np.int16, np.int8, np.uint64, np.uint32, np.uint16,
                           np.uint8})


def _as_values(raw, loc: list) -> np.ndarray:
    if isinstance(raw, np.ndarray):
        values = raw.astype(np.float64) if raw.dtype.kind in "fiu" else None
    elif isinstance(raw, list | tuple) and set(map(type, raw)) <= _NUMBER_TYPES:
        values = np.array(raw, dtype=np.float64)  # None becomes NaN
    else:
        values = None
    if values is None:
        raise DataError(loc, "values must be numbers or null")
    if values.ndim != 1 or values.size == 0:
        raise DataError(loc, "must be a non-empty list of numbers")
    if np.isinf(values).any():
        raise DataError(loc, "values must be finite (use null for a gap)")
    if not np.isfinite(values).any():
        raise DataError(loc, "has no observed value")
    return values


def interpolate_gaps(values: np.ndarray) -> np.ndarray:
    """Fill NaN gaps linearly between neighbours, and with the nearest value at the ends."""
    known = np.isfinite(values)
    if known.all():
        return values.copy()
    positions = np.arange(values.size)
    return np.interp(positions, positions[known], values[known])


@dataclass
class Windows:
    """Training windows, ready for the engine."""

    x: np.ndarray  # (N, L, 1 + C) centred inputs, then C extra columns (if any)
    y: np.ndarray  # (N, h) centred targets, NaN where the series had a gap
    series: np.ndarray  # (N,) index of the series each window comes from
    # (N,) the scaled, gap-filled last input value each window is centred on, and the mean of
    # the series' observed scaled values up to it (what bptt.combination needs); None when unknown
    level: np.ndarray | None = None
    mean: np.ndarray | None = None
    # (N, E) what the head reads besides the last hidden state (a model with calendar
    # columns: the first target step's); None: nothing
    head: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: np.ndarray) -> "Windows":
        def part(array):
            return None if array is None else array[rows]

        return Windows(self.x[rows], self.y[rows], self.series[rows], part(self.level),
                       part(self.mean), part(self.head))


def window_inputs(filled: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The last `input_size` points of a scaled, gap-filled series, centred on the last one:
    (inputs (L,), level)."""
    tail = filled[-input_size:]
    return tail - tail[-1], tail[-1]


def make_windows(scaled: list[np.ndarray], input_size: int, horizon: int,
                 validation_fraction: float) -> tuple[Windows, Windows]:
    """Sliding windows of every series, split into (training, validation), built whole: for
    small problems and tests (training gathers its batches from a WindowIndex instead)."""
    train, val = index_windows(scaled, input_size, horizon, validation_fraction)
    return train.all(), val.all()


@dataclass(frozen=True, eq=False)
class ExtraInputs:
    """What a network reads besides the values, stored flat as the values are.

    `columns` (points, C) float32: each point's input columns after its value: `calendar`
    calendar columns (bptt.calendar_inputs), then the dynamic covariates (bptt.covariates).
    The head reads, in this order: the calendar columns of the first forecast step, the series'
    `static` row (S, static columns), and the value of each `future` column (positions in
    `columns`) at every forecast step minus its value at the window's last input step,
    step-major (centred on the origin as the targets are: bptt.covariates says why). Why every
    step's for the future covariates and the first step's alone for the calendar: a calendar
    step is a fixed (linear) function of the first, so the linear head can derive the others; a
    promotion on the fifth day is no function of the first day's.
    """

    columns: np.ndarray
    calendar: int = 0
    future: tuple[int, ...] = ()
    static: np.ndarray | None = None

    def head_width(self, horizon: int) -> int:
        static = 0 if self.static is None else self.static.shape[1]
        return self.calendar + static + horizon * len(self.future)

    def head(self, origin: np.ndarray, series: np.ndarray, horizon: int) -> np.ndarray | None:
        """(b, head_width) head features of windows whose first forecast step is at flat
        position `origin` (b,), of series `series` (b,); None when the head reads nothing."""
        parts = [self.columns[origin, :self.calendar]] if self.calendar else []
        if self.static is not None and self.static.shape[1]:
            parts.append(self.static[series])
        if self.future:
            steps = origin[:, None] + np.arange(horizon)
            future = list(self.future)
            ahead = self.columns[steps][:, :, future] - self.columns[origin - 1][:, None, future]
            parts.append(ahead.reshape(len(origin), -1))
        return np.concatenate(parts, axis=1).astype(np.float32) if parts else None


@dataclass(frozen=True, eq=False)
class SeriesArrays:
    """The scaled series stored once, flat: `values` with their NaN gaps, `filled` with the gaps
    interpolated, `mean` the expanding mean of the observed values (all float64, as long as the
    data); series i is [offsets[i], offsets[i + 1]). `extra`: the inputs besides the values
    (calendar columns, covariates), None without them."""

    values: np.ndarray
    filled: np.ndarray
    mean: np.ndarray
    offsets: np.ndarray
    extra: ExtraInputs | None = None

    @classmethod
    def of(cls, scaled: list[np.ndarray], extra: ExtraInputs | None = None) -> "SeriesArrays":
        offsets = np.zeros(len(scaled) + 1, np.int64)
        np.cumsum([len(v) for v in scaled], out=offsets[1:])
        empty = np.empty(0)
        if extra is not None and len(extra.columns) != offsets[-1]:
            raise ValueError(f"extra inputs have {len(extra.columns)} rows for {offsets[-1]} "
                             "points")
        return cls(np.concatenate([*scaled, empty]),
                   np.concatenate([*map(interpolate_gaps, scaled), empty]),
                   np.concatenate([*map(expanding_mean, scaled), empty]), offsets, extra)

    @property
    def extra_columns(self) -> int:
        return 0 if self.extra is None else self.extra.columns.shape[1]

    def tails(self, steps: int) -> np.ndarray:
        """(S, steps): each series' last `steps` gap-filled values."""
        return self.filled[self.offsets[1:, None] - steps + np.arange(steps)]

    def extra_tails(self, steps: int) -> np.ndarray | None:
        """(S, steps, C): each series' extra input columns over its last `steps` points."""
        if self.extra is None:
            return None
        return self.extra.columns[self.offsets[1:, None] - steps + np.arange(steps)]


GATHER_CHUNK = 4096  # windows gathered at once when a whole window set is evaluated


@dataclass(frozen=True, eq=False)
class WindowIndex:
    """Windows by index: window k reads series `series[k]` from position `start[k]` of the
    stored series (input_size inputs, then horizon targets). A batch is gathered when it is
    needed (gather), so a window set costs 12 bytes a window, never a window matrix."""

    data: SeriesArrays
    series: np.ndarray  # (N,) int32
    start: np.ndarray  # (N,) int64, within the series
    input_size: int
    horizon: int

    def __len__(self) -> int:
        return len(self.series)

    def take(self, rows: np.ndarray) -> "WindowIndex":
        return dataclasses.replace(self, series=self.series[rows], start=self.start[rows])

    def gather(self, rows: np.ndarray) -> Windows:
        """Windows `rows`, built as make_windows always built them: inputs from the gap-filled
        series centred on the last input, targets centred the same with their gaps kept. With
        extra inputs, each input step's columns follow its value, and the head reads what
        ExtraInputs.head gives."""
        first = self.data.offsets[self.series[rows]] + self.start[rows]  # (b,) first input
        steps = first[:, None] + np.arange(self.input_size)
        inputs = self.data.filled[steps]
        level = inputs[:, -1]
        targets = self.data.values[first[:, None] + self.input_size + np.arange(self.horizon)]
        mean = self.data.mean[first + self.input_size - 1]  # up to the window's origin
        x = (inputs - level[:, None])[:, :, None].astype(np.float32)
        head, extra = None, self.data.extra
        if extra is not None:
            x = np.concatenate([x, extra.columns[steps]], axis=2)
            head = extra.head(first + self.input_size, self.series[rows], self.horizon)
        return Windows(x, (targets - level[:, None]).astype(np.float32),
                       self.series[rows].astype(np.int64), level, mean, head)

    def all(self) -> Windows:
        """Every window, built whole (a validation set's size, never the training set's),
        gathered GATHER_CHUNK at a time into the result: only a chunk's float64 temporaries
        exist at once."""
        n, columns, extra = len(self), self.data.extra_columns, self.data.extra
        head = 0 if extra is None else extra.head_width(self.horizon)
        out = Windows(np.empty((n, self.input_size, 1 + columns), np.float32),
                      np.empty((n, self.horizon), np.float32), self.series.astype(np.int64),
                      np.empty(n), np.empty(n),
                      np.empty((n, head), np.float32) if head else None)
        names = ("x", "y", "level", "mean") + (("head",) if head else ())
        for first in range(0, n, GATHER_CHUNK):
            rows = slice(first, min(first + GATHER_CHUNK, n))
            chunk = self.gather(np.arange(rows.start, rows.stop))
            for name in names:
                getattr(out, name)[rows] = getattr(chunk, name)
        return out

    def chunks(self, size: int = GATHER_CHUNK):
        """Every window, `size` at a time."""
        for first in range(0, len(self), size):
            yield self.gather(np.arange(first, min(first + size, len(self))))

    def series_chunks(self, size: int = GATHER_CHUNK):
        """Every window, about `size` at a time, a chunk never splitting one series' windows
        (a series with more than `size` is a chunk of its own): sums per series over the
        chunks then add in the order one pass over all windows adds them, to the bit."""
        ends = np.flatnonzero(np.diff(self.series)) + 1  # where a series' windows begin
        bounds = np.concatenate([ends, [len(self)]])
        first = 0
        while first < len(self):
            # the last series boundary within size of first, or the next one past it
            fits = bounds[(bounds > first) & (bounds <= first + size)]
            last = int(fits[-1]) if fits.size else int(bounds[bounds > first][0])
            yield self.gather(np.arange(first, last))
            first = last


def index_windows(scaled: list[np.ndarray], input_size: int, horizon: int,
                  validation_fraction: float, extra: ExtraInputs | None = None
                  ) -> tuple[WindowIndex, WindowIndex]:
    """The sliding windows of every series, by index, split into (training, validation);
    `extra`: the inputs besides the values (SeriesArrays.extra), if any.

    Validation takes the latest windows of each series (validation_fraction of them, at least
    one when the fraction is positive); training keeps only the windows whose targets end before
    the first validation target, so no validation value is ever a training target.
    """
    data = SeriesArrays.of(scaled, extra)
    parts: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], [])}
    for index, values in enumerate(scaled):
        count = values.size - input_size - horizon + 1
        if count < 1:
            continue
        n_train, n_val = split_counts(count, horizon, validation_fraction)
        for part, starts in (("train", np.arange(n_train)),
                             ("val", np.arange(count - n_val, count))):
            parts[part][0].append(np.full(len(starts), index, np.int32))
            parts[part][1].append(starts)
    train, val = (WindowIndex(data, np.concatenate([*s, np.empty(0, np.int32)]),
                              np.concatenate([*p, np.empty(0, np.int64)]).astype(np.int64),
                              input_size, horizon)
                  for s, p in parts.values())
    return train, val


def split_counts(count: int, horizon: int, validation_fraction: float) -> tuple[int, int]:
    """(training, validation) windows of a series that yields `count` windows, as make_windows
    splits them: the latest ceil(fraction x count) for validation, and for training only the
    earlier windows whose targets end before the first validation target (all of them, and no
    validation, when too few remain)."""
    n_val = math.ceil(validation_fraction * count) if validation_fraction > 0 else 0
    last_train = count - n_val - horizon  # windows 0..last_train have disjoint targets
    if n_val == 0 or last_train < 0:
        return count, 0
    return last_train + 1, n_val


def window_counts(lengths: Iterable[int], input_size: int, horizon: int,
                  validation_fraction: float) -> tuple[int, int]:
    """(training, validation) windows that make_windows builds from series of these lengths,
    counted without building them (a series shorter than input_size + horizon yields none)."""
    train = val = 0
    for length in lengths:
        count = length - input_size - horizon + 1
        if count >= 1:
            n_train, n_val = split_counts(count, horizon, validation_fraction)
            train, val = train + n_train, val + n_val
    return train, val


def expanding_mean(values: np.ndarray) -> np.ndarray:
    """Mean of the observed values (gaps skipped) up to and including each point; NaN before
    the first observation."""
    known = np.isfinite(values)
    total = np.cumsum(np.where(known, values, 0.0))
    count = np.cumsum(known)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
