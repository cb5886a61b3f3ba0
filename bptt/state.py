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

    def to_bytes(self) -> bytes:
        """Safetensors: the arrays as tensors, the rest as JSON metadata (never pickled)."""
        meta = {"series_id": self.series_id, "length": self.length, "level": self.level}
        return to_safetensors({"recent": np.asarray(self.recent, np.float64),
                               "hidden": np.asarray(self.hidden)},
                              {"series_state": json.dumps(meta)})

    @classmethod
    def from_bytes(cls, data: bytes) -> SeriesState:
        """Rebuild a state from to_bytes' output."""
        tensors, metadata = from_safetensors(data)
        meta = json.loads(metadata["series_state"])
        return cls(meta["series_id"], tensors["recent"], meta["length"], meta["level"],
                   tensors["hidden"])


def initial_states(model: Model, series: dict[str, np.ndarray]) -> list[SeriesState]:
    """The state of each of the model's training series after its whole raw history
    (`series`: id -> values, the series the model was trained on), all read at once."""
    unknown = [name for name in series if name not in model.series_ids]
    if unknown:
        raise DataError(["series"], f"not training series of this model: {unknown[:5]}")
    names = list(series)
    return _read(model, names, [np.asarray(series[n], np.float64) for n in names],
                 [len(series[n]) for n in names])


def append_observations(model: Model, state: SeriesState, values) -> SeriesState:
    """The state after `values` (numbers, None/NaN for gaps) follow the series."""
    new = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if new.size == 0:
        raise DataError(["values"], "at least one value is required")
    if np.isinf(new).any():
        raise DataError(["values"], "values must be finite numbers or null")
    history = np.concatenate([state.recent, new])
    return _read(model, [state.series_id], [history], [state.length + new.size])[0]


def forecast_state(model: Model, state: SeriesState, horizon: int | None = None,
                   quantiles: list[float] | None = None, *,
                   head_features: np.ndarray | None = None) -> dict:
    """The series' forecast from its state alone (no window is read): as bptt.forecast's
    items, {"id", "mean", "quantiles"}. `head_features` (head_inputs,): the series' head
    features, for a model whose network has head inputs (None otherwise; a model with
    calendar columns computes them from the series' training start and its length)."""
    horizon, wanted = resolve_forecast_request(model, horizon, quantiles)
    features = None if head_features is None else np.asarray(head_features)[None]
    if model.calendar is not None:
        if features is not None:
            raise ValueError("the model computes its head features (its calendar columns) "
                             "itself: give none")
        _, features = calendar_columns(model, _training_starts(model, [state.series_id]),
                                       [state.length])
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


def _read(model: Model, names: list[str], histories: list[np.ndarray], lengths: list[int]
          ) -> list[SeriesState]:
    """Read each series' window from a zero state with every member; keep what follows."""
    if model.covariates is not None:  # the state would need each step's covariate values
        raise DataError(["model"], "stateful forecasts of a model with covariates are not "
                        "supported yet; forecast with the history and its covariates instead")
    steps = model.spec.window.input_size
    # the seasonal indices are estimated from the latest seasons: keep those too
    kept = max(steps, history_needed(model.seasonality.m) if model.seasonality.active else 0)
    recents = []
    for name, history in zip(names, histories, strict=True):
        if history.size < steps or not np.isfinite(history).any():
            raise DataError(["values"], f"series {name!r} needs {steps} values, some observed")
        recents.append(_recent(history, kept))
    tails = prepare_inputs(model, names, recents).tails  # (S, L), as forecast builds them
    levels = tails[:, -1]
    x = (tails - levels[:, None]).T[:, :, None].astype(np.float32)  # (L, S, 1), as forecast
    if model.calendar is not None:  # each step's calendar columns, as forecast adds them
        columns, _ = calendar_columns(model, _training_starts(model, names), lengths)
        x = with_step_features(model, x, columns)
    # only the hidden states are kept: head features (which come with each forecast) do not
    # change them, so zeros stand in for any
    unused = (np.zeros((len(names), model.network.head_inputs), np.float32)
              if model.network.head_inputs else None)
    hidden = np.stack([predict(model.network, p, x, head_features=unused)[1][-1].h
                       for p in model.members], axis=1)
    return [SeriesState(name, recent, length, float(level), h)
            for name, recent, length, level, h in zip(names, recents, lengths, levels, hidden,
                                                      strict=True)]


def _training_starts(model: Model, names: list[str]) -> list:
    """Where the model's calendar has each of these training series start (None: unknown)."""
    position = {name: i for i, name in enumerate(model.series_ids)}
    return [model.calendar.starts[position[name]] for name in names]


def _recent(history: np.ndarray, steps: int) -> np.ndarray:
    """The last `steps` values, reaching back to the last observed value before them (so a
    gap at the window's start interpolates from the same neighbour as over the whole series)."""
    start = max(0, history.size - steps)
    observed = np.flatnonzero(np.isfinite(history[: start + 1]))
    return history[observed[-1] if observed.size else start:].copy()
