"""forecast: a trained Model and raw series in, mean and quantile paths in original units out."""

import numpy as np

from .data import DataError, as_series, fit_scalers, interpolate_gaps
from .model import Model


def forecast(model: Model, series=None, horizon: int | None = None,
             quantiles: list[float] | None = None, threads: int = 1) -> list[dict]:
    """Forecast `horizon` steps (default: the model's) after the end of each series.

    `series` takes the shapes of data.as_series; None forecasts the model's own training series
    from their ends. A series the model was trained on keeps its training scaler; a new one is
    scaled from its own values. `quantiles` must be among the trained ones (default: all of
    them). Returns [{"id", "mean": (h,), "quantiles": {q: (h,)}}]; quantile paths never cross
    and carry the model's conformal calibration.
    """
    horizon, wanted = checked_request(model, horizon, quantiles)
    steps = model.spec.window.input_size
    if series is None:
        ids, scalers, tails = model.series_ids, model.scalers, model.tails
    else:
        known = dict(zip(model.series_ids, model.scalers, strict=True))
        named = as_series(series)
        for i, (name, values) in enumerate(named):
            if len(values) < steps:
                raise DataError(["series", i, "values"],
                                f"series {name!r} has {len(values)} points; the model reads "
                                f"the last {steps}")
        ids = [name for name, _ in named]
        new = [i for i, name in enumerate(ids) if name not in known]
        fitted = dict(zip(new, fit_scalers(model.spec.scaler, [named[i][1] for i in new]),
                          strict=True))
        scalers = [known.get(name) or fitted[i] for i, name in enumerate(ids)]
        tails = np.stack([_tail(s, values, steps)
                          for s, (_, values) in zip(scalers, named, strict=True)])
    # Centre every window on its last value, as in training (data.window_inputs), all at once.
    levels = tails[:, -1]  # (S,)
    x = (tails - levels[:, None]).T[:, :, None].astype(np.float32)  # (L, S, 1)
    return forecasts_from_paths(model, ids, model.quantile_paths(x, threads), levels, scalers,
                                horizon, wanted)


def checked_request(model: Model, horizon: int | None, quantiles: list[float] | None
                    ) -> tuple[int, list[float]]:
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
                         scalers: list, horizon: int, wanted: list[float]) -> list[dict]:
    """forecast's answer from scaled, centred paths (S, h, 1 + Q): the first `horizon` steps,
    moved back to each window's level and through its series' scaler, `wanted` quantiles."""
    paths = paths[:, :horizon] + levels[:, None, None]
    center = np.array([s.center for s in scalers])[:, None, None]
    scale = np.array([s.scale for s in scalers])[:, None, None]
    original = paths * scale + center  # (S, h, 1 + Q): every scaler's inverse at once
    columns = [1 + model.quantiles.index(q) for q in wanted]
    return [{"id": name, "mean": path[:, 0],
             "quantiles": {q: path[:, k] for q, k in zip(wanted, columns, strict=True)}}
            for name, path in zip(ids, original, strict=True)]


def _tail(scaler, values: np.ndarray, steps: int) -> np.ndarray:
    """The last `steps` scaled values, gaps interpolated over the whole series as in training."""
    scaled = scaler.transform(values)
    if np.isfinite(scaled[-steps:]).all():  # no gap in the window: no need to interpolate
        return scaled[-steps:]
    return interpolate_gaps(scaled)[-steps:]
