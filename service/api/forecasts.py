"""/v1/forecasts: forecasts from a trained job's model, in the request or as an async batch.

Workers answer the batches with `answer_batch` (service.store.forecast_batches), the same code path.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, request

from bptt import DataError, Model
from service.api import datasets, lookup, validation
from service.api.auth import authenticate, current_tenant_id
from service.api.bodies import COVARIATES, read_body
from service.api.csvio import forecasts_to_csv
from service.api.documents import forecast_batch_document, forecast_batch_json, json_response
from service.api.extensions import current_settings, get_session
from service.api.jobs import get_job
from service.api.problems import Problem, ValidationProblem
from service.api.schemas import ForecastRequest, ForecastResult
from service.api.sweeps import get_sweep
from service.store import dataset_rows, queue, repository
from service.store.codec import decompress_json
from service.store.dataset_rows import DatasetSelection
from service.store.forecast_batches import (
    ForecastTable,
    load_model,
    model_columns,
    run_forecast,
)
from service.store.forecast_dates import (
    calendar_dates,
    job_freq,
    series_dates,
    training_dates,
)
from service.store.tables import ForecastBatch, Job

bp = Blueprint("forecasts", __name__, url_prefix="/v1/forecasts")
bp.before_request(authenticate)
log = logging.getLogger(__name__)

# with a CSV body, these come in the query (`covariates` declares the CSV's covariate columns)
REQUEST_FIELDS = frozenset({"job_id", "sweep_id", "horizon", "quantiles", "future_covariates",
                            COVARIATES})
CSV = "text/csv"


def get_batch(batch_id: str) -> ForecastBatch:
    """The current tenant's forecast batch (full or short id), or 404, or 409; as get_job."""
    return lookup.find(ForecastBatch, batch_id, kind="forecast batch",
                       loc=["path", "batch_id"])


@bp.post("")
def create_forecasts() -> Response:
    """Answer small requests at once (200); store larger ones as a batch for a worker (202)."""
    settings, session = current_settings(), get_session()
    body = read_body(query_fields=REQUEST_FIELDS, raw_query=frozenset({"job_id", "sweep_id"}),
                     list_query=frozenset({"quantiles"}))  # quantiles=0.5 is [0.5]
    # the declaration told the CSV's parser which columns are covariates; their kinds are the
    # model's, against which each series' values are checked
    data = {k: v for k, v in body.data.items() if k != COVARIATES} if body.is_csv else body.data
    wanted = validation.forecast_request(data, settings, from_query=body.is_csv)
    job_loc: list[str | int] = ["query", "job_id"] if body.is_csv else ["job_id"]
    if wanted.sweep_id is not None:
        job_loc[-1] = "sweep_id"
        job = get_job(_best_trial(wanted.sweep_id, job_loc), loc=job_loc)
    else:
        job = get_job(wanted.job_id or "", loc=job_loc)
    if job.status != "succeeded":
        raise Problem(
            f"The job is {job.status}; forecasts need a job that has succeeded.",
            status=409,
            errors=[{"loc": job_loc, "msg": f"job is {job.status}, not succeeded"}],
        )
    loaded = load_model(session, job_id=job.id)
    if loaded is None:
        raise Problem("The job succeeded but no model is stored for it.", status=409,
                      errors=[{"loc": job_loc, "msg": "no model stored"}])
    model = loaded[1]
    source = None
    if wanted.dataset_id is not None:  # the series of an uploaded dataset, read from it
        source = datasets.selection(wanted.dataset_id, wanted.series_ids)
        datasets.check_lengths_for_model(source, model.spec.window.input_size or 1)
    count = (len(source.ids) if source is not None else len(wanted.series)
             if wanted.series is not None else len(model.series_ids))
    queued = count > settings.sync_forecast_max_series
    # A batch is checked by the engine's parser before it is stored; an answer given now is
    # checked by the forecast itself (its DataError becomes the same 422 below), not twice.
    validation.check_forecast_against_model(model, wanted, from_query=body.is_csv,
                                            engine_check=queued, source=source)
    # start and freq give the steps' ds, and the calendar columns of a model that reads them;
    # a model trained with covariates reads each series' own covariates
    series = None if wanted.series is None else [
        {"id": s.id, "values": s.values,
         **{k: v for k, v in (("start", s.start), ("freq", s.freq), ("covariates", s.covariates))
            if v is not None}}
        for s in wanted.series]
    ds = _step_dates(job, model, wanted, source)
    if queued:
        return _enqueue(job.id, series, wanted, source, ds)
    if source is not None:
        series = dataset_rows.read_selection(session, source.dataset_id, source.series_ids,
                                             model_columns(model))
    try:
        document = run_forecast(model, series, wanted.horizon, wanted.quantiles,
                                settings.forecast_threads, wanted.future_covariates)
    except DataError as exc:  # checked above; this is the engine's word if a rule slipped by
        raise ValidationProblem([{"loc": exc.loc, "msg": exc.msg}]) from None
    return _answer(replace(document, ds=ds))


def _step_dates(job: Job, model: Model, wanted: ForecastRequest,
                source: DatasetSelection | None) -> dict[str, list[str | int] | None]:
    """Each forecast series' steps' ds, by id: from the request's series, from the uploaded
    dataset it names (each series' start, freq and length in its index), or from the job's
    training series (stored likewise); the job's freq where a series has none."""
    horizon = wanted.horizon or model.horizon
    freq = job_freq(job)
    if source is not None:
        calendar = dataset_rows.selection_calendar(get_session(), source.dataset_id,
                                                   source.series_ids)
        return calendar_dates(calendar, horizon, default_freq=freq)
    if wanted.series is None:
        return training_dates(get_session(), job_id=job.id, horizon=horizon, default_freq=freq)
    return series_dates([{"id": s.id, "values": s.values, "start": s.start, "freq": s.freq}
                         for s in wanted.series], horizon, default_freq=freq)


def _best_trial(sweep_id: str, loc: list[str | int]) -> str:
    """The best trial's job id of a finished sweep; 404 for an unknown sweep, 409 before."""
    sweep = get_sweep(sweep_id, loc=loc)
    if sweep.best_job_id is None:
        state = "running" if sweep.finished_at is None else f"{sweep.status} without a model"
        raise Problem(f"The sweep is {state}; forecasts need its best trial.", status=409,
                      errors=[{"loc": loc, "msg": f"sweep is {state}"}])
    return sweep.best_job_id


@bp.get("/<batch_id>")
def show_batch(batch_id: str) -> Response:
    """A forecast batch's status, and its forecasts once it has succeeded."""
    batch = get_batch(batch_id)
    if batch.status == "succeeded" and batch.result_zlib is not None and _wants_csv():
        return _csv(ForecastResult.model_validate(decompress_json(batch.result_zlib)))
    return Response(forecast_batch_json(batch), mimetype="application/json")


def _enqueue(job_id: str, series: list[dict[str, Any]] | None, wanted: ForecastRequest,
             source: DatasetSelection | None, ds: dict[str, list[str | int] | None]
             ) -> Response:
    """Store the validated request as a forecast batch, commit, wake a worker: 202."""
    settings, session = current_settings(), get_session()
    session.commit()  # end the read phase: the insert gets a transaction of its own
    request: dict[str, Any] = {"series": series, "horizon": wanted.horizon,
                               "quantiles": wanted.quantiles}
    if wanted.future_covariates is not None:  # a model with future covariates reads them
        request["future_covariates"] = wanted.future_covariates
    if ds:  # each series' steps' ds, which the worker puts beside its forecast
        request["ds"] = ds
    if source is not None:  # the worker reads them from the dataset (none in the request)
        request.update(dataset_id=source.dataset_id, series_ids=source.series_ids)
    batch = repository.create_forecast_batch(
        session,
        tenant_id=current_tenant_id(),
        job_id=job_id,
        # The worker runs bptt.forecast(model, series, horizon, quantiles, future_covariates=)
        # with exactly these, and gives each series' forecast its ds from here.
        request=request,
    )
    session.commit()
    queue.wake(settings, queue.FORECAST_TASK, batch.id)  # after the commit; never raises
    log.info("forecast batch queued", extra={"batch_id": batch.id, "job_id": job_id})
    response = json_response(forecast_batch_document(batch), 202)
    response.headers["Location"] = f"/v1/forecasts/{batch.id}"
    return response


def _answer(document: ForecastResult | ForecastTable) -> Response:
    """The forecasts as JSON, or as CSV when the client prefers it."""
    return _csv(document) if _wants_csv() else json_response(document)


def _wants_csv() -> bool:
    """Whether the Accept header prefers CSV (JSON on a tie, or when it says nothing)."""
    return request.accept_mimetypes.best_match(["application/json", CSV]) == CSV


def _csv(document: ForecastResult | ForecastTable) -> Response:
    """A forecasts document as `unique_id,ds,step,mean,q...` CSV."""
    forecasts = document.model_dump()["forecasts"]
    quantiles = list(forecasts[0]["quantiles"]) if forecasts else []
    return Response(forecasts_to_csv(forecasts, quantiles), mimetype=CSV)
