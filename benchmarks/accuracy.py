"""Forecast accuracy of bptt's defaults against naive, seasonal naive and AutoETS on held-out data.

Every series is forecast from several rolling origins (4 by default): at the k-th of n origins
the last (n - k) * h points are cut, each method sees only what remains but its last `h` points,
and forecasts those `h`, which are scored. The held-out horizons tile each series' last n * h
points; a method is refitted at every origin. A series' score is its mean over the origins (one
horizon of a random walk mostly measures the luck of its few points); the verdicts are given on
those means and on the last origin alone (the single-horizon protocol of earlier versions).

- MASE: mean absolute error over the in-sample mean absolute seasonal-naive error (lag m, lag 1
  when m = 1) of the training part; below 1 beats the in-sample seasonal naive.
- sMAPE: 200 · mean(|y - f| / (|y| + |f|)), in percent (a 0/0 term counts as 0).
- coverage: share of held-out values inside bptt's 10-90 % interval (nominal 80 %).
- oracle (synthetic series only): each process's own forecast, the conditional median of every
  held-out point given the data before the origin, computed with the process's true parameters
  (for the level shifts, whose level is hidden, by the exact Bayes filter of the jump process).
  No method seeing the same data has a lower expected MASE, yet on a given series the held-out
  points can still favour seasonal naive; the verdicts say on which series that happens and
  whether bptt beats seasonal naive on all the others.
- seconds per fit: wall time of one bptt.fit (one global model per dataset or synthetic group)
  and of one AutoETS fit (one local model per series). Kernels and AutoETS are warmed up first,
  so compile time is not counted.

bptt runs with its defaults: only horizon, season length and quantiles (0.1, 0.5, 0.9) are set.
bptt1 is the default ensemble's first member alone (what `training.ensemble = 1` trains), to
show what the ensemble's median gains; bpttnet is the network alone, without the combination
with the series' mean and the naive forecast that the model fits on its validation windows
(bptt.combination), to show what that gains.
Data: four synthetic groups (numpy, fixed seed) and real series that ship with statsmodels
(co2, sunspots, nile, elnino, macrodata) and statsforecast (AirPassengers). Nothing is
downloaded. AutoETS (statsforecast) is optional: without it that column is skipped.

    python benchmarks/accuracy.py             # the full tables (about three minutes)
    python benchmarks/accuracy.py --origins 1 # one held-out horizon per series
    python benchmarks/accuracy.py --quick     # a smoke run: one small group and one real series,
                                              # one origin unless --origins says otherwise
    python benchmarks/accuracy.py --seed 3    # other synthetic series
    python benchmarks/accuracy.py --oracle-seeds 40  # how often the oracle loses somewhere

Numbers depend on the seed and the machine (timings): rerun it rather than trust a copy.
"""

import argparse
import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import fftconvolve
from statsmodels.datasets import co2, elnino, macrodata, nile, sunspots

import bptt
from bptt.scores import mase, smape

try:
    from statsforecast.models import AutoETS
except ImportError:  # optional: the AutoETS column is skipped
    AutoETS = None

QUANTILES = (0.1, 0.5, 0.9)
# bptt1: the default ensemble's first member alone, i.e. what `training.ensemble = 1` trains
# (members train one after another from seeds seed, seed + 1, ...): what the ensemble gains.
# bpttnet: the network alone, without the model's combination (bptt.combination).
METHODS = ("bptt", "bptt1", "bpttnet", "naive", "snaive", "ets")
WITHOUT_ETS = tuple(m for m in METHODS if m != "ets")
# Rolling forecast origins per series: one held-out horizon per series says more about the
# luck of those h values than about a method (on a random walk the last value wins or loses
# by the noise of one point); the mean over 4 tiled horizons is steadier.
ORIGINS = 4
# A synthetic series comes with its oracle: oracle(n, h) is the process's own forecast of the h
# points after the first n: each point's conditional median given the series' first n values,
# computed with the process's true parameters. That is the forecast with the lowest expected
# absolute error, so the lowest expected MASE, that any method seeing the same data can reach.
# It is not a method (it knows the parameters and the kind of process); it shows where a
# series' held-out points favour seasonal naive whatever a forecaster does.
Oracle = Callable[[int, int], np.ndarray]


@dataclass
class Dataset:
    """Series that share a season length and horizon, fitted together by one bptt model."""

    name: str
    kind: str  # "synthetic" or "real"
    series: dict[str, np.ndarray]
    m: int
    h: int
    oracles: dict[str, Oracle] = field(default_factory=dict)  # synthetic series only


@dataclass
class SeriesScore:
    """The scores of every method on one series, one entry per forecast origin (oldest first)."""

    dataset: str
    kind: str
    name: str
    n_train: int  # at the last origin
    mase: dict[str, list[float]] = field(default_factory=dict)
    smape: dict[str, list[float]] = field(default_factory=dict)

    def add(self, method: str, actual: np.ndarray, forecast: np.ndarray | None,
            past: np.ndarray, m: int) -> None:
        """Score one origin's forecast (None: the method failed there, NaN scores)."""
        self.mase.setdefault(method, []).append(
            math.nan if forecast is None else mase(actual, forecast, past, m))
        self.smape.setdefault(method, []).append(
            math.nan if forecast is None else smape(actual, forecast))

    def score(self, metric: str, method: str, origin: str = "mean") -> float:
        """A metric's mean over the origins, or ("last") at the last origin alone."""
        values = getattr(self, metric).get(method, [math.nan])
        return float(values[-1]) if origin == "last" else float(np.mean(values))

    def origins_won(self, method: str) -> int:
        """At how many origins the method's MASE is below seasonal naive's."""
        pairs = zip(self.mase[method], self.mase["snaive"], strict=True)
        return sum(a < b for a, b in pairs)


@dataclass
class DatasetResult:
    """Per-series scores of one dataset plus its bptt fits' facts."""

    dataset: Dataset
    scores: list[SeriesScore]
    coverage: float  # pooled over the origins
    bptt_seconds: float  # mean over the origins' fits
    ets_seconds: float
    bptt_note: str  # the last origin's fit, or the first failed one's


# ---------------------------------------------------------------- synthetic data


def trend_season(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Oracle]:
    """Linear trend plus a sine of period 12 plus Gaussian noise."""
    t = np.arange(n)
    level, slope = rng.uniform(20, 100), rng.uniform(-0.1, 0.3)
    amplitude, phase = rng.uniform(2, 10), rng.uniform(0, 2 * np.pi)

    def signal(t: np.ndarray) -> np.ndarray:
        return level + slope * t + amplitude * np.sin(2 * np.pi * t / 12 + phase)

    values = signal(t) + rng.normal(0, rng.uniform(0.5, 2), n)
    return values, lambda origin, h: signal(np.arange(origin, origin + h))


def ar2(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Oracle]:
    """A stationary AR(2) process around a positive mean (after a burn-in)."""
    phi1 = rng.uniform(0.2, 1.3)
    phi2 = rng.uniform(-0.8, min(0.5, 0.95 - phi1))  # inside the stationary triangle
    burn = 200
    x = np.zeros(n + burn)
    noise = rng.normal(0, 1, n + burn)
    for i in range(2, n + burn):
        x[i] = phi1 * x[i - 1] + phi2 * x[i - 2] + noise[i]
    mean, x = rng.uniform(10, 50), x[burn:]

    def oracle(origin: int, h: int) -> np.ndarray:
        path = [x[origin - 2], x[origin - 1]]
        for _ in range(h):
            path.append(phi1 * path[-1] + phi2 * path[-2])
        return mean + np.array(path[2:])

    return mean + x, oracle


JUMP_RATE, JUMP_SD, NOISE_SD = 0.02, 5.0, 1.0  # of the level-shift process


def level_shifts(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Oracle]:
    """A random walk of rare jumps (2 % of steps) plus Gaussian noise."""
    jumps = rng.normal(0, JUMP_SD, n) * (rng.random(n) < JUMP_RATE)
    values = 50 + np.cumsum(jumps) + rng.normal(0, NOISE_SD, n)
    return values, lambda origin, h: level_shift_forecast(values[:origin], h)


def level_shift_forecast(past: np.ndarray, h: int, step: float = 0.05) -> np.ndarray:
    """The level-shift process's conditional medians of the h values after `past`: the exact
    Bayes filter of its level on a grid (the level is hidden: a value far from the last ones
    may be noise or a jump), then the predictive distribution h steps on."""
    pad = 6 * JUMP_SD
    grid = np.arange(past.min() - pad, past.max() + pad, step)
    offsets = np.arange(-pad, pad + step / 2, step)
    jump = np.exp(-0.5 * (offsets / JUMP_SD) ** 2)
    noise = np.exp(-0.5 * (offsets / NOISE_SD) ** 2)
    jump, noise = jump / jump.sum(), noise / noise.sum()

    def move(p: np.ndarray) -> np.ndarray:  # one step of the level: stay, or jump
        p = (1 - JUMP_RATE) * p + JUMP_RATE * fftconvolve(p, jump, mode="same")
        return np.clip(p, 0, None)

    p = np.ones_like(grid)
    for i, y in enumerate(past):
        if i:
            p = move(p)
        p = p * np.exp(-0.5 * ((y - grid) / NOISE_SD) ** 2)
        p /= p.sum()
    medians = []
    for _ in range(h):
        p = move(p)
        value = np.cumsum(fftconvolve(p, noise, mode="same"))
        medians.append(grid[np.searchsorted(value, value[-1] / 2)])
    return np.array(medians)


def multiplicative(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Oracle]:
    """A rising trend times a period-12 season whose amplitude grows with it, times noise."""
    base, slope = rng.uniform(50, 200), rng.uniform(0.2, 1.0)
    amplitude, phase = rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)

    def signal(t: np.ndarray) -> np.ndarray:
        return (base + slope * t) * (1 + amplitude * np.sin(2 * np.pi * t / 12 + phase))

    values = signal(np.arange(n)) * (1 + rng.normal(0, 0.03, n))
    return values, lambda origin, h: signal(np.arange(origin, origin + h))


SYNTHETIC: dict[str, tuple[Callable[[np.random.Generator, int], tuple[np.ndarray, Oracle]],
                           int, int]] = {
    "trend+season": (trend_season, 12, 12),
    "ar2": (ar2, 1, 8),
    "level shifts": (level_shifts, 1, 8),
    "mult. season": (multiplicative, 12, 12),
}


def synthetic(seed: int, per_group: int, lengths: tuple[int, int],
              groups: list[str]) -> list[Dataset]:
    """Synthetic groups of `per_group` series of random lengths in [lengths[0], lengths[1]]."""
    rng = np.random.default_rng(seed)
    out = []
    for group in groups:
        make, m, h = SYNTHETIC[group]
        made = {f"{group}-{i}": make(rng, int(rng.integers(lengths[0], lengths[1] + 1)))
                for i in range(per_group)}
        series = {name: values for name, (values, _) in made.items()}
        oracles = {name: oracle for name, (_, oracle) in made.items()}
        out.append(Dataset(group, "synthetic", series, m, h, oracles))
    return out


def full_synthetic(seed: int) -> list[Dataset]:
    """The full run's synthetic series: every group, 8 series of 100 to 300 points."""
    return synthetic(seed, 8, (100, 300), list(SYNTHETIC))


# ---------------------------------------------------------------- real data


def load_co2() -> Dataset:
    """Mauna Loa CO2, weekly, as monthly means with the few gaps interpolated."""
    weekly = co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().interpolate()
    return Dataset("co2", "real", {"co2": monthly.to_numpy(float)}, 12, 12)


def load_sunspots() -> Dataset:
    """Yearly sunspot activity, 1700-2008 (an ~11-year cycle)."""
    values = sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(float)
    return Dataset("sunspots", "real", {"sunspots": values}, 11, 10)


def load_nile() -> Dataset:
    """Yearly Nile volume at Aswan, 1871-1970."""
    values = nile.load_pandas().data["volume"].to_numpy(float)
    return Dataset("nile", "real", {"nile": values}, 1, 10)


def load_elnino() -> Dataset:
    """Monthly sea surface temperatures, the 12 month columns read row by row."""
    table = elnino.load_pandas().data
    values = table.drop(columns="YEAR").to_numpy(float).ravel()
    return Dataset("elnino", "real", {"elnino": values}, 12, 12)


def load_macrodata() -> Dataset:
    """US quarterly real GDP, CPI and unemployment, 1959-2009, as one multi-series fit."""
    table = macrodata.load_pandas().data
    series = {col: table[col].to_numpy(float) for col in ("realgdp", "cpi", "unemp")}
    return Dataset("macrodata", "real", series, 4, 8)


def load_air_passengers() -> Dataset | None:
    """Monthly airline passengers, 1949-1960, from statsforecast (None when not installed)."""
    try:
        from statsforecast.utils import AirPassengers
    except ImportError:
        return None
    return Dataset("airpassengers", "real",
                   {"airpassengers": np.asarray(AirPassengers, float)}, 12, 12)


def real(quick: bool) -> list[Dataset]:
    """The real datasets (only nile in a quick run)."""
    if quick:
        return [load_nile()]
    loaded = [load_co2(), load_sunspots(), load_nile(), load_elnino(), load_macrodata(),
              load_air_passengers()]
    return [d for d in loaded if d is not None]


# ---------------------------------------------------------------- methods and metrics


def naive(train: np.ndarray, h: int) -> np.ndarray:
    """The last value, repeated."""
    return np.full(h, train[-1])


def seasonal_naive(train: np.ndarray, h: int, m: int) -> np.ndarray:
    """The value one season back, repeated season after season."""
    return np.array([train[len(train) - m + i % m] for i in range(h)])


def auto_ets(train: np.ndarray, h: int, m: int) -> tuple[np.ndarray, float]:
    """AutoETS's mean forecast and its fitting wall time; NaN when it fails."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean = AutoETS(season_length=m).forecast(y=train, h=h)["mean"]
    except Exception as error:  # one failing series must not end the run
        print(f"  AutoETS failed (m={m}, n={len(train)}): {error}", file=sys.stderr)
        mean = np.full(h, np.nan)
    return np.asarray(mean, float), time.perf_counter() - start


def fit_bptt(train: dict[str, np.ndarray], h: int, m: int
             ) -> tuple[list[dict], list[dict], list[dict], float, str]:
    """bptt with its defaults on all series at once: forecasts, the first member's alone, the
    network's alone (no combination), fit seconds and a short note."""
    spec = bptt.TrainingSpec(horizon=h, season_length=m, quantiles=QUANTILES)
    start = time.perf_counter()
    result = bptt.fit(train, spec=spec)
    seconds = time.perf_counter() - start
    note = f"{len(result.stopped)} members; best epochs {result.best_epochs}; {result.stopped}"
    if result.model.combination is not None:
        weights = ", ".join(f"{w:.2f}" for w in result.model.combination.default)
        note += f"; combination (network, mean, naive) = ({weights})"
    single = dataclasses.replace(result.model, members=result.model.members[:1])
    network = dataclasses.replace(result.model, combination=None)
    return (bptt.forecast(result.model), bptt.forecast(single), bptt.forecast(network), seconds,
            note)


def evaluate(dataset: Dataset, origins: int) -> DatasetResult:
    """Forecast and score every series from `origins` rolling origins: at origin k (of n) the
    last (n - k) * h points are cut, each method sees all but the last h of what remains and
    forecasts those h. The held-out horizons tile the series' last n * h points."""
    h = dataset.h
    scores = {name: SeriesScore(dataset.name, dataset.kind, name, len(values) - h)
              for name, values in dataset.series.items()}
    inside = total = 0
    bptt_seconds, ets_seconds, note = [], [], ""
    for k in range(origins):
        series = {name: seen_at(values, h, origins, k) for name, values in dataset.series.items()}
        counts, seconds, ets, origin_note = evaluate_origin(dataset, series, scores)
        if not note.startswith("FAILED"):  # a failure at any origin stays in the note
            note = origin_note
        inside, total = inside + counts[0], total + counts[1]
        bptt_seconds.append(seconds)
        ets_seconds += ets
    coverage = inside / total if total else math.nan
    ets_mean = float(np.mean(ets_seconds)) if ets_seconds else math.nan
    return DatasetResult(dataset, list(scores.values()), coverage, float(np.mean(bptt_seconds)),
                         ets_mean, note)


def seen_at(values: np.ndarray, h: int, origins: int, k: int) -> np.ndarray:
    """What origin k of n sees of a series: all but the last (n - 1 - k) * h points (its own
    held-out h points are the last h of these)."""
    return values[:len(values) - (origins - 1 - k) * h]


def evaluate_origin(dataset: Dataset, series: dict[str, np.ndarray],
                    scores: dict[str, SeriesScore]
                    ) -> tuple[tuple[int, int], float, list[float], str]:
    """Hold out the last h points of every series, forecast them with every method and add the
    scores; returns (values inside bptt's interval, values), bptt's fit seconds, AutoETS's fit
    seconds per series and bptt's note."""
    h, m = dataset.h, dataset.m
    train = {name: values[:-h] for name, values in series.items()}
    test = {name: values[-h:] for name, values in series.items()}
    try:
        forecasts, singles, networks, bptt_seconds, note = fit_bptt(train, h, m)
        by_id = {f["id"]: f for f in forecasts}
        single_by_id = {f["id"]: f for f in singles}
        network_by_id = {f["id"]: f for f in networks}
    except Exception as error:  # reported, and in the exit status
        by_id, single_by_id, network_by_id, bptt_seconds = {}, {}, {}, math.nan
        note = f"FAILED: {type(error).__name__}: {error}"
    inside, total, ets_seconds = 0, 0, []
    for name, past in train.items():
        actual = test[name]
        predictions = {"naive": naive(past, h), "snaive": seasonal_naive(past, h, m)}
        if name in by_id:
            predictions["bptt"] = by_id[name]["mean"]
            predictions["bptt1"] = single_by_id[name]["mean"]
            predictions["bpttnet"] = network_by_id[name]["mean"]
            paths = by_id[name]["quantiles"]
            low, high = paths[QUANTILES[0]], paths[QUANTILES[-1]]
            inside += int(np.sum((actual >= low) & (actual <= high)))
            total += h
        if AutoETS is not None:
            predictions["ets"], seconds = auto_ets(past, h, m)
            ets_seconds.append(seconds)
        for method in METHODS:
            scores[name].add(method, actual, predictions.get(method), past, m)
        if name in dataset.oracles:
            scores[name].add("oracle", actual, dataset.oracles[name](len(past), h), past, m)
    return (inside, total), bptt_seconds, ets_seconds, note


def oracle_luck(seeds: int, origins: int) -> list[str]:
    """How often the oracle itself beats seasonal naive on every synthetic series: a table of
    the number of synthetic series it loses on, over seeds 0..seeds-1 (no fitting: seconds)."""
    lost = []
    for seed in range(seeds):
        every = []
        for dataset in full_synthetic(seed):
            h, m = dataset.h, dataset.m
            for name, values in dataset.series.items():
                score = SeriesScore(dataset.name, dataset.kind, name, len(values) - h)
                for k in range(origins):
                    seen = seen_at(values, h, origins, k)
                    past, actual = seen[:-h], seen[-h:]
                    score.add("oracle", actual, dataset.oracles[name](len(past), h), past, m)
                    score.add("snaive", actual, seasonal_naive(past, h, m), past, m)
                every.append(score)
        lost.append(len(every) - len(beats_snaive(every, "oracle", "mean")))
    counts = np.bincount(lost)
    return ([f"## The oracle against seasonal naive, synthetic series of seeds 0-{seeds - 1} "
             f"({origins} origins)\n",
             f"| synthetic series (of {len(every)}) the oracle loses on | seeds |", "|---|---|"]
            + [f"| {k} | {c} |" for k, c in enumerate(counts)]
            + ["", f"The oracle beats seasonal naive on every synthetic series at {counts[0]} of "
                   f"{seeds} seeds; it loses on {np.mean(lost):.2f} per seed on average."])


def warm_up() -> None:
    """Compile (or load) the bptt kernels and AutoETS once, so that timings exclude it."""
    rng = np.random.default_rng(0)
    series = {"warm": trend_season(rng, 80)[0]}
    fit_bptt(series, 4, 12)
    if AutoETS is not None:
        auto_ets(series["warm"], 4, 12)


# ---------------------------------------------------------------- report


def fmt(value: float, digits: int = 3) -> str:
    """A number for a table cell; n/a for NaN."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def mean_of(scores: list[SeriesScore], metric: str, method: str, origin: str = "mean") -> float:
    """Mean over series of a metric (each series' mean over the origins, or its last origin's);
    NaN when any is missing, so that failures are visible."""
    values = [s.score(metric, method, origin) for s in scores]
    return float(np.mean(values)) if values else math.nan


def dataset_table(results: list[DatasetResult]) -> list[str]:
    """One row per dataset: mean MASE and sMAPE per method, bptt coverage and fit time."""
    methods = METHODS if AutoETS is not None else WITHOUT_ETS
    head = (["dataset", "series", "m", "h"] + [f"MASE {x}" for x in methods]
            + [f"sMAPE {x}" for x in methods] + ["bptt cover 10-90", "bptt s/fit"])
    if AutoETS is not None:
        head.append("ETS s/fit")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        d = r.dataset
        cells = [d.name, str(len(d.series)), str(d.m), str(d.h)]
        cells += [fmt(mean_of(r.scores, "mase", x)) for x in methods]
        cells += [fmt(mean_of(r.scores, "smape", x), 2) for x in methods]
        cells += [fmt(100 * r.coverage, 1) + " %", fmt(r.bptt_seconds, 2)]
        if AutoETS is not None:
            cells.append(fmt(r.ets_seconds, 3))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def series_table(results: list[DatasetResult]) -> list[str]:
    """One row per series: MASE over the origins of bptt (and of its network alone) beside the
    naive's, the seasonal naive's, AutoETS's and (synthetic series) the oracle's; whether bptt,
    AutoETS and the oracle are below the seasonal naive; at how many origins bptt is; and the
    last origin's bptt and snaive MASE."""
    lines = ["| dataset | series | n train | MASE bptt | MASE bpttnet | MASE naive | MASE snaive | "
             "MASE ets | MASE oracle | bptt / snaive | bptt wins | ets wins | oracle wins | "
             "origins bptt wins | last origin bptt / snaive |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for s in r.scores:
            b, sn = s.score("mase", "bptt"), s.score("mase", "snaive")
            ets, oracle = s.score("mase", "ets"), s.score("mase", "oracle")
            last = (f"{fmt(s.score('mase', 'bptt', 'last'))} / "
                    f"{fmt(s.score('mase', 'snaive', 'last'))}")
            lines.append(f"| {s.dataset} | {s.name} | {s.n_train} | {fmt(b)} | "
                         f"{fmt(s.score('mase', 'bpttnet'))} | {fmt(s.score('mase', 'naive'))} | "
                         f"{fmt(sn)} | {fmt(ets)} | {fmt(oracle)} | "
                         f"{fmt(b / sn if sn else math.nan, 2)} | "
                         f"{_beats(b, sn)} | {_beats(ets, sn)} | {_beats(oracle, sn)} | "
                         f"{s.origins_won('bptt')} of {len(s.mase['bptt'])} | {last} |")
    return lines


def _beats(score: float, snaive: float) -> str:
    return "n/a" if not math.isfinite(score) else ("yes" if score < snaive else "**no**")


def beats_snaive(every: list[SeriesScore], method: str, origin: str) -> list[SeriesScore]:
    """The series on which a method's MASE is below seasonal naive's."""
    return [s for s in every
            if s.score("mase", method, origin) < s.score("mase", "snaive", origin)]


def summary(results: list[DatasetResult], origins: int) -> list[str]:
    """Mean MASE per method over the real series and over all series, and the verdicts: on
    the means over the origins, and on the last origin alone."""
    every = [s for r in results for s in r.scores]
    real_scores = [s for s in every if s.kind == "real"]
    synthetic_scores = [s for s in every if s.kind == "synthetic"]
    methods = METHODS if AutoETS is not None else WITHOUT_ETS
    lines = []
    for label, scores, shown in (("the {} real series", real_scores, methods),
                                 ("the {} synthetic series", synthetic_scores,
                                  (*methods, "oracle")),
                                 ("all {} series", every, methods)):
        if scores:
            parts = ", ".join(f"{x} {fmt(mean_of(scores, 'mase', x))}" for x in shown)
            lines.append(f"Mean MASE over {label.format(len(scores))}: {parts}")
    ensemble, single = mean_of(every, "mase", "bptt"), mean_of(every, "mase", "bptt1")
    change = 100 * (ensemble / single - 1)
    lines.append(f"Ensemble gain: mean MASE {fmt(ensemble)} for the median of the default "
                 f"ensemble vs {fmt(single)} for its first member alone (ensemble = 1): "
                 f"{fmt(abs(change), 1)} % {'lower' if change < 0 else 'higher'}")
    network = mean_of(every, "mase", "bpttnet")
    change = 100 * (ensemble / network - 1)
    lines.append(f"Combination gain: mean MASE {fmt(ensemble)} for the model's forecasts vs "
                 f"{fmt(network)} for its network alone (no combination with the series' mean "
                 f"and the naive forecast): {fmt(abs(change), 1)} % "
                 f"{'lower' if change < 0 else 'higher'}; the network alone beats seasonal "
                 f"naive on {len(beats_snaive(every, 'bpttnet', 'mean'))} of {len(every)}")
    over = f"MASE over the {origins} origins" if origins > 1 else "MASE"
    lines += verdict(every, "mean", over)
    if origins > 1:
        lines += verdict(every, "last", "the last origin alone (one held-out horizon)")
    if AutoETS is None:
        lines.append("bptt mean MASE < AutoETS mean MASE: n/a (statsforecast not installed)")
    else:
        b, e = mean_of(every, "mase", "bptt"), mean_of(every, "mase", "ets")
        answer = "n/a" if not (math.isfinite(b) and math.isfinite(e)) else (
            "yes" if b < e else "no")
        lines.append(f"bptt mean MASE < AutoETS mean MASE: {answer} ({fmt(b)} vs {fmt(e)})")
    return lines


def verdict(every: list[SeriesScore], origin: str, label: str) -> list[str]:
    """Whether bptt beats seasonal naive on every series (by `origin`'s MASE), and where the
    series it does not beat it on stand with AutoETS."""
    won = beats_snaive(every, "bptt", origin)
    lines = [f"bptt beats seasonal naive on every series, by {label}: "
             f"{'yes' if len(won) == len(every) else 'no'} ({len(won)} of {len(every)})"]
    lost = [s for s in every if s not in won]
    if AutoETS is not None:
        ets_won = beats_snaive(every, "ets", origin)
        shared = [s.name for s in lost if s not in ets_won]
        lines.append(f"  AutoETS beats seasonal naive on {len(ets_won)} of {len(every)}"
                     + (f"; of bptt's {len(lost)} losses, AutoETS loses too on "
                        f"{len(shared)}: {', '.join(shared) or '-'}" if lost else ""))
    elif lost:
        lines.append(f"  bptt's losses: {', '.join(s.name for s in lost)}")
    lines += oracle_verdict(every, won, origin)
    return lines


def oracle_verdict(every: list[SeriesScore], won: list[SeriesScore], origin: str) -> list[str]:
    """On the synthetic series: on how many the oracle (each process's own forecast, with its
    true parameters) beats seasonal naive, and whether bptt beats it on all of those. Where the
    oracle loses, the held-out points themselves favour seasonal naive."""
    synthetic = [s for s in every if math.isfinite(s.score("mase", "oracle", origin))]
    if not synthetic:
        return []
    oracle_won = beats_snaive(synthetic, "oracle", origin)
    oracle_lost = [s.name for s in synthetic if s not in oracle_won]
    missed = [s.name for s in oracle_won if s not in won]
    return [f"  The oracle beats seasonal naive on {len(oracle_won)} of {len(synthetic)} synthetic "
            f"series (loses on: {', '.join(oracle_lost) or '-'}); bptt beats it on every one "
            f"the oracle beats it on: {'yes' if not missed else 'no'}"
            + (f" (not on: {', '.join(missed)})" if missed else "")]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables; exit status 1 if any bptt fit failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one synthetic group of 2 short series and one real series")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic series")
    parser.add_argument("--origins", type=int,
                        help=f"rolling forecast origins per series (default {ORIGINS}; "
                             "1 with --quick)")
    parser.add_argument("--oracle-seeds", type=int, metavar="N",
                        help="only count, for seeds 0..N-1, the synthetic series on which the "
                             "oracle loses to seasonal naive (no fitting)")
    args = parser.parse_args(argv)
    origins = args.origins or (1 if args.quick else ORIGINS)
    if args.oracle_seeds:
        print("\n".join(oracle_luck(args.oracle_seeds, origins)))
        return 0

    began = time.perf_counter()
    if AutoETS is None:
        print("statsforecast is not installed: the AutoETS column is skipped.\n")
    warm_up()
    if args.quick:
        datasets = synthetic(args.seed, 2, (100, 120), ["trend+season"]) + real(quick=True)
    else:
        datasets = full_synthetic(args.seed) + real(quick=False)
    results = []
    for dataset in datasets:
        results.append(evaluate(dataset, origins))
        print(f"  {dataset.name}: bptt {results[-1].bptt_note} "
              f"({fmt(results[-1].bptt_seconds, 2)} s)", file=sys.stderr)

    print(f"## Forecast accuracy on held-out horizons (seed {args.seed}, {origins} origins)\n")
    print("Means over each dataset's series of each series' mean over the origins. bptt: "
          "defaults with horizon,\nseason length and quantiles set; snaive: seasonal naive; "
          "ets: statsforecast AutoETS.\nCoverage is nominally 80 %.\n")
    print("\n".join(dataset_table(results)))
    print()
    print("\n".join(summary(results, origins)))
    print("\n## Per-series MASE: bptt against seasonal naive\n")
    print("\n".join(series_table(results)))
    failed = [r for r in results if r.bptt_note.startswith("FAILED")]
    for r in failed:
        print(f"\nbptt on {r.dataset.name}: {r.bptt_note}")
    print(f"\nTotal wall time: {time.perf_counter() - began:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
