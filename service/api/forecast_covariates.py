"""A forecast's covariates, checked against the model before anything is stored or queued:
what a request's series carry (as a job request's items carry them), the future covariates'
values over the horizon, and what a stateful append or forecast gives.

The engine reads the model's covariates in its own form (bptt.forecast's covariates and
future_covariates); these checks name the API's fields instead (`series.0.covariates.temp`,
`future_covariates.promo.north`). The callers cap the errors they answer with."""

from __future__ import annotations

from typing import Any

import bptt
from service.api.covariate_checks import dynamic_problem, static_problem
from service.api.schemas import ForecastRequest, SeriesIn
from service.store.dataset_rows import DatasetSelection


def request_errors(model: bptt.Model, request: ForecastRequest, where: list[str],
                   source: DatasetSelection | None = None) -> list[dict[str, Any]]:
    """What a forecast request gives, or leaves out, of the model's covariates: none to a model
    trained without them; to one trained with them, the horizon's values of each future one for
    every series forecast, whose own are sent with them or are columns of the dataset
    (`source`) named."""
    fields = [*where, "future_covariates"]
    errors = item_errors(model, request.series or [])
    if model.covariates is None:
        if request.future_covariates is not None:
            errors.append({"loc": fields, "msg": "the model was trained without covariates"})
        return errors
    if source is not None:
        missing = _dataset_missing(model, source)
        if missing:
            return missing
    ids = (source.ids if source is not None else model.series_ids if request.series is None
           else [s.id for s in request.series])
    return errors + future_errors(model, request.future_covariates, ids, request.horizon,
                                  horizon_loc=[*where, "horizon"], loc=fields)


def _dataset_missing(model: bptt.Model, source: DatasetSelection) -> list[dict[str, Any]]:
    """The model's covariates a dataset's series do not carry: a dynamic one its covariate
    columns lack, a static one its static table lacks."""
    encoder = model.covariates
    assert encoder is not None
    missing = [name for name, kind in zip(encoder.names, encoder.kinds, strict=True)
               if name not in (source.static if kind == "static" else source.covariates)]
    if not missing:
        return []
    has = ", ".join(map(repr, [*source.covariates, *source.static])) or "none"
    return [{"loc": ["dataset_id"], "msg": (
        f"the model reads the covariates {missing}, which the dataset's series do not carry "
        f"(its covariate columns: {has}): send the series, each with its covariates, in "
        "`series`")}]


def item_errors(model: bptt.Model, series: list[SeriesIn]) -> list[dict[str, Any]]:
    """The covariates series sent to a forecast carry, as a job request's items carry them:
    none for a model trained without; else every one the model was trained with, of the kind
    and type it was (a static category stays a category; a new one is `<unknown>` to it)."""
    if model.covariates is None:
        return [{"loc": ["series", i, "covariates"], "msg": "the model was trained without "
                 "covariates"} for i, item in enumerate(series) if item.covariates is not None]
    encoder = model.covariates
    kinds = dict(zip(encoder.names, encoder.kinds, strict=True))
    errors = []
    for i, item in enumerate(series):
        given = item.covariates or {}
        errors += [{"loc": ["series", i, "covariates", name], "msg": f"not a covariate of the "
                    f"model (those are {list(kinds)})"} for name in given if name not in kinds]
        for name, kind in kinds.items():
            if name not in given:
                problem = f"required: the model was trained with it ({kind})"
            elif kind == "static":
                problem = (static_problem(given[name])
                           or _static_type_problem(encoder, name, given[name]))
            else:
                problem = dynamic_problem(given[name], len(item.values))
            if problem:
                errors.append({"loc": ["series", i, "covariates", name], "msg": problem})
    return errors


def _static_type_problem(encoder: Any, name: str, value: float | str) -> str | None:
    """A static value of the other type than in training (a number for a category)."""
    if name in encoder.categories and not isinstance(value, str):
        return "the model was trained with it as a category (a string)"
    if name not in encoder.categories and isinstance(value, str):
        return "the model was trained with it as a number"
    return None


def future_errors(model: bptt.Model, given: dict[str, dict[str, list[float]]] | None,
                  ids: list[str], horizon: int | None, *, horizon_loc: list[str | int],
                  loc: list[str | int]) -> list[dict[str, Any]]:
    """The future covariates of a forecast of the series `ids`, {name: {series id: values}},
    checked against a model trained with covariates: every future one given for every series,
    exactly the horizon's values; no other name, no other series. The model reads their values
    at every step of its horizon, so it forecasts no shorter one."""
    future = model.covariates.future
    if future and horizon is not None and horizon != model.horizon:
        return [{"loc": horizon_loc, "msg": f"must be the model's horizon, {model.horizon}: "
                 "its network reads the future covariates at every step of it"}]
    given = given or {}
    errors = [{"loc": [*loc, name], "msg": f"not a future covariate of the model (those are "
               f"{future})"} for name in given if name not in future]
    wanted = set(ids)
    for name in future:
        by_series = given.get(name)
        if by_series is None:
            errors.append({"loc": [*loc, name], "msg": f"required: its {model.horizon} values "
                           "over the horizon for each series forecast"})
            continue
        errors += [{"loc": [*loc, name, sid], "msg": "not a series of this forecast"}
                   for sid in by_series if sid not in wanted]
        for sid in ids:
            errors += _horizon_value_errors(by_series.get(sid), model.horizon, [*loc, name, sid])
    return errors


def appended_errors(model: bptt.Model, given: dict[str, list[float | None]] | None,
                    count: int) -> list[dict[str, Any]]:
    """The covariates of `count` values appended to a training series, {name: values}: none
    for a model trained without them; else each historical and future one's values at the
    appended steps (its static ones the model kept)."""
    if model.covariates is None:
        return [] if given is None else [{"loc": ["covariates"], "msg": "the model was "
                                          "trained without covariates"}]
    given = given or {}
    dynamic = model.covariates.dynamic
    errors = [{"loc": ["covariates", name], "msg": f"not a historical or future covariate of "
               f"the model (those are {dynamic})"} for name in given if name not in dynamic]
    for name in dynamic:
        if name not in given:
            errors.append({"loc": ["covariates", name], "msg": "required: its values at the "
                                                               "appended steps"})
        elif len(given[name]) != count:
            errors.append({"loc": ["covariates", name], "msg": f"needs {count} values, one "
                           f"per appended value; got {len(given[name])}"})
    return errors


def series_future_errors(model: bptt.Model, given: dict[str, list[float]] | None,
                         series_id: str, horizon: int | None, *,
                         horizon_loc: list[str | int]) -> list[dict[str, Any]]:
    """A one-series forecast's future covariates, {name: values}, checked as
    future_errors checks a request's (located by name alone)."""
    if model.covariates is None:
        return [] if given is None else [{"loc": ["future_covariates"], "msg": "the model "
                                          "was trained without covariates"}]
    by_series = None if given is None else {name: {series_id: values}
                                             for name, values in given.items()}
    errors = future_errors(model, by_series, [series_id], horizon, horizon_loc=horizon_loc,
                           loc=["future_covariates"])
    return [{**e, "loc": e["loc"][:2]} if e["loc"][0] == "future_covariates" else e
            for e in errors]


def _horizon_value_errors(values: list[float] | None, horizon: int, loc: list[str | int]
                          ) -> list[dict[str, Any]]:
    """One future covariate's values for one series: exactly `horizon` of them."""
    if values is None:
        return [{"loc": loc, "msg": f"required: its {horizon} values over the horizon"}]
    if len(values) != horizon:
        return [{"loc": loc, "msg": f"needs exactly {horizon} values (the horizon); got "
                                    f"{len(values)}"}]
    return []
