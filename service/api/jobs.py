"""/v1/jobs: submit training jobs, follow them, cancel them, download their models, delete them."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from flask import Blueprint, Response, request

import bptt
from service.api import (
    admission,
    covariate_checks,
    datasets,
    idempotency,
    list_query,
    lookup,
    params,
    validation,
    warm_start,
)
from service.api.auth import authenticate, current_tenant_id
from service.api.bodies import read_body
from service.api.documents import diagnostics, job_document, job_list, json_response, metrics_page
from service.api.extensions import current_settings, get_session
from service.api.problems import Problem, ValidationProblem
from service.api.schemas import JobOut, SeriesPage, SeriesTailOut
from service.store import (
    dataset_rows,
    epoch_shares,
    job_listing,
    plans,
    queue,
    repository,
    worker_speed,
)
from service.store.tables import EpochMetric, Job

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
bp.before_request(authenticate)
log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100  # list pages stay small enough to render and to hold in memory
MAX_EPOCHS_PER_ANSWER = 1000  # metrics and diagnostics rows per answer; page on with ?since=
SPEC_FIELDS = frozenset(f.name for f in dataclasses.fields(bptt.TrainingSpec))
# Spec fields that are lists: one value in the query is a list of one, as documented.
LIST_QUERY = frozenset({"quantiles", "training.truncate"})
# With a CSV body, fields that are text whatever they look like (`name=2024`, `labels.v=1`).
TEXT_QUERY = frozenset({warm_start.FIELD, "name", "labels", "covariates"})
QUOTA_RETRY_AFTER_S = 30  # a queued job usually starts within this on a busy deployment
# GET /v1/jobs/{id}/series: enough history to plot before a forecast, never a whole dataset.
DEFAULT_TAIL, MAX_TAIL = 100, 1000
DEFAULT_SERIES_PER_PAGE, MAX_SERIES_PER_PAGE = 20, 100


def get_job(job_id: str, *, loc: list[str | int] | None = None) -> Job:
    """The current tenant's job `job_id` (full or short id), or 404 (another tenant's job is as
    good as unknown), or 409 for a short id of several jobs. `loc`: the body field it came
    from; the path's job_id by default."""
    return lookup.find(Job, job_id, kind="job", loc=loc or ["path", "job_id"])


@bp.post("")
def submit_job() -> Response:
    """Validate a job request completely, store job and dataset in one commit, wake a worker."""
    settings, session, tenant_id = current_settings(), get_session(), current_tenant_id()
    body = read_body(query_fields=SPEC_FIELDS | TEXT_QUERY, raw_query=TEXT_QUERY,
                     list_query=LIST_QUERY)
    key = idempotency.key_from_header()
    if key is not None:
        # Before validation and quota: a retry of an accepted request must replay, even when
        # the tenant has filled its quota since.
        replayed = idempotency.replay(session, tenant_id=tenant_id, key=key,
                                      request_hash=body.request_hash)
        if replayed is not None:
            return replayed
    warm = warm_start.from_request(session, body.data, tenant_id=tenant_id)
    dataset = datasets.selection_from_request(warm.data if warm else body.data)
    valid = validation.training_request(
        warm.data if warm else body.data, settings, spec_loc=("query",) if body.is_csv else (),
        dataset=dataset,
    )
    spec = plans.with_series_freq(valid.spec, valid.series)  # the freq inferred, if it was
    if warm is not None:
        valid = dataclasses.replace(valid, covariates=warm_start.check_covariates(
            session, warm, valid.covariates, _static_items(valid),
            loc=("query",) if body.is_csv else ()))
        plan = plans.for_workers(warm_start.check_fits(session, warm, spec, valid.ids,
                                                       valid.lengths), settings)
    else:
        plan = plans.resolve(spec, valid.lengths, settings)
    plan = with_calendar(plan, valid, spec_loc=("query",) if body.is_csv else ())
    estimate = admit(valid.spec, plan, valid.lengths, spec_loc=("query",) if body.is_csv else (),
                     inputs=job_inputs(plan, valid))
    session.commit()  # end the read phase: the insert gets a transaction of its own

    def insert() -> Job:
        # The quota is checked in the insert's own transaction, with the tenant's submissions
        # taken one at a time: checked apart, concurrent submits would all see room for one
        # more and all be stored.
        repository.lock_tenant(session, tenant_id=tenant_id)
        # A key already taken is left to fail the insert below: its first answer is replayed
        # (insert_once), whatever the quota says now.
        taken = key is not None and repository.job_by_idempotency_key(
            session, tenant_id=tenant_id, key=key) is not None
        queued = repository.count_queued_jobs(session, tenant_id=tenant_id)
        if not taken and queued >= settings.max_queued_jobs_per_tenant:
            session.rollback()
            raise Problem(
                f"{queued} jobs are already queued; the limit is "
                f"{settings.max_queued_jobs_per_tenant}. Retry when some have started.",
                status=429,
                headers={"Retry-After": str(QUOTA_RETRY_AFTER_S)},
            )
        return repository.create_job(
            session,
            tenant_id=tenant_id,
            spec=valid.spec.to_dict(),
            resolved_spec=plan.to_dict(),
            series=valid.series,
            dataset=valid.dataset,
            num_points=valid.num_points,
            epochs_total=epochs_total(plan),
            idempotency_key=key,
            request_hash=body.request_hash,
            warm_start_job_id=warm.job_id if warm else None,
            name=valid.name,
            labels=valid.labels,
            estimate=estimate,
            covariates=valid.covariates,
        )

    result = idempotency.insert_once(session, insert, tenant_id=tenant_id, key=key,
                                     request_hash=body.request_hash)
    if isinstance(result, Response):
        return result
    queue.wake(settings, queue.TRAIN_TASK, result.id)  # after the commit; never raises
    log.info("job submitted", extra={"job_id": result.id, "tenant_id": tenant_id})
    return idempotency.created_response(session, result)


def with_calendar(plan: bptt.TrainingSpec, valid: validation.TrainingRequest, *,
                  spec_loc: tuple[str, ...]) -> bptt.TrainingSpec:
    """The plan with its calendar choice made from the series' dates (plans.with_calendar),
    or a 422 at `calendar` (under `spec_loc`) for an encoding they cannot carry."""
    try:
        return plans.with_calendar(plan, _dates(valid))
    except bptt.SpecError as exc:
        raise ValidationProblem([{"loc": [*spec_loc, *e["loc"]], "msg": e["msg"]}
                                 for e in exc.errors]) from None


def _dates(valid: validation.TrainingRequest) -> list[dict[str, Any]]:
    """Each series' start and freq: its item's, or a dataset's index (no values read)."""
    if valid.dataset is None:
        return valid.series
    where = dataset_rows.selection_calendar(get_session(), valid.dataset.dataset_id,
                                            valid.dataset.series_ids)
    return [{"start": start, "freq": freq} for start, freq, _ in where.values()]


def job_inputs(plan: bptt.TrainingSpec, valid: validation.TrainingRequest
               ) -> admission.JobInputs:
    """What the job's steps hold for its cost: its dynamic covariates' values, and the extra
    inputs (calendar and covariate columns) of the network the plan trains."""
    lengths = dict(zip(valid.ids, valid.lengths, strict=True))
    per_point = covariate_checks.values_per_point(valid.covariates)
    if valid.dataset is None:
        covariates = dataset_rows.library_covariates(valid.covariates or {}, valid.series)
        return admission.JobInputs(per_point, bptt.input_widths(plan, lengths, _dates(valid),
                                                                covariates))
    steps, head = bptt.input_widths(plan, lengths, _dates(valid))
    extra_steps, extra_head = _dataset_covariate_widths(plan, valid.covariates, valid.dataset)
    return admission.JobInputs(per_point, (steps + extra_steps, head + extra_head))


def _dataset_covariate_widths(plan: bptt.TrainingSpec, kinds: dict[str, str] | None,
                              dataset: dataset_rows.DatasetSelection) -> tuple[int, int]:
    """The inputs a dataset's covariates add (bptt.covariate_widths), without reading the
    values of its columns: only a static category's distinct values count (its table's)."""
    static = [name for name, kind in (kinds or {}).items() if kind == "static"]
    categories = {name: len(set(column)) for name, column in
                  _selected_static(dataset, static).items() if isinstance(column[0], str)}
    return bptt.covariate_widths(kinds or {}, plan.horizon, categories)


def _static_items(valid: validation.TrainingRequest) -> list[dict[str, Any]]:
    """The job's series items as far as a warm start's check reads them (their static
    covariates): those sent, or a dataset's from its static table."""
    if valid.dataset is None:
        return valid.series
    static = [name for name, kind in (valid.covariates or {}).items() if kind == "static"]
    columns = _selected_static(valid.dataset, static)
    return [{"covariates": {name: values[i] for name, values in columns.items()}}
            for i in range(len(valid.dataset.ids))]


def _selected_static(dataset: dataset_rows.DatasetSelection, names: list[str]
                     ) -> dict[str, list[float | str]]:
    """The static table's columns `names` for the series the job selects."""
    columns = dataset_rows.static_values(get_session(), dataset.dataset_id, names)
    if dataset.series_ids is None or not columns:
        return columns
    index = dataset_rows.load_index(get_session(), dataset.dataset_id)
    where = index.positions() if index is not None else {}
    return {name: [values[where[uid]] for uid in dataset.ids if uid in where]
            for name, values in columns.items()}


def admit(spec: bptt.TrainingSpec, plan: bptt.TrainingSpec, lengths: list[int], *,
          spec_loc: tuple[str, ...] = (),
          inputs: admission.JobInputs) -> dict[str, Any]:
    """The job's estimate, at this deployment's measured worker speed and with what the
    tenant's jobs trained of their epochs; 422 naming what drives the cost when it is over a
    limit (service.api.admission). `inputs`: what each step holds (job_inputs)."""
    settings, session = current_settings(), get_session()
    speed = worker_speed.current(session, threads=settings.train_threads)
    shares = epoch_shares.recent(session, tenant_id=current_tenant_id())
    estimate, errors = admission.admit(spec, plan, lengths, settings, speed, shares,
                                       spec_loc=spec_loc, inputs=inputs)
    if errors:
        errors = errors[:validation.MAX_ERRORS]
        raise ValidationProblem(errors, detail=admission.summary(errors))
    assert estimate is not None
    return estimate


@bp.get("")
def list_jobs() -> Response:
    """The tenant's jobs, filtered by status, cell, label and sweep, in the order asked for
    (newest first by default), a page at a time."""
    params.refuse_unknown(list_query.PARAMETERS)
    filters = list_query.job_filter()
    sort = list_query.sort()
    after = list_query.cursor(sort)
    limit = params.int_arg("limit", default=DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
    assert limit is not None
    rows = job_listing.list_jobs(get_session(), tenant_id=current_tenant_id(), filters=filters,
                                 sort=sort, after=after, limit=limit + 1)
    page = rows[:limit]
    cursor = list_query.encode_cursor(page[-1].position) if len(rows) > limit else None
    return json_response(job_list(page, cursor))


@bp.get("/<job_id>")
def show_job(job_id: str) -> Response:
    """Status, progress, latest metrics, best epoch, error, attempts and timestamps."""
    # What clients poll: job, dataset size and latest metrics come from one query.
    found = repository.job_status(get_session(), tenant_id=current_tenant_id(), job_id=job_id)
    if found is None:  # get_job answers the 404 every job route gives
        return json_response(_document(get_job(job_id)))
    return json_response(job_document(found.job, dataset=found.dataset, latest=found.latest,
                                      best_val_loss=found.best_val_loss))


@bp.get("/<job_id>/metrics")
def job_metrics(job_id: str) -> Response:
    """Per-epoch metrics with epoch > since."""
    job, rows, since, has_more = _epochs_after_since(job_id)
    return json_response(metrics_page(job.id, rows, since=since, has_more=has_more))


@bp.get("/<job_id>/diagnostics")
def job_diagnostics(job_id: str) -> Response:
    """Gradient flow through time and clipping history, per epoch after `since`."""
    job, rows, since, has_more = _epochs_after_since(job_id)
    return json_response(diagnostics(job, rows, since=since, has_more=has_more))


def _epochs_after_since(job_id: str) -> tuple[Job, list[EpochMetric], int, bool]:
    """The job, its metrics rows after ?since= (one page), since, and whether more follow."""
    params.refuse_unknown(("since",))
    job = get_job(job_id)
    since = params.int_arg("since", default=0, minimum=0)
    rows = repository.epoch_metrics_since(get_session(), job_id=job.id, since=since,
                                          limit=MAX_EPOCHS_PER_ANSWER + 1)
    return job, rows[:MAX_EPOCHS_PER_ANSWER], since, len(rows) > MAX_EPOCHS_PER_ANSWER


@bp.get("/<job_id>/series")
def job_series(job_id: str) -> Response:
    """The job's training series, each cut to its last `tail` values, a page at a time."""
    params.refuse_unknown(("tail", "limit", "offset"))
    job = get_job(job_id)
    tail = params.int_arg("tail", default=DEFAULT_TAIL, minimum=1, maximum=MAX_TAIL)
    limit = params.int_arg("limit", default=DEFAULT_SERIES_PER_PAGE, minimum=1,
                           maximum=MAX_SERIES_PER_PAGE)
    offset = params.int_arg("offset", default=0, minimum=0)
    page, total = dataset_rows.job_series_page(get_session(), job.id, offset=offset,
                                               limit=limit, tail=tail)
    return json_response(SeriesPage(
        job_id=job.id,
        series=[SeriesTailOut(id=s["id"], values=s["values"], length=s["length"],
                              start=s.get("start"), freq=s.get("freq"),
                              covariates=s.get("covariates")) for s in page],
        num_series=total,
        next_offset=offset + limit if offset + limit < total else None,
    ))


@bp.post("/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    """Cancel a queued job at once (200), or ask a running one to stop (202)."""
    session = get_session()
    job = get_job(job_id)
    outcome = repository.cancel_job(session, job_id=job.id)
    if outcome == "finished":
        session.rollback()
        session.refresh(job)
        raise Problem(f"The job has already finished ({job.status}).", status=409)
    session.commit()
    session.refresh(job)
    log.info("job cancel %s", outcome, extra={"job_id": job.id})
    # 202 while running: the worker stops between two batches, within an epoch.
    return json_response(_document(job), 200 if outcome == "cancelled" else 202)


@bp.get("/<job_id>/model")
def download_model(job_id: str) -> Response:
    """The trained model as a safetensors file (card in its metadata); ETag is its sha256."""
    session = get_session()
    job = get_job(job_id)
    if job.status != "succeeded":
        raise Problem(f"The job is {job.status}; a model exists once it has succeeded.",
                      status=409)
    digest = repository.model_digest(session, job_id=job.id)
    if digest is None:
        raise Problem("The job succeeded but no model is stored for it.", status=409)
    response = Response(mimetype="application/octet-stream")
    response.set_etag(digest)
    # private: one tenant's model must not sit in a shared cache; no-cache: revalidate (cheap).
    response.headers["Cache-Control"] = "private, no-cache"
    if request.if_none_match.contains_weak(digest):
        response.status_code = 304  # the weights are not even read
        return response
    response.set_data(repository.model_weights(session, job_id=job.id) or b"")
    response.headers.set("Content-Disposition", "attachment",
                         filename=f"bptt-{job.id}.safetensors")
    return response


@bp.delete("/<job_id>")
def delete_job(job_id: str) -> tuple[str, int]:
    """Delete a finished job and everything it produced (the database cascades)."""
    session = get_session()
    job = get_job(job_id)
    if not repository.delete_finished_job(session, job_id=job.id):
        session.rollback()
        session.refresh(job)
        raise Problem(f"The job is {job.status}; cancel it and delete it once it has stopped.",
                      status=409)
    session.commit()
    log.info("job deleted", extra={"job_id": job.id})
    return "", 204


def _document(job: Job) -> JobOut:
    """The full job document, with its dataset size and latest metrics."""
    session = get_session()
    return job_document(
        job,
        dataset=repository.dataset_size(session, job_id=job.id),
        latest=repository.latest_epoch_metrics(session, job_id=job.id),
        best_val_loss=repository.best_val_loss(session, job_id=job.id),
    )


def epochs_total(spec: bptt.TrainingSpec) -> int | None:
    """Epochs over all ensemble members before any stops early (None while epochs are open:
    a job's resolved spec always fixes them)."""
    if spec.training.epochs is None:
        return None
    return spec.training.epochs * spec.training.ensemble

