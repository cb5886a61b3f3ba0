"""Forecasting with a job's stored model: one code path for the API's answers and the workers'
forecast batches. No Flask here (the workers import it)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.orm import Session, sessionmaker

import bptt
from bptt.data import DataError
from bptt.forecasting import forecast_arrays

from . import repository
from .codec import compress_json, decompress_json
from .documents import ForecastTable
from .model_cache import ModelCache
from .models import ForecastBatch, utcnow
from .settings import Settings

# One cache per process, keyed by the sha256 of the model's bytes: the same bytes are the same
# model whoever asks, so sharing it across jobs and tenants leaks nothing.
MODELS = ModelCache()
# A batch still "running" this long after it started lost its worker (a forecast takes seconds);
# a redelivered message may then take it over.
STALE_BATCH_AFTER = timedelta(minutes=15)

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
                 quantiles: list[float] | None, threads: int) -> ForecastTable:
    """bptt.forecast as a document (a ForecastResult's, written from the engine's arrays);
    raises bptt.data.DataError for input the model refuses. threads: the engine's
    (BPTT_FORECAST_THREADS)."""
    ids, wanted, values = forecast_arrays(model, series, horizon=horizon, quantiles=quantiles,
                                          threads=threads)
    return ForecastTable(ids, wanted, values)


def answer_batch(sessions: sessionmaker[Session], settings: Settings, batch_id: str) -> str:
    """Claim a queued forecast batch, forecast it, store the result; returns what happened."""
    with sessions() as session:
        now = utcnow()
        claimable = or_(ForecastBatch.status == "queued",
                        and_(ForecastBatch.status == "running",
                             ForecastBatch.started_at < now - STALE_BATCH_AFTER))
        # One conditional update: of two deliveries of the same message, one claims the batch.
        claimed = session.execute(
            update(ForecastBatch)
            .where(ForecastBatch.id == batch_id, claimable)
            .values(status="running", started_at=now, error=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return "not claimed"
        batch = session.get(ForecastBatch, batch_id)
        assert batch is not None
        request = decompress_json(batch.request_zlib)
        try:
            loaded = load_model(session, job_id=batch.job_id)
            if loaded is None:
                raise LookupError("the job's model is no longer stored")
            document = run_forecast(loaded[1], request["series"], request["horizon"],
                                    request["quantiles"], settings.forecast_threads)
        except (DataError, LookupError) as exc:  # the API checked; only a changed model gets here
            return _finish(session, batch_id, status="failed", error=str(exc))
        except Exception as exc:
            log.exception("forecast batch %s failed", batch_id)
            return _finish(session, batch_id, status="failed", error=f"forecast failed: {exc}")
        # Through the schema's JSON: NaN (from a degenerate series) is stored as null.
        result = compress_json(json.loads(document.model_dump_json()))
        return _finish(session, batch_id, status="succeeded", result_zlib=result)


def _finish(session: Session, batch_id: str, *, status: str, **values: Any) -> str:
    """End a running batch with `status`; returns the status."""
    session.execute(
        update(ForecastBatch)
        .where(ForecastBatch.id == batch_id, ForecastBatch.status == "running")
        .values(status=status, finished_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return status
