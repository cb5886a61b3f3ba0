"""/v1/jobs/{id}/series/{series_id}/...: forecasts of a training series from its stored state,
and appending new observations to it, so clients never send a series' history again.

The worker stores each training series' state (bptt.state) with the model. An append reads the
state, slides the window over the new values and writes the new state only if nobody else wrote
one since (its version): two clients appending at once get one success and one 409, never an
interleaving.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, request
from pydantic import ValidationError
from sqlalchemy import select, update

import bptt
from bptt import DataError, SeriesState, forecast_state
from service.api import forecast_covariates, params, validation
from service.api.auth import authenticate
from service.api.bodies import read_body
from service.api.documents import forecasts_document, json_response
from service.api.extensions import current_settings, get_session
from service.api.jobs import get_job
from service.api.problems import Problem, ValidationProblem
from service.api.schemas import ObservationsIn, SeriesForecastOut
from service.store.forecast_batches import load_model
from service.store.forecast_dates import job_freq, training_dates
from service.store.tables import Job, utcnow
from service.store.tables import SeriesState as SeriesStateRow

bp = Blueprint("series_states", __name__, url_prefix="/v1/jobs/<job_id>/series/<path:series_id>")
bp.before_request(authenticate)
log = logging.getLogger(__name__)


FUTURE = "future_covariates."  # a query parameter per future covariate: future_covariates.promo


@bp.get("/forecast")
def series_forecast(job_id: str, series_id: str) -> Response:
    """The series' forecast from its stored state (nothing is read again); a model with future
    covariates takes their values over the horizon as `future_covariates.NAME=v1,v2,...`."""
    future_params = [name for name in request.args if name.startswith(FUTURE)]
    params.refuse_unknown(("horizon", "quantiles", *future_params))
    horizon = params.int_arg("horizon", default=None, minimum=1)
    quantiles = params.float_list_arg("quantiles")
    future = {name.removeprefix(FUTURE): params.float_list_arg(name) or []
              for name in future_params} if future_params else None
    job, model, row = _state_of(job_id, series_id)
    errors = forecast_covariates.series_future_errors(model, future, series_id, horizon,
                                                      horizon_loc=["query", "horizon"])
    if errors:  # located as the query writes them
        raise ValidationProblem([{**e, "loc": ["query", ".".join(map(str, e["loc"]))]}
                                 if e["loc"][0] == "future_covariates" else e for e in errors])
    state = SeriesState.from_bytes(row.state)
    return json_response(_document(job, row, model, state, horizon, quantiles, future))


@bp.post("/observations")
def append_observations(job_id: str, series_id: str) -> Response:
    """Append values after the series' last one; answer the updated forecast."""
    settings, session = current_settings(), get_session()
    body = read_body(query_fields=frozenset())
    if body.is_csv:
        raise Problem("Send observations as JSON: {\"values\": [...]}.", status=415)
    try:
        wanted = ObservationsIn.model_validate(body.data)
    except ValidationError as exc:
        raise ValidationProblem(validation.pydantic_errors(exc)[:validation.MAX_ERRORS]) from None
    if len(wanted.values) > settings.max_points:
        raise ValidationProblem([{"loc": ["values"],
                                  "msg": f"at most {settings.max_points} values"}])
    job, model, row = _state_of(job_id, series_id)
    errors = forecast_covariates.appended_errors(model, wanted.covariates, len(wanted.values))
    errors += forecast_covariates.series_future_errors(
        model, wanted.future_covariates, series_id, wanted.horizon, horizon_loc=["horizon"])
    if errors:
        raise ValidationProblem(errors[:validation.MAX_ERRORS])
    try:
        bptt.resolve_forecast_request(model, wanted.horizon, wanted.quantiles)
        state = bptt.append_observations(model, SeriesState.from_bytes(row.state), wanted.values,
                                         covariates=wanted.covariates)
    except DataError as exc:
        raise ValidationProblem([{"loc": exc.loc, "msg": exc.msg}]) from None
    written = session.execute(
        update(SeriesStateRow)
        .where(SeriesStateRow.id == row.id, SeriesStateRow.version == row.version)
        .values(state=state.to_bytes(), length=state.length, version=row.version + 1,
                updated_at=utcnow())
        .execution_options(synchronize_session=False))
    if not written.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        raise Problem("The series changed while this request read it; send it again.",
                      status=409)
    session.commit()
    session.refresh(row)
    log.info("observations appended", extra={"job_id": job.id, "count": len(wanted.values)})
    return json_response(_document(job, row, model, state, wanted.horizon, wanted.quantiles,
                                   wanted.future_covariates))


def _state_of(job_id: str, series_id: str) -> tuple[Job, bptt.Model, SeriesStateRow]:
    """The tenant's succeeded job, its model and the series' state row, or 404/409."""
    session = get_session()
    job = get_job(job_id)
    if job.status != "succeeded":
        raise Problem(f"The job is {job.status}; series states exist once it has succeeded.",
                      status=409)
    row = session.scalar(select(SeriesStateRow).where(
        SeriesStateRow.job_id == job.id, SeriesStateRow.series_id == series_id))
    loaded = load_model(session, job_id=job.id)
    if row is None or loaded is None:
        raise Problem(f"The job has no training series {series_id!r}.", status=404)
    return job, loaded[1], row


def _document(job: Job, row: SeriesStateRow, model: bptt.Model, state: SeriesState,
              horizon: int | None, quantiles: list[float] | None,
              future_covariates: dict[str, list[float]] | None) -> SeriesForecastOut:
    try:
        item: dict[str, Any] = forecast_state(model, state, horizon, quantiles,
                                              future_covariates=future_covariates)
    except DataError as exc:
        raise ValidationProblem([{"loc": exc.loc, "msg": exc.msg}]) from None
    # the series' steps' ds: its training start and freq, stepped past everything appended
    ds = training_dates(get_session(), job_id=job.id, horizon=len(item["mean"]),
                        default_freq=job_freq(job), lengths={state.series_id: row.length})
    return SeriesForecastOut(job_id=job.id, series_id=state.series_id, length=row.length,
                             version=row.version,
                             forecast=forecasts_document([item], ds).forecasts[0])
