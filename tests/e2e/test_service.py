"""End to end through HTTP only: submit, poll, forecast, cancel, divergence, many jobs, and an
API restart in the middle of a job; on the embedded and the production stack."""

from __future__ import annotations

import math

SERIES = [{"id": f"store-{k}", "values": [round(20 + 10 * math.sin(i / 3 + k) + 0.1 * i, 3)
                                          for i in range(80)]} for k in range(3)]


def job(epochs: int = 20, **training) -> dict:
    return {"series": SERIES, "horizon": 6, "quantiles": [0.1, 0.5, 0.9],
            "model": {"cell": "gru", "hidden_size": 8},
            "training": {"epochs": epochs, "ensemble": 1, "early_stopping_patience": None,
                         **training}}


def test_submit_poll_succeed_forecast(stack):
    status, submitted = stack.call("POST", "/v1/jobs", job())
    assert status == 202 and submitted["status"] == "queued"
    done = stack.wait_for_status(submitted["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert done["progress"]["epochs_done"] == 20
    status, page = stack.call("GET", f"/v1/jobs/{done['id']}/metrics")
    assert [m["epoch"] for m in page["metrics"]] == list(range(1, 21))
    status, answer = stack.call("POST", "/v1/forecasts", {"job_id": done["id"]})
    assert status == 200, answer
    forecasts = answer["forecasts"]
    assert [f["id"] for f in forecasts] == ["store-0", "store-1", "store-2"]
    assert all(len(f["mean"]) == 6 and set(f["quantiles"]) == {"0.1", "0.5", "0.9"}
               for f in forecasts)
    status, weights = stack.call("GET", f"/v1/jobs/{done['id']}/model")
    assert status == 200 and weights[:8] != b""


def test_cancel_a_running_job(stack):
    status, submitted = stack.call("POST", "/v1/jobs", job(epochs=1000))
    running = stack.wait_for_status(submitted["id"], {"running"})
    status, _ = stack.call("POST", f"/v1/jobs/{running['id']}/cancel")
    assert status in (200, 202)
    ended = stack.wait_for_status(submitted["id"], {"cancelled", "succeeded", "failed"})
    assert ended["status"] == "cancelled" and ended["progress"]["epochs_done"] < 1000


def test_a_diverging_job_fails_with_its_reason(stack):
    spec = job(optimizer="sgd", learning_rate=1e6, clip={"max_norm": None})
    spec["model"] = {"cell": "rnn", "nonlinearity": "relu", "hidden_size": 8}
    status, submitted = stack.call("POST", "/v1/jobs", spec)
    assert status == 202
    ended = stack.wait_for_status(submitted["id"], {"succeeded", "failed"})
    assert ended["status"] == "failed" and "diverged" in ended["error"]


def test_two_workers_drain_ten_jobs(stack):
    ids = [stack.call("POST", "/v1/jobs", job(epochs=10))[1]["id"] for _ in range(10)]
    ended = [stack.wait_for_status(job_id, {"succeeded", "failed"}) for job_id in ids]
    assert [j["status"] for j in ended] == ["succeeded"] * 10
    assert all(j["attempts"] == 1 for j in ended)


def test_restarting_the_api_mid_job_loses_nothing(stack):
    status, submitted = stack.call("POST", "/v1/jobs", job(epochs=300))
    stack.wait_for_status(submitted["id"], {"running"})
    stack.restart_api()
    done = stack.wait_for_status(submitted["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded" and done["attempts"] == 1
    status, page = stack.call("GET", f"/v1/jobs/{done['id']}/metrics")
    assert status == 200 and [m["epoch"] for m in page["metrics"]][:5] == [1, 2, 3, 4, 5]
