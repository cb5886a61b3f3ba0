"""Issue 8 end to end over HTTP, on both stacks: a sweep fanned out to two workers and
forecasting with its best trial, a cross-validated trial, continuing from the best trial on
more data, and appending observations to a training series."""

from __future__ import annotations

import math
import time

from .conftest import DEADLINE_S
from .test_service import SERIES, job


def wait_for_sweep(stack, sweep_id: str) -> dict:
    """Poll the sweep until it has finished."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        status, sweep = stack.call("GET", f"/v1/sweeps/{sweep_id}")
        assert status == 200, sweep
        if sweep["finished_at"] is not None:
            return sweep
        time.sleep(0.2)
    raise AssertionError(f"sweep {sweep_id} never finished: {sweep}")


def test_sweep_forecast_continue_and_append(stack):
    base = job(epochs=15)
    base["cross_validation"] = {"windows": 2}
    status, sweep = stack.call("POST", "/v1/sweeps", {
        "job": base, "strategy": "grid", "metric": "cv_mase",
        "space": {"model.cell": ["gru", "lstm"], "training.learning_rate": [0.003, 0.03]}})
    assert status == 202, sweep
    done = wait_for_sweep(stack, sweep["id"])
    assert done["status"] == "succeeded" and done["trials_finished"] == 4
    assert all(t["status"] == "succeeded" and t["score"] is not None for t in done["trials"])
    best = min(done["trials"], key=lambda t: (t["score"], t["trial"]))
    assert done["best_job_id"] == best["job_id"]

    status, by_sweep = stack.call("POST", "/v1/forecasts", {"sweep_id": sweep["id"]})
    assert status == 200 and len(by_sweep["forecasts"]) == 3
    status, trial = stack.call("GET", f"/v1/jobs/{best['job_id']}")
    assert len(trial["cross_validation"]["windows"]) == 2

    # continue from the best trial on longer series: a job of its own, its own metrics
    longer = [{"id": s["id"], "values": s["values"] + [round(20 + 10 * math.sin(i / 3) + 0.1 * i,
                                                             3) for i in range(80, 100)]}
              for s in SERIES]
    status, warm = stack.call("POST", "/v1/jobs", {
        "series": longer, "horizon": 6, "warm_start": best["job_id"],
        "training": {"epochs": 5}, "cross_validation": None})
    assert status == 202, warm
    assert warm["spec"]["model"]["cell"] == trial["spec"]["model"]["cell"]
    ended = stack.wait_for_status(warm["id"], {"succeeded", "failed"})
    assert ended["status"] == "succeeded" and ended["progress"]["epochs_done"] == 5

    # new observations of a training series: the forecast of the whole history, not resent
    series_path = f"/v1/jobs/{best['job_id']}/series/store-1"
    status, appended = stack.call("POST", f"{series_path}/observations",
                                  {"values": [30.5, None, 29.0]})
    assert status == 200, appended
    status, full = stack.call("POST", "/v1/forecasts", {"job_id": best["job_id"], "series": [
        {"id": "store-1", "values": SERIES[1]["values"] + [30.5, None, 29.0]}]})
    expected = full["forecasts"][0]["mean"]
    assert all(math.isclose(a, b, rel_tol=1e-5) for a, b in zip(
        appended["forecast"]["mean"], expected, strict=True))
    assert appended["length"] == 83 and appended["version"] == 2
