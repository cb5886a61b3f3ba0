"""The covariate group of benchmarks/accuracy.py (`--only covariates`): bptt with and without
its covariates against AutoARIMA with and without the same regressors (its X and X_future),
seasonal naive and naive, from rolling origins as the other groups are scored.

bptt runs with its defaults (horizon, season length, quantiles, seed), the series given with a
daily or quarterly start so that its calendar features are what a user's would be; "bpttcov"
gets every dataset's drivers as future covariates (the held-out steps' values given, as
AutoARIMA's X_future gets them). Other groups are untouched: a fit without covariates runs the
code it ran before.
"""

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
from _covariate_series import covariate_series

import bptt
from bptt.scores import mase

QUANTILES = (0.1, 0.5, 0.9)
METHODS = ("bpttcov", "bptt", "arimax", "arima", "snaive", "naive")
STARTS = {"D": "2023-01-02", "QS": "1959-01-01"}

try:
    from statsforecast.models import AutoARIMA
except ImportError:  # optional: the AutoARIMA columns are skipped
    AutoARIMA = None


def evaluate(seed: int, origins: int, quick: bool = False, methods: tuple[str, ...] = METHODS,
             datasets: tuple[str, ...] | None = None) -> dict[str, dict[str, list[float]]]:
    """{dataset: {method: per-series mean MASE over the origins}} for one seed (`quick`: two
    series of each synthetic dataset and one ensemble member of 200 updates, a smoke run of the
    code path, not of the defaults' accuracy; `methods`: only these, the others' columns
    read n/a; `datasets`: only these, by name)."""
    out = {}
    for name, series, drivers, m, h, freq, _ in covariate_series(seed, 2 if quick else None):
        if datasets and name not in datasets:
            continue
        scores = {method: {sid: [] for sid in series} for method in METHODS
                  if method in methods or "naive" in method}  # seasonal naive, naive: always
        started = time.perf_counter()
        for k in range(origins):
            end = {sid: len(v) - (origins - 1 - k) * h for sid, v in series.items()}
            for method, forecasts in _forecasts(series, drivers, end, m, h, freq, seed,
                                                methods, quick).items():
                for sid, forecast in forecasts.items():
                    cut = end[sid] - h
                    past, actual = series[sid][:cut], series[sid][cut:end[sid]]
                    scores[method][sid].append(mase(actual, forecast, past, m))
        out[name] = {method: [float(np.mean(v)) for v in by_series.values()]
                     for method, by_series in scores.items()}
        print(f"  covariates/{name}: {time.perf_counter() - started:.0f}s", flush=True)
    return out


def _forecasts(series, drivers, end, m, h, freq, seed, methods=METHODS, quick=False
               ) -> dict[str, dict[str, np.ndarray]]:
    """Every method's (of `methods`) forecast of the h points before `end` of every series."""
    train = {sid: v[:end[sid] - h] for sid, v in series.items()}
    dated = [{"id": sid, "values": v, "start": STARTS[freq], "freq": freq}
             for sid, v in train.items()]
    covariates = {name: {"kind": "future", "values": {sid: by[sid][:end[sid] - h]
                                                      for sid in series}}
                  for name, by in drivers.items()}
    future = {name: {sid: by[sid][end[sid] - h:end[sid]] for sid in series}
              for name, by in drivers.items()}
    spec = bptt.TrainingSpec(horizon=h, season_length=m, quantiles=QUANTILES)
    spec = dataclasses.replace(spec, training=dataclasses.replace(
        spec.training, seed=seed, **({"ensemble": 1, "max_steps": 200} if quick else {})))
    out = {}
    if "bpttcov" in methods:
        out["bpttcov"] = _means(bptt.forecast(bptt.fit(dated, spec=spec, covariates=covariates)
                                              .model, future_covariates=future))
    if "bptt" in methods:
        out["bptt"] = _means(bptt.forecast(bptt.fit(dated, spec=spec).model))
    out["snaive"] = {sid: np.resize(v[-m:], h) for sid, v in train.items()}
    out["naive"] = {sid: np.full(h, v[-1]) for sid, v in train.items()}
    for method in ("arimax", "arima"):
        if AutoARIMA is None or method not in methods:
            continue
        out[method] = {}
        for sid, values in train.items():
            if method == "arima":
                out[method][sid] = _arima(values, h, m, quick=quick)
                continue
            x = np.stack([by[sid][:len(values)] for by in drivers.values()], axis=1)
            x_future = np.stack([future[name][sid] for name in drivers], axis=1)
            out[method][sid] = _arima(values, h, m, x, x_future, quick=quick)
    return out


def _means(forecasts: list[dict]) -> dict[str, np.ndarray]:
    return {f["id"]: np.asarray(f["mean"]) for f in forecasts}


def _arima(values, h, m, x=None, x_future=None, quick=False) -> np.ndarray:
    """AutoARIMA's forecast (with regressors x when given). `quick`, a smoke run of the code
    path: a stepwise search of at most 8 models, selected by conditional sum of squares
    (`approximation`); the full search was 90 % of the quick run's time."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = (AutoARIMA(season_length=m, nmodels=8, approximation=True) if quick
                     else AutoARIMA(season_length=m))
            if x is None:
                return np.asarray(model.forecast(y=values, h=h)["mean"], float)
            return np.asarray(model.forecast(y=values, h=h, X=x, X_future=x_future)["mean"],
                              float)
    except Exception:  # one failing series must not end the run: NaN scores say it
        return np.full(h, math.nan)


def verdicts(runs: list[dict[str, dict[str, list[float]]]]) -> list[str]:
    """The targets, on the group's mean MASE over its series and the seeds: (a) bptt with
    covariates beats bptt without them, (b) it beats AutoARIMA given the same regressors; and
    the datasets where it loses either, so that a loss on one is seen."""
    names = list(runs[0])

    def mean(method, chosen):
        return _nanmean([v for run in runs for d in chosen for v in run[d].get(method, [])])

    lines = []
    for label, other, what in (("a", "bptt", "bptt without covariates"),
                               ("b", "arimax", "AutoARIMA with the same regressors (X)")):
        ours, theirs = mean("bpttcov", names), mean(other, names)
        if math.isnan(ours) or math.isnan(theirs):
            lines.append(f"({label}) bpttcov < {other}: n/a (not both were run)")
            continue
        verdict = "PASS" if ours < theirs else "FAIL"
        lost = [f"{d} ({mean('bpttcov', [d]):.3f} vs {mean(other, [d]):.3f})" for d in names
                if mean("bpttcov", [d]) >= mean(other, [d])]
        lines.append(f"{verdict} ({label}) group mean MASE, bpttcov < {other} ({what}): "
                     f"{ours:.3f} vs {theirs:.3f}; datasets where bpttcov does not beat it: "
                     f"{', '.join(lost) if lost else 'none'}")
    return lines


def table(runs: list[dict[str, dict[str, list[float]]]]) -> list[str]:
    """Per dataset and for the group: mean MASE of each method over series and seeds, and
    bpttcov's geometric mean relative to bptt without covariates and to AutoARIMA with X."""
    lines = ["| dataset | " + " | ".join(METHODS) + " | bpttcov / bptt | bpttcov / arimax |",
             "|---" * (len(METHODS) + 3) + "|"]
    names = list(runs[0])
    for name in [*names, "group"]:
        def pooled(method, name=name):
            chosen = names if name == "group" else [name]
            return np.array([v for run in runs for d in chosen
                             for v in run[d].get(method, [math.nan] * _count(run[d]))])
        cells = [_fmt(_nanmean(pooled(method))) for method in METHODS]
        for other in ("bptt", "arimax"):
            ratio = pooled("bpttcov") / pooled(other)
            cells.append(_fmt(math.exp(_nanmean(np.log(ratio)))))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def dump(path: str, seeds: list[int], origins: int,
         runs: list[dict[str, dict[str, list[float]]]]) -> None:
    """The runs' per-series scores as JSON, to report runs of other seeds as one (--report)."""
    Path(path).write_text(json.dumps({"origins": origins,
                                      "runs": {str(s): r for s, r in zip(seeds, runs,
                                                                         strict=True)}}))


def undump(paths: list[str]) -> tuple[list[int], int, list[dict[str, dict[str, list[float]]]]]:
    """The seeds, origins and runs of one or more dump files (each seed once, same origins)."""
    merged, origins = {}, set()
    for path in paths:
        data = json.loads(Path(path).read_text())
        origins.add(data["origins"])
        for seed, run in data["runs"].items():
            if int(seed) in merged:
                raise ValueError(f"seed {seed} is in more than one of {paths}")
            merged[int(seed)] = run
    if len(origins) != 1:
        raise ValueError(f"runs of different origins: {sorted(origins)}")
    seeds = sorted(merged)
    return seeds, origins.pop(), [merged[s] for s in seeds]


def _nanmean(values) -> float:
    """The mean of the finite values; NaN (no warning) when there is none."""
    values = np.asarray(values, float)
    return float(np.mean(values[np.isfinite(values)])) if np.isfinite(values).any() else math.nan


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3f}"


def _count(scores: dict[str, list[float]]) -> int:
    """The number of series of one dataset's scores."""
    return len(next(iter(scores.values())))
