"""Forecasts of a job with covariates on the running system (API under gunicorn, a Celery
worker, SQLite), over HTTP only: the training series' forecast is a batch the worker answers
with the future values given, a sent series carries its covariates, an append carries the
appended steps' covariates, and a missing future covariate is refused."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

import bptt

from .conftest import DEADLINE_S, Stack, _base_env, start_stack
from .test_covariates_e2e import LENGTH, STORES, covariate_job

HORIZON = 4  # covariate_job's


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """Forecasts of more than 2 series become batches: the training series' three are one."""
    env = {**_base_env(tmp_path_factory.mktemp("data")), "BPTT_SYNC_FORECAST_MAX_SERIES": "2"}
    yield from start_stack(env, workers=1)


def finished_batch(stack: Stack, batch_id: str) -> dict:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        status, batch = stack.call("GET", f"/v1/forecasts/{batch_id}")
        assert status == 200, batch
        if batch["status"] in ("succeeded", "failed"):
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} never finished")


def as_csv(stack: Stack, path: str) -> str:
    request = urllib.request.Request(stack.url + path, headers={
        "Authorization": f"Bearer {stack.token}", "Accept": "text/csv"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.read().decode()


def test_a_covariate_job_forecasts_with_the_future_values_given(stack: Stack) -> None:
    job = covariate_job()
    status, submitted = stack.call("POST", "/v1/jobs", job)
    assert status == 202, submitted
    job_id = stack.wait_for_status(submitted["id"], {"succeeded", "failed"})["id"]
    status, weights = stack.call("GET", f"/v1/jobs/{job_id}/model")
    model = bptt.Model.from_bytes(weights)

    planned = {"promo": {store: [1.0, 0.0, 0.0, 1.0] for store in STORES}}
    status, queued = stack.call("POST", "/v1/forecasts", {"job_id": job_id,
                                                          "future_covariates": planned})
    assert status == 202, queued
    batch = finished_batch(stack, queued["id"])
    assert batch["status"] == "succeeded", batch
    got = batch["result"]["forecasts"]
    expected = bptt.forecast(model, future_covariates=planned)
    for item, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(item["mean"], want["mean"], rtol=1e-6)
    # values numbered 1..60: the steps are 61..64, in JSON and in CSV
    assert got[0]["ds"] == [LENGTH + 1, LENGTH + 2, LENGTH + 3, LENGTH + 4]
    lines = as_csv(stack, f"/v1/forecasts/{queued['id']}").splitlines()
    assert [line.split(",")[:3] for line in lines[1:3]] == [["north", "61", "1"],
                                                           ["north", "62", "2"]]

    north = job["series"][0]
    status, sent = stack.call("POST", "/v1/forecasts", {
        "job_id": job_id, "series": [north],
        "future_covariates": {"promo": {"north": [0.0] * HORIZON}}})
    assert status == 200, sent
    assert not np.allclose(sent["forecasts"][0]["mean"], got[0]["mean"])  # no promotions

    status, appended = stack.call("POST", f"/v1/jobs/{job_id}/series/north/observations", {
        "values": [40.0, 41.0], "covariates": {"temp": [16.0, 17.5], "promo": [1.0, 0.0]},
        "future_covariates": {"promo": [0.0] * HORIZON}})
    assert status == 200, appended
    assert appended["length"] == LENGTH + 2 and appended["forecast"]["ds"][0] == LENGTH + 3

    status, problem = stack.call("POST", "/v1/forecasts", {"job_id": job_id})
    assert status == 422
    assert problem["errors"][0]["loc"] == ["future_covariates", "promo"]
