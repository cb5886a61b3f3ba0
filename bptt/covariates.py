"""Covariates: what else is known about a series, declared, checked, encoded and scaled.

Three kinds, as neuralforecast's stat/hist/futr exogenous lists and Darts' static/past/future
covariates:

    static       one value per series: a number, or a category (a string)
    historical   a value per step of the series, known only up to the forecast's origin
    future       a value per step, known for the forecast's steps too (a planned promotion,
                 a holiday, a weather forecast): a forecast must be given the horizon's values

Declared as {name: {"kind": kind, "values": {series id: value or values}}}. Every series must
have every covariate; a dynamic one (historical or future) has one value per step of its series,
null (NaN) for a gap.

What the network sees (`encode`):
- a dynamic covariate is scaled per series (mean and standard deviation of the series' observed
  values of it, as `data.fit_scalers("standard")`) and its gaps filled linearly, as the target's
  are. The scalers are kept per series, as the target's: a series first met at forecast time gets
  them fitted on the history it comes with;
- at the head, a future covariate's value at each forecast step is read minus its value at the
  window's last input step (its change since the origin), as the targets are centred on the
  window's last value (bptt.data): the network forecasts changes, and a change of the target
  follows the change of its driver. A trending driver (income, prices) leaves the range the
  training windows saw in levels, not in changes; an indicator (a promotion) reads +1 where
  it starts after the origin, -1 where it ends, which is what the target's change does. (As a
  regression with ARIMA errors that differences y differences its regressors too.) Measured
  on benchmarks/accuracy.py's covariate group: README's accuracy section;
- a static number is standardised across the training series (a scaler fitted to one value
  would erase it);
- a static category is one-hot over the categories met in training, plus a reserved
  `UNKNOWN` column that a category first met at forecast time takes. A forecast does not fail on
  a new store; the network treats it as none of the stores it knows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .data import DataError, _as_values, fit_scalers, interpolate_gaps

KINDS = ("static", "historical", "future")
DYNAMIC = ("historical", "future")
UNKNOWN = "<unknown>"


@dataclass(frozen=True)
class Declared:
    """One covariate as given and checked: its values by series id (a number or a string for a
    static one, float64 with NaN gaps for a dynamic one)."""

    name: str
    kind: str
    values: dict[str, float | str | np.ndarray]

    @property
    def categorical(self) -> bool:
        return self.kind == "static" and isinstance(next(iter(self.values.values())), str)


def declare(raw, lengths: Mapping[str, int]) -> list[Declared]:
    """The covariates of a fit, checked against its series (`lengths`: id -> number of steps).

    Raises DataError naming the field: an unknown kind, a series without the covariate, a value
    that is neither a number nor (static only) a string, a static covariate mixing the two, a
    dynamic one whose length is not its series'.
    """
    return [_declare(name, spec, lengths, ["covariates", name]) for name, spec in
            _named(raw)]


def declare_horizon(raw, future: list[str], ids: list[str], horizon: int) -> dict[str, np.ndarray]:
    """A forecast's values of the future covariates over its horizon: {name: (S, horizon)}, the
    rows in the order of `ids`. Each must be given for every series, finite, `horizon` long."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise DataError(["future_covariates"], "must be an object of covariate names")
    for name in raw:
        if name not in future:
            raise DataError(["future_covariates", name],
                            f"not a future covariate of the model (those are {future})")
    out = {}
    for name in future:
        loc = ["future_covariates", name]
        by_series = raw.get(name)
        if not isinstance(by_series, Mapping):
            raise DataError(loc, f"the horizon's {horizon} values are required, by series id")
        rows = []
        for sid in ids:
            if sid not in by_series:
                raise DataError([*loc, sid], f"the horizon's {horizon} values are required")
            values = _as_values(by_series[sid], [*loc, sid])
            if len(values) < horizon or not np.isfinite(values[:horizon]).all():
                raise DataError([*loc, sid], f"needs {horizon} values (the horizon), all known; "
                                f"got {len(values)}")
            rows.append(values[:horizon])
        out[name] = np.stack(rows)
    return out


def cut(declared: list[Declared], ends: Mapping[str, int]) -> dict:
    """The covariates as fit and forecast take them, each series' dynamic values up to its
    `ends` (exclusive): what a forecast from that origin knows of them."""
    return {c.name: {"kind": c.kind, "values": {
        sid: value if c.kind == "static" else value[:ends[sid]]
        for sid, value in c.values.items()}} for c in declared}


def horizon_after(declared: list[Declared], ends: Mapping[str, int], horizon: int) -> dict:
    """The future covariates' values over the `horizon` steps from each series' `ends`, as
    forecast's `future_covariates` takes them."""
    return {c.name: {sid: values[ends[sid]:ends[sid] + horizon]
                     for sid, values in c.values.items()}
            for c in declared if c.kind == "future"}


@dataclass(frozen=True)
class Encoder:
    """How declared covariates become network inputs (fitted on the training series; stored in
    the model card through to_dict)."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    static_scales: dict[str, tuple[float, float]]  # static number -> (mean, std) across series
    categories: dict[str, tuple[str, ...]]  # static category -> the training's, UNKNOWN last
    scalers: dict[str, np.ndarray]  # series id -> (dynamic covariates, 2): centre, scale

    @property
    def dynamic(self) -> list[str]:
        """The per-step input columns, in declared order."""
        return [n for n, k in zip(self.names, self.kinds, strict=True) if k in DYNAMIC]

    @property
    def future(self) -> list[str]:
        return [n for n, k in zip(self.names, self.kinds, strict=True) if k == "future"]

    def static_names(self) -> list[str]:
        """The head's static columns: a number's own, a category's one per value."""
        names = []
        for name, kind in zip(self.names, self.kinds, strict=True):
            if kind != "static":
                continue
            if name in self.categories:
                names += [f"{name}={c}" for c in self.categories[name]]
            else:
                names.append(name)
        return names

    def to_dict(self) -> dict:
        return {"covariates": [{"name": n, "kind": k} for n, k in
                               zip(self.names, self.kinds, strict=True)],
                "static_scales": {n: list(v) for n, v in self.static_scales.items()},
                "categories": {n: list(v) for n, v in self.categories.items()},
                "scalers": {sid: s.tolist() for sid, s in self.scalers.items()}}

    @classmethod
    def from_dict(cls, card: dict) -> Encoder:
        declared = card["covariates"]
        return cls(tuple(c["name"] for c in declared), tuple(c["kind"] for c in declared),
                   {n: (float(m), float(s)) for n, (m, s) in card["static_scales"].items()},
                   {n: tuple(v) for n, v in card["categories"].items()},
                   {sid: np.array(s, dtype=np.float64).reshape(-1, 2)
                    for sid, s in card["scalers"].items()})


@dataclass(frozen=True)
class Encoded:
    """Covariates as network inputs, rows in the order of the ids they were encoded for."""

    steps: list[np.ndarray]  # per series (its length, dynamic covariates), scaled, gaps filled
    static: np.ndarray  # (series, static columns)
    scalers: dict[str, np.ndarray]  # the dynamic scalers used, by series id


def fit_encoder(declared: list[Declared], ids: list[str]) -> Encoder:
    """The encoder of the training series `ids`: the static scales and categories, and each
    series' scalers of its dynamic covariates."""
    static_scales, categories = {}, {}
    for cov in declared:
        if cov.kind != "static":
            continue
        column = [cov.values[sid] for sid in ids]
        if cov.categorical:
            categories[cov.name] = (*sorted(set(column) - {UNKNOWN}), UNKNOWN)
        else:
            mean, std = float(np.mean(column)), float(np.std(column))
            static_scales[cov.name] = (mean, std if std > 1e-12 * max(abs(mean), 1) else 1.0)
    dynamic = [c.name for c in declared if c.kind in DYNAMIC]
    return Encoder(tuple(c.name for c in declared), tuple(c.kind for c in declared),
                   static_scales, categories, _dynamic_scalers(dynamic, declared, ids, {}))


def continued(model: Encoder | None, declared: list[Declared], ids: list[str]
              ) -> tuple[Encoder | None, list[Declared]]:
    """(encoder, declared in its order) of a fit warm-started from a model whose covariates
    `model` encodes: the same covariates of the same kinds, read in the model's order (its
    weights read them so), with its static scales and categories, so that every head column
    keeps its meaning (a category it never met takes UNKNOWN, as at forecast time); the
    dynamic scalers are fitted on these series, as their targets' are. DataError at
    ["covariates"] for other covariates, or a static one of the other type."""
    trained = {} if model is None else dict(zip(model.names, model.kinds, strict=True))
    given = {c.name: c.kind for c in declared}
    if given != trained:
        raise DataError(["covariates"], f"a warm start continues a model trained with the "
                                        f"covariates {trained or 'none'}; given {given or 'none'}")
    if model is None:
        return None, declared
    by_name = {c.name: c for c in declared}
    ordered = [by_name[name] for name in model.names]
    for cov in ordered:
        if cov.kind == "static" and cov.categorical != (cov.name in model.categories):
            took = "a category (a string)" if cov.name in model.categories else "a number"
            raise DataError(["covariates", cov.name], f"the continued model took it as {took}")
    fresh = fit_encoder(ordered, ids)
    return dataclasses.replace(fresh, static_scales=dict(model.static_scales),
                               categories=dict(model.categories)), ordered


def encode(encoder: Encoder, declared: list[Declared], lengths: Mapping[str, int]) -> Encoded:
    """The network's covariate inputs for the series of `lengths` (id -> steps, in the order
    wanted): each dynamic covariate scaled by the series' stored scaler (fitted on the given
    history for a series the encoder has not met), the static columns standardised and one-hot
    encoded."""
    by_name = {c.name: c for c in declared}
    missing = [n for n in encoder.names if n not in by_name]
    if missing:
        raise DataError(["covariates", missing[0]], "declared by the model but not given")
    ids, dynamic = list(lengths), encoder.dynamic
    scalers = _dynamic_scalers(dynamic, declared, ids, encoder.scalers)
    steps = []
    for sid in ids:
        raw = np.zeros((lengths[sid], len(dynamic)))
        for j, name in enumerate(dynamic):
            raw[:, j] = by_name[name].values[sid]
        steps.append(scaled_steps(raw, scalers[sid]))
    return Encoded(steps, _static_columns(encoder, by_name, ids), scalers)


def scaled_steps(raw: np.ndarray, scalers: np.ndarray) -> np.ndarray:
    """A series' dynamic covariates (steps, C) as the network reads them: each column's gaps
    filled linearly (a column with no value at all, which a stateful window can keep: zeros)
    and scaled by the series' (C, 2) centres and scales."""
    filled = np.zeros_like(raw)
    for j in range(raw.shape[1]):
        if np.isfinite(raw[:, j]).any():
            filled[:, j] = interpolate_gaps(raw[:, j])
    return (filled - scalers[:, 0]) / scalers[:, 1]


def encode_horizon(encoder: Encoder, scalers: dict[str, np.ndarray],
                   horizon_values: dict[str, np.ndarray], ids: list[str],
                   origin: np.ndarray) -> np.ndarray:
    """(S, horizon, future covariates): the horizon's values of declare_horizon, scaled by each
    series' scalers (those `encode` used for its history), minus each one's scaled value at the
    window's last input step, `origin` (S, dynamic covariates), as the head reads them
    (data.ExtraInputs.head: centred on the origin as the targets are)."""
    future = encoder.future
    if not future:
        return np.zeros((len(ids), 0, 0))
    column = [encoder.dynamic.index(n) for n in future]
    values = np.stack([horizon_values[n] for n in future], axis=2)  # (S, h, F)
    center = np.stack([scalers[sid][column, 0] for sid in ids])[:, None, :]
    scale = np.stack([scalers[sid][column, 1] for sid in ids])[:, None, :]
    return (values - center) / scale - np.asarray(origin, np.float64)[:, None, column]


def _named(raw) -> list[tuple[str, Mapping]]:
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        raise DataError(["covariates"], "must be an object: {name: {kind, values}}")
    for name, spec in raw.items():
        if not isinstance(spec, Mapping):
            raise DataError(["covariates", name], "must be an object with kind and values")
    return list(raw.items())


def _declare(name: str, spec: Mapping, lengths: Mapping[str, int], loc: list) -> Declared:
    kind = spec.get("kind")
    if kind not in KINDS:
        raise DataError([*loc, "kind"], f"must be one of {list(KINDS)}")
    by_series = spec.get("values")
    if not isinstance(by_series, Mapping):
        raise DataError([*loc, "values"], "must be an object: {series id: value(s)}")
    strangers = [sid for sid in by_series if sid not in lengths]
    if strangers:
        raise DataError([*loc, "values", strangers[0]], "no series has this id")
    values: dict[str, float | str | np.ndarray] = {}
    for sid, length in lengths.items():
        if sid not in by_series:
            raise DataError([*loc, "values", sid], "missing: every series needs every covariate")
        where = [*loc, "values", sid]
        if kind == "static":
            values[sid] = _static_value(by_series[sid], where)
        else:
            values[sid] = _dynamic_values(by_series[sid], length, where)
    if kind == "static" and len({type(v) for v in values.values()}) > 1:
        raise DataError([*loc, "values"], "mixes numbers and categories")
    return Declared(name, kind, values)


def _static_value(value, loc: list) -> float | str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) \
            or not np.isfinite(value):
        raise DataError(loc, "must be a finite number or a category (a string)")
    return float(value)


def _dynamic_values(raw, length: int, loc: list) -> np.ndarray:
    values = _as_values(raw, loc)
    if len(values) != length:
        raise DataError(loc, f"has {len(values)} values; its series has {length}")
    return values


def _dynamic_scalers(dynamic: list[str], declared: list[Declared], ids: list[str],
                     known: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each series' (centre, scale) per dynamic covariate: the known one, else fitted."""
    by_name = {c.name: c for c in declared}
    new = [sid for sid in ids if sid not in known]
    fitted = {sid: np.zeros((len(dynamic), 2)) for sid in new}
    for j, name in enumerate(dynamic):
        scalers = fit_scalers("standard", [by_name[name].values[sid] for sid in new])
        for sid, scaler in zip(new, scalers, strict=True):
            fitted[sid][j] = scaler.center, scaler.scale
    return {sid: known[sid] if sid in known else fitted[sid] for sid in ids}


def _static_columns(encoder: Encoder, by_name: dict[str, Declared], ids: list[str]
                    ) -> np.ndarray:
    blocks = []
    for name, kind in zip(encoder.names, encoder.kinds, strict=True):
        if kind != "static":
            continue
        values = [by_name[name].values[sid] for sid in ids]
        if name in encoder.categories:
            if not all(isinstance(v, str) for v in values):
                raise DataError(["covariates", name], "the model took it as a category (a string)")
            known = encoder.categories[name]
            position = {c: i for i, c in enumerate(known)}
            onehot = np.zeros((len(ids), len(known)))
            onehot[np.arange(len(ids)), [position.get(v, len(known) - 1) for v in values]] = 1
            blocks.append(onehot)
        else:
            if any(isinstance(v, str) for v in values):
                raise DataError(["covariates", name], "the model took it as a number")
            mean, std = encoder.static_scales[name]
            blocks.append(((np.array(values, dtype=np.float64) - mean) / std)[:, None])
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(ids), 0))
