"""/v1/sweeps: hyperparameter searches whose trials are training jobs fanned out to the workers.

A sweep is stored with all its trials (jobs with their datasets) in one commit, then each trial
is woken like any job: claims, leases, the reaper and fencing hold for trials as for any job.
The sweep settles in the database when its last trial finishes (service.store.sweep_settlement).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response
from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select

import bptt
from service.api import (
    admission,
    datasets,
    lookup,
    params,
    sweep_space,
    validation,
)
from service.api.auth import authenticate, current_tenant_id
from service.api.bodies import read_body
from service.api.documents import job_progress, json_response
from service.api.extensions import current_settings, get_session
from service.api.jobs import QUOTA_RETRY_AFTER_S, epochs_total, job_inputs, with_calendar
from service.api.problems import Problem, ValidationProblem
from service.api.schemas import NAME_MAX_LENGTH, SweepList, SweepOut, SweepRequest, TrialOut
from service.store import (
    epoch_shares,
    plans,
    queue,
    repository,
    sweep_settlement,
    worker_speed,
)
from service.store.tables import Job, Sweep, new_id, utcnow

bp = Blueprint("sweeps", __name__, url_prefix="/v1/sweeps")
bp.before_request(authenticate)
log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100


def get_sweep(sweep_id: str, *, loc: list[str | int] | None = None) -> Sweep:
    """The current tenant's sweep (full or short id), or 404 (another tenant's sweep is as good
    as unknown), or 409 for a short id of several sweeps; as jobs.get_job."""
    return lookup.find(Sweep, sweep_id, kind="sweep", loc=loc or ["path", "sweep_id"])


@bp.post("")
def create_sweep() -> Response:
    """Validate the base job and every trial's spec, store sweep and trials, wake the workers."""
    settings, session, tenant_id = current_settings(), get_session(), current_tenant_id()
    body = read_body(query_fields=frozenset())
    if body.is_csv:
        raise Problem("A sweep is a JSON document; send the series (or a dataset_id) inside "
                      "`job`.", status=415)
    request = _envelope(body.data)
    if request.budget > settings.max_sweep_trials:
        raise ValidationProblem([{"loc": ["budget"],
                                  "msg": f"must be at most {settings.max_sweep_trials}"}])
    if "warm_start" in request.job:
        raise ValidationProblem([{"loc": ["job", "warm_start"],
                                  "msg": "not supported in a sweep's trials"}])
    for field in ("name", "labels"):
        if field in request.job:
            raise ValidationProblem([{"loc": ["job", field],
                                      "msg": f"give the sweep's {field} beside `job`; each "
                                             "trial takes it"}])
    base = _base_job(request.job, settings)
    trials = _trials(request, base, settings)
    running = session.scalar(select(func.count()).select_from(Sweep).where(
        Sweep.tenant_id == tenant_id, Sweep.status == "running")) or 0
    if running >= settings.max_running_sweeps_per_tenant:
        raise Problem(f"{running} sweeps are still running; the limit is "
                      f"{settings.max_running_sweeps_per_tenant}.", status=429,
                      headers={"Retry-After": str(QUOTA_RETRY_AFTER_S)})
    session.commit()  # end the read phase: the inserts get a transaction of their own
    sweep = Sweep(id=new_id(), tenant_id=tenant_id, status="running", metric=request.metric,
                  trials_total=len(trials), created_at=utcnow(), name=request.name,
                  labels=request.labels or None,
                  request={"space": request.space, "strategy": request.strategy,
                           "budget": request.budget, "seed": request.seed,
                           "trials": [trial.settings for trial in trials]})
    session.add(sweep)
    session.flush()
    ids = [repository.create_job(
        session, tenant_id=tenant_id, spec=trial.spec.to_dict(),
        resolved_spec=trial.plan.to_dict(), series=base.series, dataset=base.dataset,
        num_points=base.num_points, epochs_total=epochs_total(trial.plan), sweep_id=sweep.id,
        trial=i, estimate=trial.estimate, labels=request.labels, covariates=base.covariates,
        name=None if request.name is None else trial_name(request.name, i)).id
        for i, trial in enumerate(trials)]
    session.commit()
    for job_id in ids:
        queue.wake(settings, queue.TRAIN_TASK, job_id)  # after the commit; never raises
    log.info("sweep submitted with %d trials", len(ids),
             extra={"sweep_id": sweep.id, "tenant_id": tenant_id})
    response = json_response(_document(sweep), 202)
    response.headers["Location"] = f"/v1/sweeps/{sweep.id}"
    return response


@bp.get("")
def list_sweeps() -> Response:
    """The tenant's sweeps, newest first, a page at a time (trials left out: see each sweep)."""
    params.refuse_unknown(("limit", "cursor"))
    limit = params.int_arg("limit", default=DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
    before = params.cursor_arg()
    query = select(Sweep).where(Sweep.tenant_id == current_tenant_id())
    if before is not None:
        created_at, sweep_id = before
        query = query.where(or_(Sweep.created_at < created_at,
                                and_(Sweep.created_at == created_at, Sweep.id < sweep_id)))
    rows = list(get_session().scalars(
        query.order_by(Sweep.created_at.desc(), Sweep.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    cursor = (params.encode_cursor(page[-1].created_at, page[-1].id)
              if len(rows) > limit else None)
    return json_response(SweepList(sweeps=[_document(s, with_trials=False) for s in page],
                                   next_cursor=cursor))


@bp.get("/<sweep_id>")
def show_sweep(sweep_id: str) -> Response:
    """The sweep, each trial with its settings, status and score, and the best trial."""
    return json_response(_document(get_sweep(sweep_id)))


@bp.post("/<sweep_id>/cancel")
def cancel_sweep(sweep_id: str) -> Response:
    """Cancel the sweep and its trials (running ones stop within an epoch); 409 if finished."""
    session = get_session()
    sweep = get_sweep(sweep_id)
    if sweep.finished_at is not None:
        raise Problem(f"The sweep has already finished ({sweep.status}).", status=409)
    sweep_settlement.cancel(session, sweep.id)
    session.commit()
    session.refresh(sweep)
    log.info("sweep cancelled", extra={"sweep_id": sweep.id})
    return json_response(_document(sweep), 202 if sweep.finished_at is None else 200)


def trial_name(sweep_name: str, trial: int) -> str:
    """A trial's name: its sweep's, and its number (within the name's length limit)."""
    number = f" #{trial}"
    return sweep_name[:NAME_MAX_LENGTH - len(number)] + number


def _envelope(data: Any) -> SweepRequest:
    """The sweep request's own fields, typed (the job part is checked next)."""
    errors: list[dict[str, Any]] = []
    fields = dict(data) if isinstance(data, dict) else data
    tags = validation.run_tags(fields, errors) if isinstance(fields, dict) else None
    try:
        request = SweepRequest.model_validate(fields)
    except ValidationError as exc:
        errors += validation.pydantic_errors(exc)
    if errors:
        raise ValidationProblem(errors[:validation.MAX_ERRORS])
    assert tags is not None
    return request.model_copy(update={"name": tags.name, "labels": tags.labels})


def _base_job(job: dict[str, Any], settings) -> validation.TrainingRequest:
    """The base job request, checked exactly as POST /v1/jobs checks one, errors under `job`."""
    dataset = datasets.selection_from_request(job, prefix=("job",))
    try:
        return validation.training_request(job, settings, dataset=dataset)
    except ValidationProblem as exc:
        raise ValidationProblem([{**e, "loc": ["job", *e["loc"]]} for e in exc.errors]) from None


@dataclass(frozen=True)
class _Trial:
    """One trial as it will be stored: its settings, its spec, plan and cost estimate."""

    settings: dict[str, Any]
    spec: bptt.TrainingSpec
    plan: bptt.TrainingSpec
    estimate: dict[str, Any]


def _trials(request: SweepRequest, base: validation.TrainingRequest, settings) -> list[_Trial]:
    """Every trial, each spec checked as a job's would be, its cost included."""
    try:
        drawn = sweep_space.trials(request.space, request.strategy, request.budget, request.seed)
    except sweep_space.SpaceError as exc:
        raise ValidationProblem([{"loc": ["space", *e["loc"]], "msg": e["msg"]}
                                 for e in exc.errors]) from None
    out, errors = [], []
    base_spec = base.spec.to_dict()
    lengths = base.lengths
    speed = worker_speed.current(get_session(), threads=settings.train_threads)
    shares = epoch_shares.recent(get_session(), tenant_id=current_tenant_id())
    for i, trial in enumerate(drawn):
        spec, problems = validation.trial_spec(sweep_space.apply(base_spec, trial), base,
                                               settings)
        plan = estimate = None
        if spec is not None:  # the trial's cost, as the job it becomes (service.api.admission)
            plan = plans.resolve(plans.with_series_freq(spec, base.series), lengths, settings)
            plan = with_calendar(plan, base, spec_loc=("job",))  # as a job's, at submit
            estimate, problems = admission.admit(spec, plan, lengths, settings, speed, shares,
                                                 inputs=job_inputs(plan, base))
        for problem in problems:
            path = ".".join(map(str, problem["loc"]))
            loc = ["space", path] if path in trial else ["job", *problem["loc"]]
            errors.append({"loc": loc, "msg": f"trial {i} ({trial}): {problem['msg']}"})
        if spec is not None and request.metric == "cv_mase" and spec.cross_validation is None:
            errors.append({"loc": ["metric"], "msg": "cv_mase needs job.cross_validation"})
        if spec is not None and plan is not None and estimate is not None:
            out.append(_Trial(trial, spec, plan, estimate))
    if errors:
        raise ValidationProblem(errors[:validation.MAX_ERRORS])
    return out


def _document(sweep: Sweep, *, with_trials: bool = True) -> SweepOut:
    """A sweep as GET /v1/sweeps/{id} answers it."""
    session = get_session()
    settings_of = sweep.request.get("trials", [])
    jobs = list(session.scalars(select(Job).where(Job.sweep_id == sweep.id)
                                .order_by(Job.trial))) if with_trials else []
    counts = sweep_settlement.counts(session, sweep.id)
    best = session.get(Job, sweep.best_job_id) if sweep.best_job_id else None
    return SweepOut(
        id=sweep.id, name=sweep.name, labels=sweep.labels or {},
        status=sweep.status,  # type: ignore[arg-type]
        created_at=sweep.created_at, finished_at=sweep.finished_at,
        strategy=sweep.request["strategy"], budget=sweep.request["budget"], metric=sweep.metric,
        space=sweep.request["space"], trials_total=sweep.trials_total,
        trials_finished=sum(n for s, n in counts.items()
                            if s not in sweep_settlement.UNFINISHED),
        best_job_id=sweep.best_job_id, best_score=best.score if best else None,
        trials=[TrialOut(job_id=j.id, trial=j.trial or 0,
                         settings=settings_of[j.trial] if j.trial is not None
                         and j.trial < len(settings_of) else {},
                         status=j.status,  # type: ignore[arg-type]
                         score=j.score,
                         progress=job_progress(j),
                         error=j.error) for j in jobs],
    )
