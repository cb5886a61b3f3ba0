"""A job with covariates on the running system (API under gunicorn, a Celery worker, SQLite):
submitted as JSON with a static category, a historical and a future covariate, it trains and
cross-validates, its model file describes them, and a warm start continues it."""

from __future__ import annotations

import gzip
import json
import math
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import bptt
from tests.service.test_covariates_api import csv_rows

from .conftest import Stack, _base_env, start_stack

LENGTH = 60
STORES = {"north": "big", "south": "small", "east": "big"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from start_stack(_base_env(tmp_path_factory.mktemp("data")), workers=1)


def covariate_job() -> dict:
    """Three stores: sales lifted by a promotion (future), following the temperature
    (historical, with a gap), larger in big stores (static category)."""
    series = []
    for k, (store, size) in enumerate(STORES.items()):
        promo = [1 if (i + k) % 9 < 2 else 0 for i in range(LENGTH)]
        temp = [round(15 + 8 * math.sin(i / 5 + k), 2) for i in range(LENGTH)]
        sales = [round((30 if size == "big" else 12) + 6 * promo[i] + 0.4 * temp[i], 3)
                 for i in range(LENGTH)]
        temp[10] = None  # a gap in the covariate
        series.append({"id": store, "values": sales,
                       "covariates": {"store_type": size, "temp": temp, "promo": promo}})
    return {"series": series, "horizon": 4,
            "covariates": {"store_type": "static", "temp": "historical", "promo": "future"},
            "model": {"cell": "gru", "hidden_size": 8},
            "training": {"epochs": 5, "ensemble": 1, "early_stopping_patience": None}}


def safetensors_card(data: bytes) -> dict:
    """The model card a safetensors file carries in its header's metadata."""
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(json.loads(data[8:8 + size])["__metadata__"]["model_card"])


def test_a_json_job_with_covariates_trains_and_its_model_describes_them(stack: Stack) -> None:
    body = {**covariate_job(), "cross_validation": {"windows": 2}}
    status, submitted = stack.call("POST", "/v1/jobs", body)
    assert status == 202, submitted
    done = stack.wait_for_status(submitted["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert len(done["cross_validation"]["windows"]) == 2  # its backtest ran too

    status, weights = stack.call("GET", f"/v1/jobs/{done['id']}/model")
    assert status == 200
    card = safetensors_card(weights)["covariates"]
    assert card["covariates"] == [{"name": "store_type", "kind": "static"},
                                  {"name": "temp", "kind": "historical"},
                                  {"name": "promo", "kind": "future"}]
    assert card["categories"] == {"store_type": ["big", "small", "<unknown>"]}
    assert set(card["scalers"]) == set(STORES)  # the dynamic ones' scalers, per series
    model = bptt.Model.from_bytes(weights)
    assert model.covariates.future == ["promo"]
    assert "static covariate store_type=small" in model.head_features


def test_a_warm_start_continues_a_covariate_model_with_new_values(stack: Stack) -> None:
    status, parent = stack.call("POST", "/v1/jobs", covariate_job())
    assert status == 202, parent
    assert stack.wait_for_status(parent["id"], {"succeeded", "failed"})["status"] == "succeeded"
    more = covariate_job()
    for item in more["series"]:  # the same stores, later: new values of every covariate
        item["values"] = item["values"][::-1]
        item["covariates"]["temp"] = item["covariates"]["temp"][::-1]
    status, warm = stack.call("POST", "/v1/jobs", {
        "series": more["series"], "covariates": more["covariates"], "horizon": 4,
        "warm_start": parent["id"], "training": {"epochs": 3}})
    assert status == 202, warm
    done = stack.wait_for_status(warm["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert done["warm_start_job_id"] == parent["id"]


def test_the_cli_submits_a_csv_with_covariate_columns_that_trains(stack: Stack,
                                                                  tmp_path: Path) -> None:
    data = tmp_path / "stores.csv"
    data.write_text(csv_rows())
    run = subprocess.run(
        ["bptt", "submit", str(data), "--horizon", "3", "--epochs", "3", "--future", "promo",
         "--historical", "temp", "--static", "store_type", "--follow"],
        capture_output=True, text=True, timeout=300,
        env={**stack.env, "BPTT_URL": stack.url, "BPTT_TOKEN": stack.token})
    assert run.returncode == 0, run.stderr
    job_id = run.stdout.strip().splitlines()[0]
    status, job = stack.call("GET", f"/v1/jobs/{job_id}")
    assert job["status"] == "succeeded" and job["covariates"] == {
        "store_type": "static", "temp": "historical", "promo": "future"}


def test_the_cli_trains_and_forecasts_with_a_static_table(stack: Stack, tmp_path: Path) -> None:
    data, table, planned = (tmp_path / name for name in ("long.csv", "static.csv", "promo.csv"))
    data.write_text("\n".join(line.rsplit(",", 1)[0] for line in csv_rows().splitlines()))
    table.write_text("unique_id,store_type,area\na,big,120\nb,small,80\n")
    planned.write_text("unique_id,ds,promo\n" + "".join(
        f"{uid},2024-{month:02d}-01,{int(uid == 'a')}\n" for uid in "ab" for month in (1, 2, 3)))
    env = {**stack.env, "BPTT_URL": stack.url, "BPTT_TOKEN": stack.token}
    run = subprocess.run(
        ["bptt", "submit", str(data), "--static-table", str(table), "--horizon", "3",
         "--epochs", "3", "--future", "promo", "--historical", "temp", "--follow"],
        capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    job_id = run.stdout.strip().splitlines()[0]
    status, job = stack.call("GET", f"/v1/jobs/{job_id}")
    assert job["covariates"] == {"promo": "future", "temp": "historical",
                                 "store_type": "static", "area": "static"}

    run = subprocess.run(
        ["bptt", "forecast", job_id, str(data), "--static-table", str(table),
         "--future-values", str(planned)], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    rows = [line.split(",") for line in run.stdout.strip().splitlines()]
    assert rows[0][:4] == ["unique_id", "ds", "step", "mean"]
    assert [row[:3] for row in rows[1:]] == [[uid, f"2024-{m:02d}-01", str(m)]
                                             for uid in "ab" for m in (1, 2, 3)]

    table.write_text("unique_id,store_type,area\na,big,120\n")  # b has no row
    run = subprocess.run(["bptt", "forecast", job_id, str(data), "--static-table", str(table),
                          "--future-values", str(planned)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode != 0 and "body.static: has no row for series 'b'" in run.stderr


def test_a_dataset_with_covariate_columns_trains_and_forecasts_by_id(stack: Stack,
                                                                     tmp_path: Path) -> None:
    data = tmp_path / "stores.csv"
    data.write_text("\n".join(line.rsplit(",", 1)[0] for line in csv_rows().splitlines()))
    env = {**stack.env, "BPTT_URL": stack.url, "BPTT_TOKEN": stack.token}
    run = subprocess.run(["bptt", "datasets", "upload", str(data)], capture_output=True,
                         text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    dataset_id = run.stdout.strip().splitlines()[0]
    status, dataset = stack.call("GET", f"/v1/datasets/{dataset_id}")
    assert dataset["covariates"] == ["promo", "temp"]

    run = subprocess.run(
        ["bptt", "submit", "--dataset", dataset_id, "--horizon", "3", "--epochs", "3",
         "--future", "promo", "--historical", "temp", "--follow"],
        capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    job_id = run.stdout.strip().splitlines()[0]

    planned = {"promo": {"a": [1, 0, 1], "b": [0, 1, 0]}}
    status, answer = stack.call("POST", "/v1/forecasts", {
        "job_id": job_id, "dataset_id": dataset_id, "future_covariates": planned})
    assert status == 200, answer
    assert [(f["id"], f["ds"]) for f in answer["forecasts"]] == [
        (uid, ["2024-01-01", "2024-02-01", "2024-03-01"]) for uid in "ab"]


def test_a_gzipped_dataset_and_its_static_table_upload_and_train(stack: Stack,
                                                                 tmp_path: Path) -> None:
    data, table = tmp_path / "stores.csv.gz", tmp_path / "static.csv"
    rows = "\n".join(line.rsplit(",", 1)[0] for line in csv_rows().splitlines())
    data.write_bytes(gzip.compress(rows.encode()))
    table.write_text("unique_id,store_type,area\na,big,120\nb,small,80\n")
    env = {**stack.env, "BPTT_URL": stack.url, "BPTT_TOKEN": stack.token}
    run = subprocess.run(["bptt", "datasets", "upload", str(data), "--static-table", str(table)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    dataset_id, summary = run.stdout.strip().splitlines()[:2]
    assert "covariates promo,temp,store_type,area" in summary

    run = subprocess.run(
        ["bptt", "submit", "--dataset", dataset_id, "--horizon", "3", "--epochs", "3",
         "--future", "promo", "--static", "store_type", "--static", "area", "--follow"],
        capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    status, job = stack.call("GET", f"/v1/jobs/{run.stdout.strip().splitlines()[0]}")
    assert job["status"] == "succeeded"
    assert job["covariates"] == {"promo": "future", "store_type": "static", "area": "static"}
