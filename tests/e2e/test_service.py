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


def test_jobs_carry_estimates_at_the_workers_speed_and_a_costly_one_is_refused(stack):
    first = stack.call("POST", "/v1/jobs", job(epochs=2))[1]
    stack.wait_for_status(first["id"], {"succeeded"})  # a worker has timed its kernels by now
    status, submitted = stack.call("POST", "/v1/jobs", job())
    estimate = submitted["estimate"]
    assert status == 202 and estimate["speed"]["measurements"] >= 1
    assert estimate["seconds"] > 0 and estimate["flops"] > 0 and estimate["peak_bytes"] > 0
    assert submitted["progress"]["remaining_seconds"] == estimate["seconds"]
    done = stack.wait_for_status(submitted["id"], {"succeeded"})
    assert done["progress"]["remaining_seconds"] is None
    assert done["usage"]["seconds"] > 0 and done["usage"]["peak_rss_bytes"] > 0

    listed = len(stack.call("GET", "/v1/jobs?limit=100")[1]["jobs"])
    huge = {"series": [{"id": "huge", "values": [round(math.sin(i / 50), 3)
                                                  for i in range(1_000_000)]}],
            "horizon": 12, "window": {"input_size": 1024},
            "model": {"hidden_size": 256, "num_layers": 4},
            "training": {"batch_size": 4096, "ensemble": 20, "epochs": 1000}}
    status, problem = stack.call("POST", "/v1/jobs", huge)
    assert status == 422 and "estimated compute" in problem["detail"]
    assert {"window.input_size", "model.hidden_size", "training.ensemble"} <= {
        ".".join(e["loc"]) for e in problem["errors"]}
    assert len(stack.call("GET", "/v1/jobs?limit=100")[1]["jobs"]) == listed  # nothing stored
