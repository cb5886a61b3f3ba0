"""`"warm_start": job_id` on a job request: continue from a finished job's model.

The new job's spec is the earlier job's with this request's fields laid over it (nested objects
merged field by field), so "continue training on new data" needs only the series, the horizon
and whatever should change. The earlier model's network must fit the merged spec; that is
checked here, before anything is stored, by resolving the spec against the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

import bptt
from service.api import lookup
from service.api.problems import ValidationProblem
from service.store import repository
from service.store.forecast_batches import load_model

FIELD = "warm_start"


@dataclass(frozen=True)
class WarmStart:
    """The job a request continues from, and the request with that job's spec merged in."""

    job_id: str
    data: dict[str, Any]


def from_request(session: Session, data: Any, *, tenant_id: int) -> WarmStart | None:
    """Take `warm_start` out of a job request; None when it has none (or it is null)."""
    if not isinstance(data, dict) or data.get(FIELD) is None:
        if isinstance(data, dict):
            data.pop(FIELD, None)
        return None
    job_id = data.pop(FIELD)
    if not isinstance(job_id, str):
        raise ValidationProblem([{"loc": [FIELD], "msg": "must be a job id (a string)"}])
    try:
        parent = repository.job_for_tenant(session, tenant_id=tenant_id, job_id=job_id)
    except repository.AmbiguousIdError as exc:
        raise lookup.ambiguous(exc, kind="job", loc=[FIELD]) from None
    if parent is None:
        raise ValidationProblem([{"loc": [FIELD], "msg": "no such job"}])
    if parent.status != "succeeded":
        raise ValidationProblem([{"loc": [FIELD],
                                  "msg": f"job is {parent.status}; only a succeeded job's "
                                         "model can be continued"}])
    return WarmStart(parent.id, _merge(parent.spec, data))


def check_fits(session: Session, warm: WarmStart, spec: bptt.TrainingSpec, ids: list[str],
               lengths: list[int]) -> bptt.TrainingSpec:
    """Refuse, naming `warm_start`, a spec the earlier model's network cannot train under;
    else the spec resolved against that model (open sizes are the model's). `ids` and
    `lengths` are the new job's series'."""
    loaded = load_model(session, job_id=warm.job_id)
    if loaded is None:
        raise ValidationProblem([{"loc": [FIELD], "msg": "the job has no stored model"}])
    try:
        plan = bptt.resolve_spec(lengths, spec, warm_start=loaded[1])
    except bptt.SpecError as exc:
        raise ValidationProblem([{"loc": [FIELD], "msg": e["msg"]} for e in exc.errors]) from None
    # The window is the earlier model's, which may be longer than what the request's own
    # checks assumed: every series must still fill it and a horizon.
    needed = plan.window.input_size + plan.horizon
    short = [{"loc": ["series", i, "values"],
              "msg": f"series {name!r} has {length} points; the continued model's "
                     f"input window {plan.window.input_size} + horizon {plan.horizon} needs at "
                     f"least {needed}"}
             for i, (name, length) in enumerate(zip(ids, lengths, strict=True))
             if length < needed]
    if short:
        raise ValidationProblem(short[:20])
    return plan


def check_covariates(session: Session, warm: WarmStart, kinds: dict[str, str] | None,
                     series: list[dict[str, Any]], *, loc: tuple[str, ...] = ()
                     ) -> dict[str, str] | None:
    """The new job's covariate kinds in the earlier model's order (its weights read them in
    that order), or a 422 at `covariates` (under `loc`): a continued model reads the same
    covariates, of the same kinds, a static category as a category and a static number as a
    number (the engine keeps the model's categories: one it never met is its unknown one).
    `series`: the new job's, carrying their values."""
    loaded = load_model(session, job_id=warm.job_id)
    if loaded is None:
        raise ValidationProblem([{"loc": [FIELD], "msg": "the job has no stored model"}])
    encoder = loaded[1].covariates
    trained = {} if encoder is None else dict(zip(encoder.names, encoder.kinds, strict=True))
    given = kinds or {}
    if given != trained:  # dicts compare without their order
        raise ValidationProblem([{"loc": [*loc, "covariates"], "msg": (
            f"must be the covariates of job {warm.job_id}'s model, which this one continues: "
            f"{trained or 'none'}")}])
    if encoder is None:
        return None
    errors = []
    for name, kind in trained.items():
        if kind != "static":
            continue
        category = name in encoder.categories
        if any(isinstance(item["covariates"][name], str) != category for item in series):
            errors.append({"loc": [*loc, "covariates", name], "msg": (
                f"the continued model took it as "
                f"{'a category (a string)' if category else 'a number'}")})
    if errors:
        raise ValidationProblem(errors)
    return {name: trained[name] for name in encoder.names}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`: nested objects field by field, everything else replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
