"""Forecasting with a job's stored model: one code path for the API's answers and the workers'
forecast batches. No Flask here (the workers import it)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
import zlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pydantic_core
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

import bptt
from bptt import DataError, forecast_arrays
from service.settings import Settings
from service.store import dataset_rows, repository
from service.store.codec import decompress_json
from service.store.collector import collector_paused
from service.store.dbclock import db_now
from service.store.model_cache import ModelCache
from service.store.tables import ForecastBatch

# One cache per process, keyed by the sha256 of the model's bytes: the same bytes are the same
# model whoever asks, so sharing it across jobs and tenants leaks nothing.
MODELS = ModelCache()

# A result is written once and read once or twice: zlib's fastest level compresses 48k series'
# forecasts (18 MB of JSON) in 0.5 s instead of 3 s at the default, 7% larger.
RESULT_COMPRESSION_LEVEL = 1

log = logging.getLogger(__name__)


def load_model(session: Session, *, job_id: str) -> tuple[str, bptt.Model] | None:
    """(sha256, model) of a job's trained model, from the cache when possible; None if none."""
    digest = repository.model_digest(session, job_id=job_id)
    if digest is None:
        return None
    return digest, MODELS.get(
        digest, lambda: repository.model_weights(session, job_id=job_id) or b""
    )


def run_forecast(model: bptt.Model, series: list[dict[str, Any]] | None, horizon: int | None,
                 quantiles: list[float] | None, threads: int,
                 future_covariates: dict[str, dict[str, list[float]]] | None = None
                 ) -> ForecastTable:
    """bptt.forecast as a document (a ForecastResult's, written from the engine's arrays);
    raises bptt.DataError for input the model refuses. Each series item may carry its
    `covariates` as a job request's items do; `future_covariates` as the request gives them.
    threads: the engine's (BPTT_FORECAST_THREADS)."""
    series, covariates = split_covariates(model, series)
    ids, wanted, values = forecast_arrays(model, series, horizon=horizon, quantiles=quantiles,
                                          threads=threads, covariates=covariates,
                                          future_covariates=future_covariates)
    return ForecastTable(ids, wanted, values)


def model_columns(model: bptt.Model) -> list[str]:
    """The covariates a model reads, which a forecast by dataset_id reads from the dataset's
    columns and static table (the API checked that it has them)."""
    return [] if model.covariates is None else list(model.covariates.names)


def split_covariates(model: bptt.Model, series: list[dict[str, Any]] | None
                     ) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    """(the series without their items' `covariates`, those covariates in the engine's form
    {name: {"kind", "values": {series id: value(s)}}}, the kinds the model's): the request
    gives each series' covariates with it, the engine takes them by covariate."""
    if series is None or model.covariates is None:  # the API refused items with covariates
        return series, None
    bare = [{k: v for k, v in item.items() if k != "covariates"} for item in series]
    kinds = dict(zip(model.covariates.names, model.covariates.kinds, strict=True))
    return bare, dataset_rows.library_covariates(kinds, series)


# Batches are claimed as jobs are (workers/claims.py), on the database's clock: a claim takes
# a lease and counts an attempt, a heartbeat renews the lease while the forecast runs, and only
# the current owner may finish the batch. The reaper re-sends a batch whose lease expired (its
# worker died) and fails one whose workers died max_attempts times.

@dataclass(frozen=True)
class BatchClaim:
    """A worker's hold on a forecast batch: owner and attempt fence its final write."""

    batch_id: str
    owner: str
    attempt: int


def _unheld() -> Any:
    """Queued, or running under a lease that expired by the database's clock."""
    return or_(ForecastBatch.status == "queued",
               and_(ForecastBatch.status == "running",
                    ForecastBatch.lease_expires_at < db_now()))


def claim_batch(session: Session, *, batch_id: str, owner: str, lease_seconds: int,
                max_attempts: int) -> BatchClaim | None:
    """Take a queued batch, or a running one whose worker died; None if another worker holds
    it, it has finished, or it is out of attempts (then it is failed here). Commits."""
    attempt = session.scalar(
        update(ForecastBatch)
        .where(ForecastBatch.id == batch_id, _unheld(), ForecastBatch.attempts < max_attempts)
        .values(status="running", started_at=db_now(), error=None, lease_owner=owner,
                lease_expires_at=db_now(lease_seconds), attempts=ForecastBatch.attempts + 1)
        .returning(ForecastBatch.attempts)
        .execution_options(synchronize_session=False)
    )
    if attempt is None:
        session.rollback()
        end_abandoned(session, max_attempts=max_attempts, batch_id=batch_id)
        session.commit()
        return None
    session.commit()
    return BatchClaim(batch_id, owner, attempt)


def renew_batch_lease(session: Session, claim: BatchClaim, *, lease_seconds: int) -> bool:
    """Push the batch's lease forward; False when the batch is no longer this claim's."""
    renewed = session.execute(
        update(ForecastBatch).where(*_owned(claim))
        .values(lease_expires_at=db_now(lease_seconds))
        .execution_options(synchronize_session=False))
    session.commit()
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


def end_abandoned(session: Session, *, max_attempts: int, batch_id: str | None = None
                  ) -> list[str]:
    """Fail the batches (all, or just `batch_id`) out of attempts with nobody holding them:
    their workers died each time (a batch that raised ends failed at once). The caller
    commits; returns their ids."""
    only = [ForecastBatch.id == batch_id] if batch_id is not None else []
    rows = session.execute(
        update(ForecastBatch).where(*only, _unheld(), ForecastBatch.attempts >= max_attempts)
        .values(status="failed", finished_at=db_now(), lease_owner=None, lease_expires_at=None)
        .returning(ForecastBatch.id, ForecastBatch.attempts)
        .execution_options(synchronize_session=False)).all()
    for row in rows:
        session.execute(update(ForecastBatch).where(ForecastBatch.id == row.id).values(
            error=f"worker lost {row.attempts} times: the process answering this batch died "
                  f"(killed, out of memory or crashed); not retried after {max_attempts} "
                  "attempts (BPTT_MAX_ATTEMPTS)").execution_options(synchronize_session=False))
    return [row.id for row in rows]


def mark_stale(session: Session, *, requeue_after_seconds: int, lease_seconds: int,
               limit: int) -> list[str]:
    """Mark batches to send again as just enqueued and return their ids: queued and not sent
    for requeue_after_seconds, or running with an expired lease. Only the rows this UPDATE
    changed are returned, so two reapers never both re-send a batch. The caller commits."""
    stale = or_(
        and_(ForecastBatch.status == "queued",
             or_(ForecastBatch.enqueued_at.is_(None),
                 ForecastBatch.enqueued_at < db_now(-requeue_after_seconds))),
        and_(ForecastBatch.status == "running", ForecastBatch.lease_expires_at < db_now(),
             or_(ForecastBatch.enqueued_at.is_(None),
                 ForecastBatch.enqueued_at < db_now(-lease_seconds))),
    )
    candidates = select(ForecastBatch.id).where(stale).limit(limit)
    return list(session.scalars(
        update(ForecastBatch).where(ForecastBatch.id.in_(candidates), stale)
        .values(enqueued_at=db_now()).returning(ForecastBatch.id)
        .execution_options(synchronize_session=False)))


def answer_batch(sessions: sessionmaker[Session], settings: Settings, batch_id: str,
                 owner: str | None = None) -> str:
    """Claim a forecast batch, forecast it, store the result; returns what happened. Of two
    deliveries of the same message, one claims the batch; a later delivery takes it over only
    once its lease has expired (its worker died)."""
    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4()}"
    with sessions() as session:
        claim = claim_batch(session, batch_id=batch_id, owner=owner,
                            lease_seconds=settings.lease_seconds,
                            max_attempts=settings.max_attempts)
        if claim is None:
            return "not claimed"
        batch = session.get(ForecastBatch, batch_id)
        assert batch is not None
        request = decompress_json(batch.request_zlib)
        with _Heartbeat(sessions, claim, settings.lease_seconds):
            try:
                loaded = load_model(session, job_id=batch.job_id)
                if loaded is None:
                    raise LookupError("the job's model is no longer stored")
                series = request["series"]
                if request.get("dataset_id") is not None:  # named, not sent: read them here
                    series = dataset_rows.read_selection(
                        session, request["dataset_id"], request.get("series_ids"),
                        model_columns(loaded[1]))
                document = run_forecast(loaded[1], series, request["horizon"],
                                        request["quantiles"], settings.forecast_threads,
                                        request.get("future_covariates"))
                # the steps' ds, worked out by the API when it stored the batch
                document = replace(document, ds=request.get("ds"))
            except dataset_rows.DatasetGone as exc:
                return _finish(session, claim, status="failed",
                               error=f"the dataset {exc} was deleted before the batch ran")
            except (DataError, LookupError) as exc:  # the API checked; only a changed model
                return _finish(session, claim, status="failed", error=str(exc))
            except DBAPIError:  # the database, not the batch: the lease expires, and the
                raise  # reaper sends it again (within max_attempts)
            except Exception as exc:
                log.exception("forecast batch %s failed", batch_id)
                return _finish(session, claim, status="failed",
                               error=f"forecast failed: {exc}")
            # The schema's JSON as it is written (NaN from a degenerate series is null), stored
            # as compress_json stores a value: parsing and writing it again took 5 s for 48k
            # series.
            result = zlib.compress(document.json_bytes(), RESULT_COMPRESSION_LEVEL)
            return _finish(session, claim, status="succeeded", result_zlib=result)


def _owned(claim: BatchClaim) -> list[Any]:
    """The conditions under which the batch is still this claim's."""
    return [ForecastBatch.id == claim.batch_id, ForecastBatch.status == "running",
            ForecastBatch.lease_owner == claim.owner, ForecastBatch.attempts == claim.attempt]


def _finish(session: Session, claim: BatchClaim, *, status: str, **values: Any) -> str:
    """End the batch with `status` if it is still this claim's; returns the status, or
    "lease lost" when another attempt took the batch over (its answer stands, not this one)."""
    finished = session.execute(
        update(ForecastBatch).where(*_owned(claim))
        .values(status=status, finished_at=db_now(), lease_owner=None, lease_expires_at=None,
                **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return status if finished.rowcount else "lease lost"  # type: ignore[attr-defined]


class _Heartbeat:
    """Renews a batch's lease every third of the lease while the forecast runs."""

    def __init__(self, sessions: sessionmaker[Session], claim: BatchClaim, lease_seconds: int):
        self.sessions, self.claim, self.lease_seconds = sessions, claim, lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bptt-batch-heartbeat",
                                        daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.lease_seconds)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                with self.sessions() as session:
                    if not renew_batch_lease(session, self.claim,
                                             lease_seconds=self.lease_seconds):
                        return  # taken over: _finish will find out and write nothing
            except Exception:  # a database hiccup: try again at the next beat
                log.exception("heartbeat for forecast batch %s failed", self.claim.batch_id)


@dataclass(frozen=True)
class ForecastTable:
    """Forecasts as bptt.forecast_arrays gives them, standing in for a
    ForecastResult: model_dump() and model_dump_json() give exactly that document's.

    Ten thousand series are a million numbers. Built as a ForecastOut per series, the document
    cost more time than the forecast itself; here tolist() makes every path a list at C speed
    and pydantic's own JSON writer (the one behind model_dump_json: the same number formatting,
    NaN and infinities as null) writes the whole document in one call.
    """

    ids: list[str]
    quantiles: list[float]
    values: np.ndarray  # (S, h, 1 + Q) in original units: the mean, then each quantile's path
    ds: dict[str, list[str | int] | None] | None = None  # each series' steps' ds, by id

    def model_dump(self) -> dict[str, Any]:
        """The document as Python data, as ForecastResult.model_dump gives it (NaN stays NaN)."""
        keys = [str(float(q)) for q in self.quantiles]
        paths = np.moveaxis(self.values, 2, 1).tolist()  # per series: [mean, q1, q2, ...]
        ds = self.ds or {}
        return {"forecasts": [
            {"id": name, "ds": ds.get(name), "mean": own[0],
             "quantiles": dict(zip(keys, own[1:], strict=True))}
            for name, own in zip(self.ids, paths, strict=True)
        ]}

    def json_bytes(self) -> bytes:
        """The document as JSON: ForecastResult.model_dump_json()'s text, as UTF-8."""
        with collector_paused():
            return pydantic_core.to_json(self.model_dump(), inf_nan_mode="null")

    def model_dump_json(self) -> str:
        """The document as JSON text, as ForecastResult.model_dump_json gives it."""
        return self.json_bytes().decode("utf-8")

