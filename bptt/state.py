"""Forecast state of one series: forecasting it again, after new observations, without its
history.

A model reads a fixed window of the last `input_size` values from a zero state (that is how it
was trained), so what a series' next forecast needs is (a) its recent raw values, (b) its
training scaler (in the model), and (c) the final hidden state of the top layer after reading
its window, one per ensemble member: the head turns that state into the forecast directly.
Appending values slides the window: the new window is read again from a zero state (carrying
the old state forward would feed the network states it never saw in training), which costs
`input_size` steps however long the history is. The result equals bptt.forecast on the whole
history (tested), because `recent` reaches back to the last observed value before the window,
so gaps at the window's start are interpolated exactly as over the whole series.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .covariates import declare as declare_covariates
from .covariates import declare_horizon, encode_horizon, scaled_steps
from .data import DataError
from .forward import head_output, predict
from .inference import (
    calendar_columns,
    forecasts_from_paths,
    prepare_inputs,
    resolve_forecast_request,
    with_step_features,
)
from .model import Model
from .network import checked_head_features
from .seasonality import history_needed
from .serialization import from_safetensors, to_safetensors


@dataclass
class SeriesState:
    """What the next forecast of one training series needs."""

    series_id: str
    recent: np.ndarray  # raw values (NaN: gap), enough to rebuild the input window
    length: int  # observations so far, the training ones included
    level: float  # the window's last scaled, gap-filled value: forecasts are centred on it
    hidden: np.ndarray  # (K, H) top layer's final hidden state per ensemble member
    # (len(recent), dynamic covariates): their raw values (NaN: gap) beside `recent`, for a
    # model with covariates (bptt.covariates); None: the model has none
    covariates: np.ndarray | None = None

    def to_bytes(self) -> bytes:
        """Safetensors: the arrays as tensors, the rest as JSON metadata (never pickled)."""
        meta = {"series_id": self.series_id, "length": self.length, "level": self.level}
        tensors = {"recent": np.asarray(self.recent, np.float64),
                   "hidden": np.asarray(self.hidden)}
        if self.covariates is not None:
            tensors["covariates"] = np.asarray(self.covariates, np.float64)
        return to_safetensors(tensors, {"series_state": json.dumps(meta)})

    @classmethod
    def from_bytes(cls, data: bytes) -> SeriesState:
        """Rebuild a state from to_bytes' output."""
        tensors, metadata = from_safetensors(data)
        meta = json.loads(metadata["series_state"])
        return cls(meta["series_id"], tensors["recent"], meta["length"], meta["level"],
                   tensors["hidden"], tensors.get("covariates"))


def initial_states(model: Model, series: dict[str, np.ndarray], covariates=None
                   ) -> list[SeriesState]:
    """The state of each of the model's training series after its whole raw history
    (`series`: id -> values, the series the model was trained on), all read at once. A model
    with covariates takes its dynamic ones over the same histories, declared as fit takes
    them (its static ones it kept)."""
    unknown = [name for name in series if name not in model.series_ids]
    if unknown:
        raise DataError(["series"], f"not training series of this model: {unknown[:5]}")
    names = list(series)
    histories = [np.asarray(series[n], np.float64) for n in names]
    dynamic = _dynamic_histories(model, covariates, dict(zip(names, map(len, histories),
                                                             strict=True)))
    return _read(model, names, histories, [len(h) for h in histories], dynamic)


def append_observations(model: Model, state: SeriesState, values, covariates=None
                        ) -> SeriesState:
    """The state after `values` (numbers, None/NaN for gaps) follow the series; a model with
    covariates takes its dynamic ones' values at the same steps, {name: values}."""
    new = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if new.size == 0:
        raise DataError(["values"], "at least one value is required")
    if np.isinf(new).any():
        raise DataError(["values"], "values must be finite numbers or null")
    history = np.concatenate([state.recent, new])
    dynamic = None
    if model.covariates is not None:
        added = _dynamic_histories(model, _as_declared(model, covariates, state.series_id),
                                   {state.series_id: new.size})
        dynamic = [np.concatenate([state.covariates, added[0]])]
    elif covariates is not None:
        raise DataError(["covariates"], "the model was trained without covariates")
    return _read(model, [state.series_id], [history], [state.length + new.size], dynamic)[0]


def forecast_state(model: Model, state: SeriesState, horizon: int | None = None,
                   quantiles: list[float] | None = None, *,
                   head_features: np.ndarray | None = None, future_covariates=None) -> dict:
    """The series' forecast from its state alone (no window is read): as bptt.forecast's
    items, {"id", "mean", "quantiles"}. `head_features` (head_inputs,): the series' head
    features, for a model whose network has head inputs (None otherwise; a model with
    calendar columns computes them from the series' training start and its length, and one
    with covariates from its static ones and `future_covariates`, {name: the horizon's values}
    of each future covariate)."""
    horizon, wanted = resolve_forecast_request(model, horizon, quantiles)
    features = None if head_features is None else np.asarray(head_features)[None]
    if model.calendar is not None:
        if features is not None:
            raise ValueError("the model computes its head features (its calendar columns) "
                             "itself: give none")
        _, features = calendar_columns(model, _training_starts(model, [state.series_id]),
                                       [state.length])
    if model.covariates is not None:
        if head_features is not None:
            raise ValueError("the model computes its head features (its covariates) itself")
        features = _with_covariate_head(model, state, features, future_covariates)
    features = checked_head_features(model.network, features, 1, np.float32)
    outputs = []
    for member, h in zip(model.members, state.hidden, strict=True):
        views = model.network.layout.views(member)
        if features is None:  # h (H,): the head as a matrix-vector product
            outputs.append(h @ views["head.weight"].T + views["head.bias"])
        else:
            outputs.append(head_output(views, h[None], features)[0])
    out = outputs[0] if len(outputs) == 1 else np.median(outputs, axis=0)
    paths = model.calibrated_paths(np.asarray(out)[None])
    # the window's partners (seasonal naive, reverting) and seasonal indices, from the recent
    # values
    inputs = prepare_inputs(model, [state.series_id], [state.recent])
    return forecasts_from_paths(model, [state.series_id], paths, np.array([state.level]),
                                inputs, horizon, wanted)[0]


def _read(model: Model, names: list[str], histories: list[np.ndarray], lengths: list[int],
          dynamic: list[np.ndarray] | None = None) -> list[SeriesState]:
    """Read each series' window from a zero state with every member; keep what follows.
    `dynamic`: each series' raw dynamic covariates (length, C) beside its history."""
    steps = model.spec.window.input_size
    # the seasonal indices are estimated from the latest seasons: keep those too
    kept = max(steps, history_needed(model.seasonality.m) if model.seasonality.active else 0)
    recents = []
    for name, history in zip(names, histories, strict=True):
        if history.size < steps or not np.isfinite(history).any():
            raise DataError(["values"], f"series {name!r} needs {steps} values, some observed")
        recents.append(history[_recent_start(history, kept):].copy())
    kept_covariates = None if dynamic is None else [
        d[len(h) - len(r):] for d, h, r in zip(dynamic, histories, recents, strict=True)]
    tails = prepare_inputs(model, names, recents).tails  # (S, L), as forecast builds them
    levels = tails[:, -1]
    x = (tails - levels[:, None]).T[:, :, None].astype(np.float32)  # (L, S, 1), as forecast
    if model.calendar is not None:  # each step's calendar columns, as forecast adds them
        columns, _ = calendar_columns(model, _training_starts(model, names), lengths)
    if model.covariates is not None:  # then the covariates', scaled as fit scaled them
        covariate_columns = _covariate_window(model, names, kept_covariates, steps)
        columns = covariate_columns if model.calendar is None else np.concatenate(
            [columns, covariate_columns], axis=2)
    if model.calendar is not None or model.covariates is not None:
        x = with_step_features(model, x, columns)
    # only the hidden states are kept: head features (which come with each forecast) do not
    # change them, so zeros stand in for any
    unused = (np.zeros((len(names), model.network.head_inputs), np.float32)
              if model.network.head_inputs else None)
    hidden = np.stack([predict(model.network, p, x, head_features=unused)[1][-1].h
                       for p in model.members], axis=1)
    return [SeriesState(name, recent, length, float(level), h,
                        None if kept_covariates is None else kept_covariates[i])
            for i, (name, recent, length, level, h) in enumerate(
                zip(names, recents, lengths, levels, hidden, strict=True))]


def _training_starts(model: Model, names: list[str]) -> list:
    """Where the model's calendar has each of these training series start (None: unknown)."""
    position = {name: i for i, name in enumerate(model.series_ids)}
    return [model.calendar.starts[position[name]] for name in names]


def _recent_start(history: np.ndarray, steps: int) -> int:
    """Where the kept part of a history starts: the last `steps` values, reaching back to the
    last observed value before them (so a gap at the window's start interpolates from the same
    neighbour as over the whole series)."""
    start = max(0, history.size - steps)
    observed = np.flatnonzero(np.isfinite(history[: start + 1]))
    return int(observed[-1]) if observed.size else start


def _dynamic_histories(model: Model, covariates, lengths: dict[str, int]
                       ) -> list[np.ndarray] | None:
    """Each series' raw dynamic covariates (length, C), in the order of `lengths`, declared as
    fit takes them; None for a model without covariates."""
    if model.covariates is None:
        if covariates is not None:
            raise DataError(["covariates"], "the model was trained without covariates")
        return None
    dynamic = model.covariates.dynamic
    given = covariates or {}
    for name in dynamic:
        if name not in given:
            raise DataError(["covariates", name], "required: the model reads it at every step")
    declared = {c.name: c for c in declare_covariates({n: given[n] for n in dynamic}, lengths)}
    return [np.stack([declared[n].values[sid] for n in dynamic], axis=1).reshape(-1, len(dynamic))
            for sid in lengths]


def _as_declared(model: Model, values, series_id: str) -> dict:
    """{name: values} of one series' appended steps, declared as fit takes covariates."""
    if not isinstance(values, dict):
        raise DataError(["covariates"], "an object {covariate name: its values at the appended "
                        "steps} is required")
    kinds = dict(zip(model.covariates.names, model.covariates.kinds, strict=True))
    for name in values:
        if kinds.get(name, "static") == "static":
            raise DataError(["covariates", name], "not a dynamic covariate of the model "
                            f"(those are {model.covariates.dynamic})")
    return {name: {"kind": kinds[name], "values": {series_id: v}}
            for name, v in values.items()}


def _covariate_window(model: Model, names: list[str], dynamic: list[np.ndarray], steps: int
                      ) -> np.ndarray:
    """(S, steps, C): each series' dynamic covariates over its window, gaps filled over what is
    kept and scaled by its training scalers (bptt.covariates.scaled_steps)."""
    scalers = model.covariates.scalers
    out = [scaled_steps(raw, scalers[name])[-steps:]
           for name, raw in zip(names, dynamic, strict=True)]
    return np.stack(out).reshape(len(names), steps, -1).astype(np.float32)


def _with_covariate_head(model: Model, state: SeriesState, calendar_head, future
                         ) -> np.ndarray:
    """(1, head_inputs): the calendar's head columns (if any), then the series' static row and
    its future covariates' horizon values, scaled as fit scaled them and centred on their
    values at the window's last step (bptt.covariates.encode_horizon)."""
    encoder, series_id = model.covariates, state.series_id
    future = {name: {series_id: values} for name, values in (future or {}).items()}
    values = declare_horizon(future, encoder.future, [series_id], model.horizon)
    origin = scaled_steps(state.covariates, encoder.scalers[series_id])[-1:]
    scaled = encode_horizon(encoder, encoder.scalers, values, [series_id], origin).reshape(1, -1)
    static = model.covariate_static[[model.series_ids.index(series_id)]]
    parts = [] if calendar_head is None else [calendar_head]
    return np.concatenate([*parts, static, scaled], axis=1).astype(np.float32)
