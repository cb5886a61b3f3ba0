"""Asynchronous forecast batches: the API stored the request; a worker answers it."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings


def run_forecast_batch(sessions: sessionmaker[Session], settings: Settings,
                       batch_id: str) -> str:
    """Claim a queued batch, compute it with the API's forecasting code, store the result."""
    from service import forecasts  # the same code path as synchronous forecasts

    return forecasts.answer_batch(sessions, settings, batch_id)
