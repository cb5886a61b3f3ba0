"""Inference: a trained Model and raw series in, mean and quantile paths in original units out."""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .calendar_inputs import dated, series_dates
from .combination import new_series_means
from .covariates import declare as declare_covariates
from .covariates import declare_horizon, encode_horizon
from .covariates import encode as encode_covariates
from .data import DataError, as_series, fit_scalers, interpolate_gaps, scaler_arrays
from .model import Model


def forecast(model: Model, series=None, horizon: int | None = None,
             quantiles: list[float] | None = None, threads: int = 1, *,
             step_features: np.ndarray | None = None,
             head_features: np.ndarray | None = None, covariates=None,
             future_covariates=None) -> list[dict]:
    """Forecast `horizon` steps (default: the model's) after the end of each series.

    `series` takes the shapes of data.as_series; None forecasts the model's own training series
    from their ends. A series the model was trained on keeps its training scaler; a new one is
    scaled from its own values. `quantiles` must be among the trained ones (default: all of
    them). Returns [{"id", "mean": (h,), "quantiles": {q: (h,)}}]; quantile paths never cross
    and carry the model's conformal calibration.

    A model whose network reads more than the value per step, or head features, takes them
    built as its card describes them (input_features, head_features), one row per series in
    the order of `series` (of the model's series when None): `step_features`
    (S, window length, input_size - 1), the input columns after the value over the window, and
    `head_features` (S, head_inputs). A model trained on values alone takes neither, and nor
    does one with calendar columns: it recomputes them from each series' `start` (series given
    as [{"id", "values", "start", "freq"}]; the training series' own when `series` is None)
    and length (bptt.calendar_inputs). A series given without a date start has zeros there
    (its calendar unknown), as it had in training.

    A model fitted with covariates takes them as fit did (bptt.covariates): `covariates` over
    the histories of the given series (none when `series` is None: the model kept the training
    series' last window of them), and `future_covariates` {name: {series id: values}}, each
    future covariate's values over the model's horizon for every series forecast.
    """
    return as_forecasts(*forecast_arrays(model, series, horizon, quantiles, threads,
                                         step_features=step_features,
                                         head_features=head_features, covariates=covariates,
                                         future_covariates=future_covariates))


def forecast_arrays(model: Model, series=None, horizon: int | None = None,
                    quantiles: list[float] | None = None, threads: int = 1, *,
                    step_features: np.ndarray | None = None,
                    head_features: np.ndarray | None = None, covariates=None,
                    future_covariates=None) -> tuple[list[str], list[float], np.ndarray]:
    """forecast's answer as arrays, for callers that handle thousands of series at once:
    (ids, quantiles, values), values (S, h, 1 + Q) in original units, values[i, :, 0] the mean
    of series ids[i] and values[i, :, 1 + k] its quantile quantiles[k]. step_features and
    head_features as forecast takes them."""
    horizon, wanted = resolve_forecast_request(model, horizon, quantiles)
    steps = model.spec.window.input_size
    if series is None:
        ids, inputs = model.series_ids, Inputs(model.scalers, model.tails, None,
                                               model.seasonality.indices,
                                               model.seasonality.log)
        lengths = None if model.calendar is None else model.calendar.lengths
        starts = None if model.calendar is None else model.calendar.starts
        if covariates is not None:
            raise DataError(["covariates"], "given without series: a forecast of the training "
                            "series uses the covariates it was trained with")
    else:
        series = series if isinstance(series, Mapping) else list(series)  # read twice
        named = as_series(series)
        for i, (name, values) in enumerate(named):
            if len(values) < steps:
                raise DataError(["series", i, "values"],
                                f"series {name!r} has {len(values)} points; the model reads "
                                f"the last {steps}")
        ids = [name for name, _ in named]
        inputs = prepare_inputs(model, ids, [values for _, values in named])
        lengths = [len(values) for _, values in named]
        starts = None if model.calendar is None else [
            d.start if dated(d, model.calendar.freq) else None for d in series_dates(series)]
    if model.calendar is not None or model.covariates is not None:
        if step_features is not None or head_features is not None:
            raise ValueError("the model computes its step and head features itself (its "
                             "calendar columns and covariates): give none")
        step_features, head_features = extra_features(
            model, ids, starts, lengths, None if series is None else
            covariate_inputs(model, covariates, dict(zip(ids, lengths, strict=True))),
            future_covariates)
    elif covariates is not None or future_covariates is not None:
        raise DataError(["covariates"], "the model was trained without covariates")
    # Centre every window on its last value, as in training (data.window_inputs), all at once.
    levels = inputs.tails[:, -1]  # (S,)
    x = (inputs.tails - levels[:, None]).T[:, :, None].astype(np.float32)  # (L, S, 1)
    x = with_step_features(model, x, step_features)  # (L, S, input_size)
    paths = model.quantile_paths(x, threads, head_features)
    return ids, wanted, values_from_paths(model, ids, paths, levels, inputs, horizon, wanted)


@dataclass
class Inputs:
    """What forecasts of some series need besides the network's paths: each series' scaler,
    its last input window (scaled, seasonally adjusted, gaps filled), the combination's mean
    partner of series the model was not trained on (NaN for the others; None: no such series),
    and the seasonal indices (S, m) and log flags (S,) that turn forecasts back into the
    series' units (bptt.seasonality)."""

    scalers: list
    tails: np.ndarray  # (S, L)
    means: np.ndarray | None
    indices: np.ndarray
    logs: np.ndarray


def covariate_inputs(model: Model, covariates, lengths: dict[str, int]):
    """The covariates of series given to a forecast, encoded as the model encodes them (a
    series the model knows keeps its scalers); None for a model without covariates."""
    if model.covariates is None:
        return None
    return encode_covariates(model.covariates, declare_covariates(covariates, lengths), lengths)


def extra_features(model: Model, ids: list[str], starts: list | None, lengths: list | None,
                   encoded, future_covariates) -> tuple[np.ndarray, np.ndarray | None]:
    """(step features (S, L, C), head features (S, E)) of a model with calendar columns or
    covariates, in data.ExtraInputs' order: the calendar's, from each series' start and length;
    the covariates', from `encoded` (bptt.covariates.Encoded of the given series; None: the
    training series' stored window) and the horizon's future values."""
    window = model.spec.window.input_size
    steps, head = [], []
    if model.calendar is not None:
        calendar_steps, calendar_head = calendar_columns(model, starts, lengths)
        steps.append(calendar_steps)
        head.append(calendar_head)
    if model.covariates is not None:
        encoder = model.covariates
        if encoded is None:
            tails, static = model.covariate_tails, model.covariate_static
            scalers = encoder.scalers
        else:
            tails = np.stack([s[-window:] for s in encoded.steps])
            static, scalers = encoded.static, encoded.scalers
        future = declare_horizon(future_covariates, encoder.future, ids, model.horizon)
        scaled = encode_horizon(encoder, scalers, future, ids, tails[:, -1])  # (S, h, F)
        steps.append(tails)
        head += [static, scaled.reshape(len(ids), -1)]
    head = [np.asarray(h, np.float32) for h in head if h.shape[1]]
    return (np.concatenate(steps, axis=2).astype(np.float32),
            np.concatenate(head, axis=1) if head else None)


def calendar_columns(model: Model, starts: list, lengths: list[int]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(step features (S, L, C), head features (S, C)) of a model's calendar columns, for
    series that start at `starts` (None: unknown) and hold `lengths` values."""
    return model.calendar.forecast_inputs(starts, lengths, model.spec.window.input_size)


def with_step_features(model: Model, x: np.ndarray, step_features) -> np.ndarray:
    """The network's inputs: the centred values x (L, S, 1), then for a network that reads more
    per step, step_features (S, L, input_size - 1) as its further columns. ValueError when they
    are missing, unexpected or of the wrong shape."""
    more = model.network.input_size - 1
    if more == 0 and step_features is None:
        return x
    steps, count, _ = x.shape
    if more == 0:
        raise ValueError("step_features given, but the model reads the value alone per step")
    wanted = (count, steps, more)
    if step_features is None or np.shape(step_features) != wanted:
        got = None if step_features is None else np.shape(step_features)
        raise ValueError(f"the model reads {more} features per step besides the value "
                         f"({model.input_features[1:]}): step_features must have shape "
                         f"{wanted}, got {got}")
    columns = np.asarray(step_features, np.float32).transpose(1, 0, 2)
    return np.ascontiguousarray(np.concatenate([x, columns], axis=2))


def prepare_inputs(model: Model, ids: list[str], series: list[np.ndarray]) -> Inputs:
    """Inputs for raw series `series` named `ids`: a series the model was trained on keeps its
    training scaler and log flag; another is scaled (and, with a multiplicative model, logged
    when positive) from its own values. Seasonal indices come from each history itself."""
    season = model.seasonality
    logs = season.flags_for(ids, model.series_ids, series)
    adjusted, indices = season.transform_all(series, logs)
    known = dict(zip(model.series_ids, model.scalers, strict=True))
    new = [i for i, name in enumerate(ids) if name not in known]
    fitted = dict(zip(new, fit_scalers(model.spec.scaler, [adjusted[i] for i in new]),
                      strict=True))
    scalers = [known.get(name) or fitted[i] for i, name in enumerate(ids)]
    tails = _tails(scalers, adjusted, model.spec.window.input_size)
    means = new_series_means(model, list(zip(ids, adjusted, strict=True)), scalers, new)
    return Inputs(scalers, tails, means, indices, logs)


def resolve_forecast_request(model: Model, horizon: int | None,
                             quantiles: list[float] | None) -> tuple[int, list[float]]:
    """(horizon, quantiles) of a forecast request with the model's defaults filled in;
    DataError for a horizon beyond the model's or a quantile it was not trained for."""
    horizon = model.horizon if horizon is None else int(horizon)
    if not 1 <= horizon <= model.horizon:
        raise DataError(["horizon"], f"must be between 1 and the model's {model.horizon}")
    wanted = list(model.quantiles) if quantiles is None else [float(q) for q in quantiles]
    unknown = [q for q in wanted if q not in model.quantiles]
    if unknown:
        raise DataError(["quantiles"], f"{unknown} not trained; available: "
                                       f"{list(model.quantiles)}")
    return horizon, wanted


def forecasts_from_paths(model: Model, ids: list[str], paths: np.ndarray, levels: np.ndarray,
                         inputs: Inputs, horizon: int, wanted: list[float]) -> list[dict]:
    """forecast's answer from scaled, centred paths (S, h, 1 + Q): the first `horizon` steps,
    moved back to each window's level and through its series' scaler and seasonal transform,
    `wanted` quantiles. A model with a combination combines them first (bptt.combination)."""
    return as_forecasts(ids, wanted, values_from_paths(model, ids, paths, levels, inputs,
                                                       horizon, wanted))


def values_from_paths(model: Model, ids: list[str], paths: np.ndarray, levels: np.ndarray,
                      inputs: Inputs, horizon: int, wanted: list[float]) -> np.ndarray:
    """forecasts_from_paths' answer as forecast_arrays' values (S, horizon, 1 + len(wanted)).
    With a combination, the mean always lies inside the outermost quantiles when they enclose
    the median: where the combination moved it past one, that quantile is moved out to it (the
    interval only widens)."""
    if model.combination is not None:
        paths = model.shifted(model.combination.apply(
            paths, ids, model.series_ids, levels, inputs.tails - levels[:, None],
            model.spec.season_length or 1, inputs.means))
    paths = paths[:, :horizon] + levels[:, None, None]
    qs = model.quantiles
    # an interval around the median holds the mean (not in files written before quantile
    # averaging: they forecast as they did)
    if (len(qs) >= 2 and qs[0] < 0.5 < qs[-1] and model.combination is not None
            and model.combination.averaged):
        paths[:, :, 1] = np.minimum(paths[:, :, 1], paths[:, :, 0])
        paths[:, :, -1] = np.maximum(paths[:, :, -1], paths[:, :, 0])
    center, scale = scaler_arrays(inputs.scalers)
    original = paths * scale[:, None, None] + center[:, None, None]  # (S, h, 1 + Q)
    original = model.seasonality.inverse(original, inputs.indices, inputs.logs)
    return original[:, :, [0] + [1 + model.quantiles.index(q) for q in wanted]]


def as_forecasts(ids: list[str], wanted: list[float], values: np.ndarray) -> list[dict]:
    """forecast_arrays' answer as forecast's: a dict per series, its paths views of `values`."""
    return [{"id": name, "mean": path[:, 0],
             "quantiles": {q: path[:, 1 + k] for k, q in enumerate(wanted)}}
            for name, path in zip(ids, values, strict=True)]


def _tails(scalers: list, series: list[np.ndarray], steps: int) -> np.ndarray:
    """(S, steps): each series' last `steps` scaled values, gaps interpolated over the whole
    series as in training. Scaled all at once; only a series with a gap in its window is
    interpolated, one by one (each scaler's transform, elementwise: the same numbers)."""
    center, scale = scaler_arrays(scalers)
    tails = (np.stack([values[-steps:] for values in series]) - center[:, None]) / scale[:, None]
    for i in np.flatnonzero(~np.isfinite(tails).all(axis=1)):
        tails[i] = interpolate_gaps(scalers[i].transform(series[i]))[-steps:]
    return tails
