"""A worker stores each epoch's BPTT insight and, when asked, a cross-validation per window."""

from __future__ import annotations

from sqlalchemy import select

from service.store.tables import EpochMetric
from workers.attempts import run_training

from .conftest import add_job, job_row, series, training_spec


def test_a_job_stores_insight_per_epoch(sessions, settings):
    job_id = add_job(sessions, training_spec(epochs=3, truncate=[4, 8]))
    assert run_training(sessions, settings, job_id, "w:1") == "succeeded"
    with sessions() as session:
        rows = list(session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id)
                                    .order_by(EpochMetric.epoch)))
    assert len(rows) == 3
    for row in rows:
        assert 1 <= row.insight["memory_horizon"] <= 8
        assert row.insight["truncation_cosine"] is not None
        assert len(row.insight["spectral_radius"]) == 1


def test_a_cross_validated_job_stores_scores_per_window(sessions, settings):
    spec = training_spec(epochs=3)
    spec["cross_validation"] = {"windows": 2, "step": 4}
    job_id = add_job(sessions, spec, series(count=2, length=120))
    assert run_training(sessions, settings, job_id, "w:1") == "succeeded"
    job = job_row(sessions, job_id)
    backtest = job.cross_validation
    assert [w["window"] for w in backtest["windows"]] == [0, 1]
    assert [w["offset"] for w in backtest["windows"]] == [4, 0]
    assert {r["cutoff"] for r in backtest["windows"][1]["series"]} == {120 - 4}
    assert backtest["mase"] > 0 and 0 <= backtest["smape"] <= 200
    assert job.score is not None and job.score != backtest["mase"]  # not a cv_mase sweep
