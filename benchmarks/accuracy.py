"""Forecast accuracy of bptt's defaults against naive, seasonal naive, AutoETS, AutoARIMA and
AutoTheta on held-out data.

Every series is forecast from several rolling origins (4 by default): at the k-th of n origins
the last (n - k) * h points are cut, each method sees only what remains but its last `h` points,
and forecasts those `h`, which are scored. The held-out horizons tile each series' last n * h
points; a method is refitted at every origin. A series' score is its mean over the origins.

- MASE: mean absolute error over the in-sample mean absolute seasonal-naive error (lag m, lag 1
  when m = 1) of the training part; below 1 beats the in-sample seasonal naive.
- relative to seasonal naive: a series' MASE over seasonal naive's; a group's geometric mean of
  it (the M4 competition's way to pool relative errors: one series' blow-up does not swamp it).
- sMAPE: 200 · mean(|y - f| / (|y| + |f|)), in percent (a 0/0 term counts as 0).
- coverage: share of held-out values inside bptt's 10-90 % interval (nominal 80 %).
- oracle (synthetic series only): each process's own forecast, the conditional median of every
  held-out point given the data before the origin, computed with the process's true parameters
  (for the level shifts, whose level is hidden, by the exact Bayes filter of the jump process).
  No method seeing the same data has a lower expected MASE.

bptt runs with its defaults: only horizon, season length, quantiles (0.1, 0.5, 0.9) and the
training seed are set. bptt1 is the default ensemble's first member alone (what
`training.ensemble = 1` trains); bpttnet is the network alone, without the model's combination
(bptt.combination) but with its seasonality (bptt.seasonality).
Data: four synthetic groups (numpy, seeded) and 17 real series that ship inside statsmodels,
statsforecast and pmdarima (benchmarks/_real_series.py says which and where from). Nothing is
downloaded. AutoETS, AutoARIMA and AutoTheta (statsforecast) are optional columns.

    python benchmarks/accuracy.py                 # the full tables, seed 0
    python benchmarks/accuracy.py --seeds 0,1,2   # means over three seeds (the targets')
    python benchmarks/accuracy.py --only real     # the real series only
    python benchmarks/accuracy.py --only covariates  # the covariate group (see
                                                  # benchmarks/_covariate_eval.py); with --json
                                                  # and --report as the others; --quick: two
                                                  # series of each synthetic dataset, one
                                                  # member of 200 updates (a smoke run)
    python benchmarks/accuracy.py --quick         # a smoke run: one small group and one real
                                                  # series, one origin unless --origins says
    python benchmarks/accuracy.py --oracle-seeds 40  # how often the oracle loses somewhere
    python benchmarks/accuracy.py --seasonality none  # an ablation: force one seasonality
    python benchmarks/accuracy.py --only real --calendar off  # calendar features: off, cyclic,
                                                  # onehot or auto (the default, as bptt's)
    python benchmarks/accuracy.py --only real --json a.json  # keep the results; then
    python benchmarks/accuracy.py --report a.json,b.json     # print runs of parts as one
    PYTHONPATH=../main python benchmarks/accuracy.py --bptt-only --only synthetic --json m.json
                                    # another checkout's bptt (main's, say) on the same series

A seed sets the synthetic series and bptt's training seed; the classical methods' forecasts of
the real series do not depend on it and are computed once per run. Numbers depend on the seed
and the machine (timings): rerun it rather than trust a copy.
"""

import argparse
import dataclasses
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmark's own modules

import _covariate_eval as covariate_group  # noqa: E402
from _real_series import DATES, real_series  # noqa: E402
from _synthetic import (  # noqa: E402, F401  (the oracle's pieces are used by the tests)
    NOISE_SD,
    SYNTHETIC,
    Dataset,
    full_synthetic,
    level_shift_forecast,
    synthetic,
    trend_season,
)

import bptt  # noqa: E402
from bptt.scores import mase, smape  # noqa: E402

try:
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta
except ImportError:  # optional: the classical columns are skipped
    AutoARIMA = AutoETS = AutoTheta = None

QUANTILES = (0.1, 0.5, 0.9)
CLASSICAL = {"ets": AutoETS, "arima": AutoARIMA, "theta": AutoTheta}
# bptt1: the default ensemble's first member alone; bpttnet: the network without the model's
# combination (bptt.combination).
METHODS = ("bptt", "bptt1", "bpttnet", "naive", "snaive",
           *(name for name, model in CLASSICAL.items() if model is not None))
ORIGINS = 4
SLACK = 1.1  # the target: nowhere bptt > SLACK x seasonal naive while AutoETS beats it


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

    def score(self, metric: str, method: str) -> float:
        """A metric's mean over the origins."""
        return float(np.mean(getattr(self, metric).get(method, [math.nan])))


@dataclass
class DatasetResult:
    """Per-series scores of one dataset at one seed, plus its bptt fits' facts."""

    dataset: Dataset
    scores: list[SeriesScore]
    inside: int  # held-out values inside bptt's 10-90 % interval, over the origins
    total: int
    outside_band: int  # forecast steps whose mean lies outside bptt's own 10-90 % interval
    bptt_seconds: float  # mean over the origins' fits
    bptt_note: str  # the last origin's fit, or the first failed one's

    @property
    def coverage(self) -> float:
        return self.inside / self.total if self.total else math.nan


# ---------------------------------------------------------------- data


def real(quick: bool) -> list[Dataset]:
    """The real datasets (only nile in a quick run)."""
    return [Dataset(name, "real", series, m, h, freq=freq, source=source, dates=DATES.get(name))
            for name, series, m, h, freq, source in real_series(quick)]


def select(datasets: list[Dataset], only: str | None) -> list[Dataset]:
    """The datasets named in `only` (comma-separated names, or "real" / "synthetic")."""
    if not only:
        return datasets
    wanted = set(only.split(","))
    return [d for d in datasets if d.name in wanted or d.kind in wanted]


# ---------------------------------------------------------------- methods


def naive(train: np.ndarray, h: int) -> np.ndarray:
    """The last value, repeated."""
    return np.full(h, train[-1])


def seasonal_naive(train: np.ndarray, h: int, m: int) -> np.ndarray:
    """The value one season back, repeated season after season."""
    return np.array([train[len(train) - m + i % m] for i in range(h)])


CACHE: dict[tuple, dict[str, np.ndarray]] = {}  # classical forecasts of real series, per run
SKIP_CLASSICAL = False  # --bptt-only


def load_cache(path: str) -> None:
    """Classical forecasts of real series saved by an earlier run (--cache), if any."""
    if Path(path).exists():
        for key, methods in json.loads(Path(path).read_text()).items():
            CACHE[tuple(json.loads(key))] = {m: np.array(v, float) for m, v in methods.items()}


def save_cache(path: str) -> None:
    """Write the classical forecasts of real series computed so far (--cache)."""
    data = {json.dumps(list(key)): {m: v.tolist() for m, v in methods.items()}
            for key, methods in CACHE.items()}
    Path(path).write_text(json.dumps(data))


def classical(key: tuple, train: np.ndarray, h: int, m: int) -> dict[str, np.ndarray]:
    """AutoETS's, AutoARIMA's and AutoTheta's mean forecasts (NaN where one fails), computed
    once per `key` (their forecasts of a real series do not depend on the seed)."""
    if key in CACHE:
        return CACHE[key]
    out = {}
    if SKIP_CLASSICAL:
        return out
    for name, model in CLASSICAL.items():
        if model is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = np.asarray(model(season_length=m).forecast(y=train, h=h)["mean"],
                                       float)
        except Exception as error:  # one failing series must not end the run
            print(f"  {name} failed (m={m}, n={len(train)}): {error}", file=sys.stderr)
            out[name] = np.full(h, np.nan)
    if key[0] == "real":
        CACHE[key] = out
    return out


SEASONALITY: dict[str, str] = {}  # --seasonality: the spec's seasonality, for an ablation
CALENDAR: dict[str, str] = {}  # --calendar: the spec's calendar choice


def fit_bptt(train: dict[str, np.ndarray], h: int, m: int, seed: int,
             dates: tuple[str, str] | None = None
             ) -> tuple[list[dict], list[dict], list[dict], float, str]:
    """bptt with its defaults on all series at once: forecasts, the first member's alone, the
    network's alone (no combination), fit seconds and a short note. `dates`: the series'
    (start, freq), for the calendar features."""
    # an encoding applies where the dates carry a calendar (elsewhere bptt refuses it): the
    # other datasets keep the default, which is off for them
    calendar = CALENDAR if dates is not None and has_calendar(dates[1]) else {}
    spec = bptt.TrainingSpec(horizon=h, season_length=m, quantiles=QUANTILES, **SEASONALITY,
                             **calendar)
    spec = dataclasses.replace(spec, training=dataclasses.replace(spec.training, seed=seed))
    when = {} if dates is None else {"start": dates[0], "freq": dates[1]}
    start = time.perf_counter()
    result = bptt.fit([{"id": name, "values": values, **when} for name, values in train.items()],
                      spec=spec)
    seconds = time.perf_counter() - start
    model = result.model
    note = f"{len(result.stopped)} members; best epochs {result.best_epochs}"
    seasonality = getattr(model, "seasonality", None)
    if seasonality is not None:
        note += f"; seasonality {seasonality.kind}"
    calendar = getattr(model, "calendar", None)
    if calendar is not None:
        note += f"; calendar {calendar.encoding} ({calendar.columns} columns)"
    if model.combination is not None:
        weights = ", ".join(f"{w:.2f}" for w in model.combination.default)
        note += f"; combination ({', '.join(bptt.combination.PARTNERS)}) = ({weights})"
    single = dataclasses.replace(model, members=model.members[:1])
    network = dataclasses.replace(model, combination=None)
    return bptt.forecast(model), bptt.forecast(single), bptt.forecast(network), seconds, note


def has_calendar(freq: str) -> bool:
    """Whether steps of `freq` resolve a calendar cycle (bptt.calendar_features)."""
    from bptt.calendar_features import cycles_for

    return bool(cycles_for(bptt.parse_freq(freq)))


# ---------------------------------------------------------------- evaluation


def seen_at(values: np.ndarray, h: int, origins: int, k: int) -> np.ndarray:
    """What origin k of n sees of a series: all but the last (n - 1 - k) * h points (its own
    held-out h points are the last h of these)."""
    return values[:len(values) - (origins - 1 - k) * h]


def evaluate(dataset: Dataset, origins: int, seed: int) -> DatasetResult:
    """Forecast and score every series from `origins` rolling origins."""
    h = dataset.h
    scores = {name: SeriesScore(dataset.name, dataset.kind, name, len(values) - h)
              for name, values in dataset.series.items()}
    counts = np.zeros(3, int)  # inside, total, outside_band
    seconds, note = [], ""
    for k in range(origins):
        series = {name: seen_at(values, h, origins, k) for name, values in dataset.series.items()}
        origin_counts, fit_seconds, origin_note = evaluate_origin(dataset, series, scores, k,
                                                                  seed)
        if not note.startswith("FAILED"):  # a failure at any origin stays in the note
            note = origin_note
        counts += origin_counts
        seconds.append(fit_seconds)
    return DatasetResult(dataset, list(scores.values()), *map(int, counts),
                         float(np.mean(seconds)), note)


def evaluate_origin(dataset: Dataset, series: dict[str, np.ndarray],
                    scores: dict[str, SeriesScore], k: int, seed: int
                    ) -> tuple[np.ndarray, float, str]:
    """Hold out the last h points of every series, forecast them with every method and add the
    scores; returns (inside, total, outside_band), bptt's fit seconds and its note."""
    h, m = dataset.h, dataset.m
    train = {name: values[:-h] for name, values in series.items()}
    test = {name: values[-h:] for name, values in series.items()}
    try:
        forecasts, singles, networks, bptt_seconds, note = fit_bptt(train, h, m, seed,
                                                                    dataset.dates)
        by_id = {f["id"]: f for f in forecasts}
        single_by_id = {f["id"]: f for f in singles}
        network_by_id = {f["id"]: f for f in networks}
    except Exception as error:  # reported, and in the exit status
        by_id, single_by_id, network_by_id, bptt_seconds = {}, {}, {}, math.nan
        note = f"FAILED: {type(error).__name__}: {error}"
    counts = np.zeros(3, int)
    for name, past in train.items():
        actual = test[name]
        filled = bptt.data.interpolate_gaps(past)  # the classical methods take no gaps
        predictions = {"naive": naive(filled, h), "snaive": seasonal_naive(filled, h, m)}
        if name in by_id:
            predictions["bptt"] = by_id[name]["mean"]
            predictions["bptt1"] = single_by_id[name]["mean"]
            predictions["bpttnet"] = network_by_id[name]["mean"]
            paths = by_id[name]["quantiles"]
            low, high = paths[QUANTILES[0]], paths[QUANTILES[-1]]
            counts += [int(np.sum((actual >= low) & (actual <= high))), h,
                       int(np.sum((predictions["bptt"] < low) | (predictions["bptt"] > high)))]
        predictions.update(classical((dataset.kind, dataset.name, name, k), filled, h, m))
        for method in METHODS:
            scores[name].add(method, actual, predictions.get(method), past, m)
        if name in dataset.oracles:
            scores[name].add("oracle", actual, dataset.oracles[name](len(past), h), past, m)
    return counts, bptt_seconds, note


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
        lost.append(sum(s.score("mase", "oracle") >= s.score("mase", "snaive") for s in every))
    counts = np.bincount(lost)
    return ([f"## The oracle against seasonal naive, synthetic series of seeds 0-{seeds - 1} "
             f"({origins} origins)\n",
             f"| synthetic series (of {len(every)}) the oracle loses on | seeds |", "|---|---|"]
            + [f"| {k} | {c} |" for k, c in enumerate(counts)]
            + ["", f"The oracle beats seasonal naive on every synthetic series at {counts[0]} of "
                   f"{seeds} seeds; it loses on {np.mean(lost):.2f} per seed on average."])


def warm_up() -> None:
    """Compile (or load) the bptt kernels and the classical models once, so that timings
    exclude it."""
    rng = np.random.default_rng(0)
    series = {"warm": trend_season(rng, 80)[0]}
    fit_bptt(series, 4, 12, 0)
    classical(("warm",), series["warm"], 4, 12)


# ---------------------------------------------------------------- report


def fmt(value: float, digits: int = 3) -> str:
    """A number for a table cell; n/a for NaN."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


@dataclass
class Pooled:
    """One series' scores averaged over the seeds (each seed's: the mean over the origins)."""

    dataset: Dataset
    name: str
    mase: dict[str, float]
    smape: dict[str, float]
    spread: float  # bptt's MASE: max - min over the seeds

    def relative(self, method: str) -> float:
        """MASE relative to seasonal naive's."""
        return self.mase[method] / self.mase["snaive"]


def pooled(runs: list[list[DatasetResult]]) -> list[Pooled]:
    """Every series' scores, averaged over the seeds' runs (same datasets, same order)."""
    out = []
    for per_seed in zip(*runs, strict=True):
        for scores in zip(*(r.scores for r in per_seed), strict=True):
            methods = set(scores[0].mase)
            bptt_runs = [s.score("mase", "bptt") for s in scores]
            out.append(Pooled(
                per_seed[0].dataset if per_seed[0].dataset.kind == "real" else
                dataclasses.replace(per_seed[0].dataset, series={}),
                scores[0].name,
                {x: float(np.mean([s.score("mase", x) for s in scores])) for x in methods},
                {x: float(np.mean([s.score("smape", x) for s in scores])) for x in methods},
                float(np.max(bptt_runs) - np.min(bptt_runs))))
    return out


def geo_mean(values: list[float]) -> float:
    """Geometric mean (NaN when any value is missing or not positive)."""
    values = np.asarray(values, float)
    if not len(values) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        return math.nan
    return float(np.exp(np.mean(np.log(values))))


def groups(series: list[Pooled]) -> dict[str, list[Pooled]]:
    """The synthetic groups by name, then "real" (every real series), then the real series by
    frequency."""
    out: dict[str, list[Pooled]] = {}
    for s in series:
        if s.dataset.kind == "synthetic":
            out.setdefault(s.dataset.name, []).append(s)
    out["real"] = [s for s in series if s.dataset.kind == "real"]
    for s in out["real"]:
        out.setdefault(f"real, {s.dataset.freq}", []).append(s)
    return {k: v for k, v in out.items() if v}


def group_table(series: list[Pooled], runs: list[list[DatasetResult]]) -> list[str]:
    """One row per group: mean MASE per method, the geometric mean relative to seasonal naive
    of the forecasting methods, and bptt's coverage and mean-outside-interval share."""
    relative = [x for x in METHODS if x not in ("snaive", "bptt1", "bpttnet")]
    head = (["group", "series"] + [f"MASE {x}" for x in METHODS] + ["MASE oracle"]
            + [f"rel. snaive {x}" for x in relative] + ["bptt cover 10-90", "mean outside"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    results = [r for run in runs for r in run]
    for name, members in groups(series).items():
        names = {(s.dataset.name, s.name) for s in members}
        of_group = [r for r in results if any(r.dataset.name == d for d, _ in names)]
        inside = sum(r.inside for r in of_group)
        total = sum(r.total for r in of_group)
        outside = sum(r.outside_band for r in of_group)
        oracle = [s.mase.get("oracle", math.nan) for s in members]
        cells = [name, str(len(members))]
        cells += [fmt(np.mean([s.mase[x] for s in members])) for x in METHODS]
        cells.append(fmt(np.mean(oracle)) if members[0].dataset.kind == "synthetic" else "")
        cells += [fmt(geo_mean([s.relative(x) for s in members])) for x in relative]
        cells += [fmt(100 * inside / total, 1) + " %" if total else "n/a",
                  fmt(100 * outside / total, 1) + " %" if total else "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def series_table(series: list[Pooled], seeds: int) -> list[str]:
    """One row per series: MASE of every method (means over the seeds), bptt's spread over the
    seeds, and bptt's and AutoETS's ratio to seasonal naive."""
    head = (["dataset", "series"] + [f"MASE {x}" for x in METHODS] + ["MASE oracle"]
            + ([f"bptt spread over {seeds} seeds"] if seeds > 1 else [])
            + ["bptt / snaive", "ets / snaive"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in series:
        cells = [s.dataset.name, s.name] + [fmt(s.mase[x]) for x in METHODS]
        cells.append(fmt(s.mase.get("oracle", math.nan)))
        if seeds > 1:
            cells.append(fmt(s.spread))
        cells += [fmt(s.relative("bptt"), 2),
                  fmt(s.relative("ets"), 2) if "ets" in s.mase else "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdicts(series: list[Pooled]) -> list[str]:
    """The issue's targets, on the means over the seeds."""
    real_series = [s for s in series if s.dataset.kind == "real"]
    lines = []
    for label, members in (("real", real_series),
                           ("synthetic", [s for s in series if s.dataset.kind == "synthetic"]),
                           ("all", series)):
        if members:
            parts = ", ".join(f"{x} {fmt(np.mean([s.mase[x] for s in members]))}"
                              for x in METHODS)
            lines.append(f"Mean MASE over the {len(members)} {label} series: {parts}")
    if real_series and "arima" in METHODS:
        b = np.mean([s.mase["bptt"] for s in real_series])
        a = np.mean([s.mase["arima"] for s in real_series])
        lines.append(f"Real series, bptt mean MASE < AutoARIMA's: {'yes' if b < a else 'no'} "
                     f"({fmt(b)} vs {fmt(a)})")
        gb = geo_mean([s.relative("bptt") for s in real_series])
        ga = geo_mean([s.relative("arima") for s in real_series])
        lines.append(f"Real series, bptt geometric mean relative to seasonal naive < "
                     f"AutoARIMA's: {'yes' if gb < ga else 'no'} ({fmt(gb)} vs {fmt(ga)})")
    if real_series and "ets" in METHODS:
        lost = [s for s in real_series
                if s.mase["bptt"] > SLACK * s.mase["snaive"] and s.mase["ets"] < s.mase["snaive"]]
        lines.append(f"Real series where bptt's MASE exceeds {SLACK} x seasonal naive's while "
                     f"AutoETS beats seasonal naive: {len(lost)}"
                     + "".join(f"\n  {s.name}: bptt {fmt(s.mase['bptt'])}, snaive "
                               f"{fmt(s.mase['snaive'])}, ets {fmt(s.mase['ets'])}"
                               for s in lost))
    if "ets" in METHODS:
        b, e = (np.mean([s.mase[x] for s in series]) for x in ("bptt", "ets"))
        lines.append(f"bptt mean MASE < AutoETS mean MASE, all series: "
                     f"{'yes' if b < e else 'no'} ({fmt(b)} vs {fmt(e)})")
    synthetic = [s for s in series if "oracle" in s.mase]
    if synthetic:
        won = [s for s in synthetic if s.mase["oracle"] < s.mase["snaive"]]
        missed = [s.name for s in won if s.mase["bptt"] >= s.mase["snaive"]]
        lines.append(f"The oracle beats seasonal naive on {len(won)} of {len(synthetic)} "
                     f"synthetic series; bptt beats it on every one the oracle beats it on: "
                     f"{'yes' if not missed else 'no'}"
                     + (f" (not on: {', '.join(missed)})" if missed else ""))
    return lines


def dump(path: str, runs: list[list[DatasetResult]], seeds: list[int]) -> None:
    """Every dataset's results per seed as JSON: per-origin MASE and sMAPE of every method,
    bptt's interval counts and note (to compare runs, or report several runs as one)."""
    data = {str(seed): [{"dataset": dataclasses.asdict(dataclasses.replace(
                            r.dataset, series={k: [] for k in r.dataset.series}, oracles={})),
                         "scores": [dataclasses.asdict(s) for s in r.scores],
                         "counts": [r.inside, r.total, r.outside_band],
                         "seconds": r.bptt_seconds, "note": r.bptt_note} for r in run]
            for seed, run in zip(seeds, runs, strict=True)}
    Path(path).write_text(json.dumps(data))


def undump(paths: list[str]) -> tuple[list[int], list[list[DatasetResult]]]:
    """The runs of one or more dump files, merged per seed (datasets in file order)."""
    merged: dict[int, list[DatasetResult]] = {}
    for path in paths:
        for seed, run in json.loads(Path(path).read_text()).items():
            for r in run:
                dataset = Dataset(**r["dataset"])
                merged.setdefault(int(seed), []).append(DatasetResult(
                    dataset, [SeriesScore(**s) for s in r["scores"]], *r["counts"],
                    r["seconds"], r["note"]))
    seeds = sorted(merged)
    return seeds, [merged[s] for s in seeds]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables; exit status 1 if any bptt fit failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one synthetic group of 2 short series and one real series")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the synthetic series and of bptt's training")
    parser.add_argument("--seeds", help="comma-separated seeds: means over their runs")
    parser.add_argument("--only", help="comma-separated dataset names, or real / synthetic / "
                                       "covariates (the covariate group: with and without "
                                       "covariates, AutoARIMA with and without X; run alone)")
    parser.add_argument("--origins", type=int,
                        help=f"rolling forecast origins per series (default {ORIGINS}; "
                             "1 with --quick)")
    parser.add_argument("--json", help="also write every result to this file (JSON)")
    parser.add_argument("--report", help="comma-separated --json files: print their results "
                                         "as one run's (runs of other datasets, same seeds)")
    parser.add_argument("--seasonality", choices=("none", "additive", "multiplicative"),
                        help="force this seasonality instead of the default's choice (to "
                             "measure what the choice gains)")
    parser.add_argument("--calendar", choices=("auto", "cyclic", "onehot", "off"),
                        help="bptt's calendar features (default: bptt's own, auto)")
    parser.add_argument("--bptt-only", action="store_true",
                        help="skip AutoETS, AutoARIMA and AutoTheta (their columns read n/a): "
                             "to compare bptt models, e.g. another checkout's on PYTHONPATH")
    parser.add_argument("--methods", help="the covariate group only: comma-separated methods "
                                          f"of {', '.join(covariate_group.METHODS)} (default: "
                                          "all; seasonal naive and naive always)")
    parser.add_argument("--datasets", help="the covariate group only: comma-separated names "
                                           "of its datasets (default: all)")
    parser.add_argument("--cache", help="keep the classical forecasts of the real series in this "
                                        "file, for later runs (they do not depend on the seed)")
    parser.add_argument("--oracle-seeds", type=int, metavar="N",
                        help="only count, for seeds 0..N-1, the synthetic series on which the "
                             "oracle loses to seasonal naive (no fitting)")
    args = parser.parse_args(argv)
    origins = args.origins or (1 if args.quick else ORIGINS)
    if args.oracle_seeds:
        print("\n".join(oracle_luck(args.oracle_seeds, origins)))
        return 0
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]

    began = time.perf_counter()
    if args.only == "covariates":
        if args.report:
            seeds, origins, runs = covariate_group.undump(args.report.split(","))
        else:
            warm_up()
            methods = (tuple(args.methods.split(",")) if args.methods
                       else covariate_group.METHODS)
            datasets = tuple(args.datasets.split(",")) if args.datasets else None
            runs = [covariate_group.evaluate(seed, origins, args.quick, methods, datasets)
                    for seed in seeds]
            if args.json:
                covariate_group.dump(args.json, seeds, origins, runs)
        print(f"Covariate group (benchmarks/_covariate_eval.py), mean MASE over series and "
              f"seeds {seeds}, {origins} origins; ratios are geometric means per series:\n")
        print("\n".join(covariate_group.table(runs)))
        print()
        print("\n".join(covariate_group.verdicts(runs)))
        print(f"\n{time.perf_counter() - began:.0f} s")
        return 0
    if args.report:
        seeds, runs = undump(args.report.split(","))
        return report(runs, seeds, ",".join(map(str, seeds)), origins, began)
    if AutoETS is None:
        print("statsforecast is not installed: the classical columns are skipped.\n")
    if args.cache:
        load_cache(args.cache)
    if args.seasonality:
        SEASONALITY["seasonality"] = args.seasonality
    if args.calendar:
        CALENDAR["calendar"] = args.calendar
    if args.bptt_only:
        global SKIP_CLASSICAL
        SKIP_CLASSICAL = True
    warm_up()
    runs = []
    for seed in seeds:
        if args.quick:
            datasets = synthetic(seed, 2, (100, 120), ["trend+season"]) + real(quick=True)
        else:
            datasets = select(full_synthetic(seed) + real(quick=False), args.only)
        run = []
        for dataset in datasets:
            run.append(evaluate(dataset, origins, seed))
            print(f"  seed {seed} {dataset.name}: bptt {run[-1].bptt_note} "
                  f"({fmt(run[-1].bptt_seconds, 2)} s)", file=sys.stderr)
            if args.cache and dataset.kind == "real":
                save_cache(args.cache)
        runs.append(run)
    if args.json:
        dump(args.json, runs, seeds)
    return report(runs, seeds, args.seeds, origins, began)


def report(runs: list[list[DatasetResult]], seeds: list[int], seed_list: str | None,
           origins: int, began: float) -> int:
    """Print the tables of the runs (one per seed); 1 if any bptt fit failed."""
    series = pooled(runs)
    label = f"seed {seeds[0]}" if len(seeds) == 1 else f"means over seeds {seed_list}"

    print(f"## Forecast accuracy on held-out horizons ({label}, {origins} origins)\n")
    print("Per group: the mean over its series of each series' MASE (its mean over the "
          "origins), and the geometric mean\nof MASE relative to seasonal naive. snaive: "
          "seasonal naive; ets, arima, theta: statsforecast's AutoETS,\nAutoARIMA, AutoTheta; "
          "mean outside: forecast steps whose mean lies outside bptt's own 10-90 % interval."
          "\nCoverage is nominally 80 %.\n")
    print("\n".join(group_table(series, runs)))
    print()
    print("\n".join(verdicts(series)))
    print("\n## Per-series MASE\n")
    print("\n".join(series_table(series, len(seeds))))
    print("\n## bptt's fits (the last origin's)\n")
    for seed, run in zip(seeds, runs, strict=True):
        for r in run:
            print(f"- seed {seed}, {r.dataset.name}: {r.bptt_note}; {fmt(r.bptt_seconds, 2)} "
                  f"s per fit")
    real_sets = {s.dataset.name: s.dataset for s in series if s.dataset.kind == "real"}
    if real_sets:
        print("\n## The real series\n")
        for d in real_sets.values():
            print(f"- {d.name} ({d.freq}, m={d.m}, h={d.h}): {d.source}")
    failed = [r for run in runs for r in run if r.bptt_note.startswith("FAILED")]
    for r in failed:
        print(f"\nbptt on {r.dataset.name}: {r.bptt_note}")
    print(f"\nTotal wall time: {time.perf_counter() - began:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
