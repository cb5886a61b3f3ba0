"""cross_validate: rolling-origin backtesting of one fit, scored window by window.

As neuralforecast's cross_validation does by default, the model is trained once and not refitted
between windows. For a series of n points, window i (0-based, of `windows`) has its forecast
origin, or cutoff, at

    c_i = n − horizon − offset_i,   offset_i = (windows − 1 − i) · step,

so the last window forecasts the last `horizon` points. One bptt.fit trains on every series cut
at its first cutoff (values[:c_0]); window i then forecasts from values[:c_i] and is scored
against values[c_i : c_i + horizon]. Later windows see more history but never train on it.
Choices the fit makes from the data (input window, epochs, hidden size) are made from the cut
series, and each series keeps the scaler fitted on its first-cutoff part in every window.
"""

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from . import covariates as covariate_inputs
from .data import DataError, SeriesLike, as_series
from .defaults import input_size_for
from .inference import forecast
from .scores import coverage, mase, pinball, smape
from .spec import CrossValidationConfig, SpecError, TrainingSpec
from .trainer import (
    Callbacks,
    FitResult,
    TrainingCancelled,
    _spec_for,  # the same reading of (horizon, spec) as fit's
    fit,
)

SCORES = ("mase", "smape", "pinball", "coverage")


@dataclass
class SeriesScores:
    """One series' scores in one window (None: undefined, e.g. no quantiles or only gaps)."""

    id: str
    cutoff: int  # the forecast saw values[:cutoff] and is scored on the next `horizon` points
    mase: float | None  # season length: the model's resolved one
    smape: float | None  # percent, 0..200
    pinball: float | None  # mean over the model's quantiles and the steps; None without them
    coverage: float | None  # share inside the outermost quantile interval; None without one


@dataclass
class WindowScores:
    """One forecast origin: each score's mean over the series where it is defined (None where
    it is defined for none), and the per-series rows."""

    window: int  # 0-based; the last window forecasts each series' last `horizon` points
    offset: int  # points between this window's cutoff and the last window's
    mase: float | None
    smape: float | None
    pinball: float | None
    coverage: float | None
    series: list[SeriesScores]


@dataclass
class CrossValidation:
    """The scores of every window, plus the overall mean of each score over all (window,
    series) rows where it is defined."""

    horizon: int
    step: int
    season_length: int  # the one MASE used: the fitted model's
    quantiles: tuple[float, ...]  # the model's; empty without quantiles
    windows: list[WindowScores]
    mase: float | None
    smape: float | None
    pinball: float | None
    coverage: float | None
    fit: FitResult | None = field(default=None, repr=False, compare=False)  # the one fit

    def to_dict(self) -> dict:
        """Plain JSON-ready data: ints, floats, strings, lists, dicts and None for a missing
        score (the fit result is left out)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "fit"}
        out["quantiles"] = [float(q) for q in self.quantiles]
        out["windows"] = [dataclasses.asdict(w) for w in self.windows]
        return _plain(out)


def cross_validate(series: SeriesLike, horizon: int | None = None,
                   spec: TrainingSpec | None = None, *, windows: int | None = None,
                   step: int | None = None, callbacks: Callbacks | None = None,
                   covariates=None) -> CrossValidation:
    """Backtest a fit on `series` over `windows` rolling forecast origins `step` points apart.

    `series`, `horizon` and `spec` are as for bptt.fit (give a horizon, or a spec), and so are
    `callbacks` (cancellation stops the fit, or the backtest between windows). `windows` and
    `step` default to spec.cross_validation, else 3 windows one horizon apart. Raises SpecError
    for a bad spec, windows or step; DataError naming ["cross_validation", "windows"] when a
    series is too short for training before its first cutoff; whatever bptt.fit raises.
    `covariates` as bptt.fit takes them, over the whole series: the fit sees them up to the
    first cutoff, each window's forecast up to its cutoff and the future ones' horizon after.
    """
    series = series if isinstance(series, Mapping) else list(series)  # read twice
    spec, named, count, stride = _checked(series, horizon, spec, windows, step)
    dates = _dates(series, len(named))
    h = spec.horizon
    offsets = [(count - 1 - i) * stride for i in range(count)]
    first = [{"id": name, "values": values[: values.size - h - offsets[0]], **when}
             for (name, values), when in zip(named, dates, strict=True)]
    declared = covariate_inputs.declare(covariates, {name: values.size for name, values in named})
    ends = {item["id"]: len(item["values"]) for item in first}
    result = fit(first, spec=spec, callbacks=callbacks,
                 covariates=covariate_inputs.cut(declared, ends) if declared else None)
    model = result.model
    season = model.spec.season_length or 1
    quantiles = tuple(model.quantiles)

    scored = []
    for i, offset in enumerate(offsets):
        if callbacks and callbacks.should_cancel and callbacks.should_cancel():
            raise TrainingCancelled(f"cancelled before cross-validation window {i}")
        cutoffs = {name: values.size - h - offset for name, values in named}
        history = [{"id": name, "values": values[: cutoffs[name]], **when}
                   for (name, values), when in zip(named, dates, strict=True)]
        known = {"covariates": covariate_inputs.cut(declared, cutoffs),
                 "future_covariates": covariate_inputs.horizon_after(declared, cutoffs, h)
                 } if declared else {}
        forecasts = forecast(model, history, threads=spec.training.threads, **known)
        rows = []
        for (name, values), f in zip(named, forecasts, strict=True):
            cut = cutoffs[name]
            rows.append(_score(name, cut, values[cut : cut + h], f, values[:cut], season,
                               quantiles))
        scored.append(WindowScores(i, offset, *(_mean([getattr(r, s) for r in rows])
                                                for s in SCORES), rows))
    every = [r for w in scored for r in w.series]
    return CrossValidation(h, stride, season, quantiles, scored,
                           *(_mean([getattr(r, s) for r in every]) for s in SCORES), fit=result)


def _dates(series: SeriesLike, count: int) -> list[dict]:
    """Each series' start and freq, if given: cut at its end, a series keeps its dates (and
    its calendar features, bptt.calendar_inputs)."""
    if isinstance(series, Mapping):
        return [{}] * count
    return [{k: item[k] for k in ("start", "freq") if k in item} if isinstance(item, Mapping)
            else {} for item in series]


def check_cross_validation(series: SeriesLike, spec: TrainingSpec) -> None:
    """Raise what cross_validate(series, spec=spec) would raise for its input, without
    training: for refusing a request before anything is stored."""
    _checked(series, None, spec, None, None)


def check_cross_validation_lengths(lengths: Iterable[tuple[str, int]],
                                   spec: TrainingSpec) -> None:
    """check_cross_validation from each series' (id, length) alone, for series whose values
    were checked elsewhere (a stored dataset): raises SpecError or DataError as it does."""
    spec, windows, stride = _config(None, spec, None, None)
    _check_lengths(spec, list(lengths), windows, stride)


def _checked(series: SeriesLike, horizon: int | None, spec: TrainingSpec | None,
             windows: int | None, step: int | None):
    """(spec, named series, windows, step) once every input check has passed."""
    spec, windows, stride = _config(horizon, spec, windows, step)
    named = as_series(series)
    _check_lengths(spec, [(name, values.size) for name, values in named], windows, stride)
    return spec, named, windows, stride


def _config(horizon: int | None, spec: TrainingSpec | None, windows: int | None,
            step: int | None) -> tuple[TrainingSpec, int, int]:
    """(spec, windows, step between origins) from the arguments and the spec, checked."""
    spec = _spec_for(horizon, spec)
    config = spec.cross_validation or CrossValidationConfig()
    config = dataclasses.replace(config, windows=config.windows if windows is None else windows,
                                 step=config.step if step is None else step)
    _check_config(spec, config)
    return spec, config.windows, config.step or spec.horizon


def _score(name: str, cutoff: int, actual: np.ndarray, fc: dict, history: np.ndarray,
           season: int, quantiles: tuple[float, ...]) -> SeriesScores:
    """The four scores of one series' forecast in one window."""
    paths = fc["quantiles"]
    loss = cover = None
    if quantiles:
        loss = _number(pinball(actual, paths))
    if len(quantiles) >= 2:
        cover = _number(coverage(actual, paths[quantiles[0]], paths[quantiles[-1]]))
    return SeriesScores(name, int(cutoff), _number(mase(actual, fc["mean"], history, season)),
                        _number(smape(actual, fc["mean"])), loss, cover)


def _check_config(spec: TrainingSpec, config: CrossValidationConfig) -> None:
    """Refuse windows and step as the spec would (they may come from arguments)."""
    errors = []
    for name in ("windows", "step"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            errors.append({"loc": ["cross_validation", name], "msg": "must be an integer"})
    if not errors:
        errors = dataclasses.replace(spec, cross_validation=config).problems()
    if errors:
        raise SpecError(errors)


def _check_lengths(spec: TrainingSpec, sizes: list[tuple[str, int]], windows: int,
                   step: int) -> None:
    """Every series needs, before its first cutoff, what the fit needs: input_size + horizon
    points for one window, and enough further windows that validation_fraction of them are held
    out behind a training window (as data.make_windows splits them)."""
    h, after = spec.horizon, spec.horizon + (windows - 1) * step
    cuts = [size - after for _, size in sizes]
    input_size = input_size_for(spec, min(cuts))  # as fit chooses it on the cut series
    extra = _windows_needed(h, spec.training.validation_fraction) - 1
    needed = input_size + h + extra
    for (name, size), cut in zip(sizes, cuts, strict=True):
        if cut < needed:
            raise DataError(
                ["cross_validation", "windows"],
                f"series {name!r} has {size} points; {windows} windows {step} apart "
                f"with horizon {h} need at least {needed + after}: {needed} to train on before "
                f"the first cutoff (input_size {input_size} + horizon {h} + {extra} more for "
                f"validation) and {after} after it; use fewer windows, a smaller step or "
                f"longer series")


def _windows_needed(horizon: int, fraction: float) -> int:
    """The fewest windows of one series from which make_windows holds out ceil(fraction ·
    windows) for validation with at least one training window before them (1 when fraction is
    0)."""
    if fraction <= 0:
        return 1
    count = max(1, int(horizon / (1 - fraction)) - 2)  # the minimum is at least h / (1 − f)
    while count - math.ceil(fraction * count) - horizon < 0:
        count += 1
    return count


def _number(value: float) -> float | None:
    """A plain float, or None when it is NaN."""
    value = float(value)
    return value if math.isfinite(value) else None


def _mean(values: list[float | None]) -> float | None:
    """Mean of the defined values; None when none is."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _plain(value):
    """Tuples to lists and numpy scalars to Python numbers, recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
