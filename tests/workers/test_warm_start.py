"""Continue training in the worker: a job that starts from another job's model."""

from __future__ import annotations

from sqlalchemy import select, update

from service.store.tables import EpochMetric, Job
from workers.attempts import run_training

from .conftest import add_job, job_row, series, training_spec


def _first_val_loss(sessions, job_id: str) -> float:
    with sessions() as session:
        return session.scalar(select(EpochMetric.val_loss).where(
            EpochMetric.job_id == job_id, EpochMetric.epoch == 1))


def _spec(epochs: int) -> dict:
    """The workers' small spec with a window short enough for many windows per series, and
    no seasonal adjustment: taken out, the season would leave the network only noise to learn,
    and a warm start nothing to carry over."""
    return {**training_spec(epochs=epochs), "window": {"input_size": 24}, "seasonality": "none"}


def _continuing(sessions, parent: str | None, spec: dict) -> str:
    job_id = add_job(sessions, spec, series(length=110, seed=1))
    with sessions.begin() as session:
        session.execute(update(Job).where(Job.id == job_id).values(warm_start_job_id=parent))
    return job_id


def test_a_warm_started_job_starts_where_the_earlier_model_ended(sessions, settings):
    parent = add_job(sessions, _spec(30))
    assert run_training(sessions, settings, parent, "w:1") == "succeeded"
    warm = _continuing(sessions, parent, _spec(3))
    cold = add_job(sessions, _spec(3), series(length=110, seed=1))
    assert run_training(sessions, settings, warm, "w:1") == "succeeded"
    assert run_training(sessions, settings, cold, "w:1") == "succeeded"
    # its own metrics history, numbered from 1, and a much better first epoch than scratch
    assert _first_val_loss(sessions, warm) < 0.5 * _first_val_loss(sessions, cold)
    assert job_row(sessions, warm).epochs_done == 3


def test_a_warm_start_whose_model_is_gone_fails_clearly(sessions, settings):
    parent = add_job(sessions, training_spec(epochs=1))  # never trained: no model
    job_id = _continuing(sessions, parent, training_spec(epochs=1))
    assert run_training(sessions, settings, job_id, "w:1") == "invalid"
    job = job_row(sessions, job_id)
    assert job.status == "failed" and "no longer exists" in job.error
