"""Response documents built from rows, through the schemas the OpenAPI document describes."""

from __future__ import annotations

import zlib
from typing import Any

from flask import Response
from pydantic import BaseModel

from service.api.estimates import remaining_seconds
from service.api.schemas import (
    ClipEpoch,
    ClipSettings,
    DatasetInfo,
    Diagnostics,
    EpochMetricsOut,
    ForecastBatchOut,
    ForecastOut,
    ForecastResult,
    GradFlow,
    InsightEpoch,
    JobList,
    JobOut,
    JobSummary,
    MemberOut,
    MetricsPage,
    Progress,
)
from service.store.codec import decompress_json
from service.store.forecast_batches import ForecastTable
from service.store.job_listing import ListedJob
from service.store.tables import EpochMetric, ForecastBatch, Job, utcnow


def json_response(document: BaseModel | ForecastTable, status: int = 200) -> Response:
    """A JSON response with `document` serialized by its schema (NaN becomes null)."""
    if isinstance(document, ForecastTable):  # bytes as they are: no 18 MB str to encode again
        return Response(document.json_bytes(), status=status, mimetype="application/json")
    return Response(document.model_dump_json(), status=status, mimetype="application/json")


def job_document(
    job: Job, *, dataset: tuple[int, int, str | None] | None, latest: EpochMetric | None,
    best_val_loss: float | None
) -> JobOut:
    """A job as GET /v1/jobs/{id} answers it."""
    return _job(job, dataset, latest, best_val_loss)


def submitted_job_document(job: Job, *, dataset: tuple[int, int, str | None] | None) -> JobOut:
    """The job as POST /v1/jobs first answered it (what an Idempotency-Key replays)."""
    # Built from the fields that never change after submission, so a replay days later is
    # byte-for-byte the first answer, whatever the job has done since.
    return _job(job, dataset, None, None).model_copy(update={
        "status": "queued", "started_at": None, "finished_at": None, "error": None,
        "attempts": 0, "cancel_requested": False, "best_epoch": None, "usage": None,
        "progress": _progress_at_submit(job), "duration_seconds": None, "score": None,
        "cv_mase": None,
    })


def job_list(rows: list[ListedJob], next_cursor: str | None) -> JobList:
    """A page of jobs as GET /v1/jobs answers it."""
    return JobList(jobs=[_summary(row.job, num_series=row.num_series,
                                  best_val_loss=row.best_val_loss) for row in rows],
                   next_cursor=next_cursor)


def _summary(job: Job, *, num_series: int | None, best_val_loss: float | None) -> JobSummary:
    """A job as GET /v1/jobs lists it: the row, its dataset's size and its best loss."""
    spec = job.resolved_spec or job.spec or {}
    model = spec.get("model") or {}
    duration = None
    if job.started_at is not None and job.finished_at is not None:
        duration = (job.finished_at - job.started_at).total_seconds()
    return JobSummary(
        id=job.id,
        name=job.name,
        labels=job.labels or {},
        status=job.status,  # type: ignore[arg-type]
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_seconds=duration,
        progress=job_progress(job),
        error=job.error,
        cell=model.get("cell"),
        hidden_size=model.get("hidden_size"),
        num_layers=model.get("num_layers"),
        horizon=spec.get("horizon"),
        num_series=num_series,
        best_val_loss=best_val_loss,
        cv_mase=(job.cross_validation or {}).get("mase"),
        sweep_id=job.sweep_id,
        trial=job.trial,
        score=job.score,
        estimate=job.estimate,
    )


def metrics_page(job_id: str, rows: list[EpochMetric], *, since: int, has_more: bool
                 ) -> MetricsPage:
    """Metrics rows after `since` as GET /v1/jobs/{id}/metrics answers them."""
    return MetricsPage(
        job_id=job_id,
        metrics=[_metrics(row) for row in rows],
        last_epoch=rows[-1].epoch if rows else since,
        has_more=has_more,
    )


def diagnostics(job: Job, rows: list[EpochMetric], *, since: int, has_more: bool
                ) -> Diagnostics:
    """Gradient flow and clipping history as GET /v1/jobs/{id}/diagnostics answers them."""
    clip = ((job.resolved_spec or job.spec).get("training") or {}).get("clip") or {}
    return Diagnostics(
        job_id=job.id,
        clip=ClipSettings(max_norm=clip.get("max_norm"), max_value=clip.get("max_value")),
        grad_flow=[GradFlow(epoch=r.epoch, values=r.grad_flow or []) for r in rows],
        clipping=[ClipEpoch(epoch=r.epoch, grad_norm=r.grad_norm, max_grad_norm=r.max_grad_norm,
                            clip_fraction=r.clip_fraction) for r in rows],
        insight=[InsightEpoch(epoch=r.epoch, **r.insight) for r in rows if r.insight],
        last_epoch=rows[-1].epoch if rows else since,
        has_more=has_more,
    )


def forecasts_document(results: list[dict[str, Any]],
                       ds: dict[str, list[str | int] | None] | None = None) -> ForecastResult:
    """bptt.forecast's output as a document: lists of numbers, quantiles keyed by their text,
    and each series' steps' ds (by id) when given."""
    # model_construct: the engine's own output has the document's types by construction, and
    # validating ten thousand forecasts again cost a fifth of a large request's time.
    return ForecastResult.model_construct(forecasts=[
        ForecastOut.model_construct(
            id=item["id"],
            ds=(ds or {}).get(item["id"]),
            mean=item["mean"].tolist(),
            quantiles={str(float(q)): path.tolist() for q, path in item["quantiles"].items()},
        )
        for item in results
    ])


def forecast_batch_json(batch: ForecastBatch) -> bytes:
    """GET /v1/forecasts/{id}'s JSON: a succeeded batch's forecasts spliced in as the worker
    stored them (JSON its schema wrote), not parsed, validated and written again (3 s for
    48k series)."""
    if batch.status != "succeeded" or batch.result_zlib is None:
        return forecast_batch_document(batch).model_dump_json().encode()
    envelope = forecast_batch_document(batch, with_result=False).model_dump_json(
        exclude={"result"}).encode()
    # `result` is the model's last field: the envelope without it, then the stored document.
    return envelope[:-1] + b',"result":' + zlib.decompress(batch.result_zlib) + b"}"


def forecast_batch_document(batch: ForecastBatch, *, with_result: bool = True
                            ) -> ForecastBatchOut:
    """A forecast batch as GET /v1/forecasts/{id} answers it."""
    result = None
    if with_result and batch.status == "succeeded" and batch.result_zlib is not None:
        result = ForecastResult.model_validate(decompress_json(batch.result_zlib))
    return ForecastBatchOut(
        id=batch.id,
        job_id=batch.job_id,
        status=batch.status,  # type: ignore[arg-type]
        created_at=batch.created_at,
        started_at=batch.started_at,
        finished_at=batch.finished_at,
        error=batch.error,
        result=result,
    )


def _job(job: Job, dataset: tuple[int, int, str | None] | None, latest: EpochMetric | None,
         best_val_loss: float | None) -> JobOut:
    """The full job model: the list's summary and the rest."""
    summary = _summary(job, num_series=None if dataset is None else dataset[0],
                       best_val_loss=best_val_loss)
    return JobOut(
        **dict(summary),  # the summary's fields, nested models as they are
        attempts=job.attempts,
        cancel_requested=job.cancel_requested,
        best_epoch=job.best_epoch,
        latest_metrics=None if latest is None else _metrics(latest),
        dataset=None if dataset is None else DatasetInfo(num_series=dataset[0],
                                                         num_points=dataset[1],
                                                         dataset_id=dataset[2]),
        spec=job.resolved_spec or job.spec,  # type: ignore[arg-type]
        requested_spec=job.spec,  # type: ignore[arg-type]
        warm_start_job_id=job.warm_start_job_id,
        cross_validation=job.cross_validation,
        usage=job.usage,
        freq_inferred=_freq_inferred(job),
        covariates=job.covariates,
    )


def _freq_inferred(job: Job) -> str | None:
    """The freq the service set from the series: in the plan, though the request had none."""
    if (job.spec or {}).get("freq") is not None:
        return None
    return (job.resolved_spec or {}).get("freq")


def job_progress(job: Job) -> Progress:
    """Where the job is, from what the workers record on it: epochs over the whole job, and the
    member in training with its epoch (the members before it have finished, see `members`)."""
    finished = [MemberOut(**m) for m in job.members or ()]
    plan = (job.resolved_spec or {}).get("training") or {}
    members, budget = plan.get("ensemble"), plan.get("epochs")
    stage = job.stage if job.status == "running" else None
    left = remaining_seconds(job.estimate, status=job.status, started_at=job.started_at,
                             epochs_done=job.epochs_done, epochs_total=job.epochs_total,
                             stage=stage, now=utcnow(), epoch_batches=job.epoch_batches)
    progress = Progress(epochs_done=job.epochs_done, epochs_total=job.epochs_total,
                        finished_members=finished, stage=stage, remaining_seconds=left)
    if members is None or budget is None:
        return progress  # a job from before resolved specs were stored: epochs only
    if len(finished) < members:
        member, epoch = len(finished) + 1, job.epochs_done - sum(m.epochs for m in finished)
    else:
        member, epoch = members, finished[-1].epochs
    return progress.model_copy(update={"member": member, "members": members,
                                       "member_epoch": epoch, "member_epochs": budget})


def _progress_at_submit(job: Job) -> Progress:
    """The progress POST /v1/jobs answered: nothing trained, the whole budget ahead."""
    plan = (job.resolved_spec or {}).get("training") or {}
    members, budget = plan.get("ensemble"), plan.get("epochs")
    left = job.estimate["seconds"] if job.estimate else None
    if members is None or budget is None:
        return Progress(epochs_done=0, epochs_total=job.epochs_total, remaining_seconds=left)
    return Progress(epochs_done=0, epochs_total=members * budget, member=1, members=members,
                    member_epoch=0, member_epochs=budget, remaining_seconds=left)


def _metrics(row: EpochMetric) -> EpochMetricsOut:
    """One metrics row."""
    return EpochMetricsOut(
        epoch=row.epoch,
        attempt=row.attempt,
        train_loss=row.train_loss,
        val_loss=row.val_loss,
        grad_norm=row.grad_norm,
        max_grad_norm=row.max_grad_norm,
        clip_fraction=row.clip_fraction,
        learning_rate=row.learning_rate,
        seconds=row.seconds,
        recorded_at=row.recorded_at,
    )
