"""Forecasting with a job's stored model: one code path for the API's answers and the workers'
forecast batches. No Flask here (the workers import it)."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pydantic_core
from sqlalchemy import and_, or_, update
from sqlalchemy.orm import Session, sessionmaker

import bptt
from bptt import DataError, forecast_arrays
from service.settings import Settings
from service.store import repository
from service.store.codec import compress_json, decompress_json
from service.store.model_cache import ModelCache
from service.store.tables import ForecastBatch, utcnow

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
    raises bptt.DataError for input the model refuses. threads: the engine's
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

    def model_dump(self) -> dict[str, Any]:
        """The document as Python data, as ForecastResult.model_dump gives it (NaN stays NaN)."""
        keys = [str(float(q)) for q in self.quantiles]
        paths = np.moveaxis(self.values, 2, 1).tolist()  # per series: [mean, q1, q2, ...]
        return {"forecasts": [
            {"id": name, "mean": own[0], "quantiles": dict(zip(keys, own[1:], strict=True))}
            for name, own in zip(self.ids, paths, strict=True)
        ]}

    def json_bytes(self) -> bytes:
        """The document as JSON: ForecastResult.model_dump_json()'s text, as UTF-8."""
        with _collector_paused():
            return pydantic_core.to_json(self.model_dump(), inf_nan_mode="null")

    def model_dump_json(self) -> str:
        """The document as JSON text, as ForecastResult.model_dump_json gives it."""
        return self.json_bytes().decode("utf-8")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector meanwhile. A large document is tens of thousands
    of lists and dicts without cycles, freed by reference counting as soon as it is written:
    collections triggered by allocating them would only walk them (and everything else alive)
    for nothing. Safe with threads: whoever paused it resumes it; a collector another thread
    paused is left alone."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
