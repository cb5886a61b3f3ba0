"""Datasets on the running system: the CLI's streamed upload and `submit --dataset`; an upload
of 200 MB through gunicorn that leaves the API process's peak memory far below the upload's
size; and, on the production stack, a sweep over a dataset whose trials spread over the workers
while every message through Redis stays a few hundred bytes (no dataset bytes in the broker)."""

from __future__ import annotations

import csv
import gzip
import http.client
import io
import json
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from sqlalchemy import select

from service import serve
from service.client import Client
from service.settings import Settings
from service.store import db, repository
from service.store.tables import Job

from .conftest import DEADLINE_S, Stack, _base_env, _free_port


def bptt(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bptt", *args], capture_output=True, text=True, timeout=300,
                          env={**stack.env, "BPTT_URL": stack.url, "BPTT_TOKEN": stack.token})


def sales_rows(series: int, length: int) -> list[str]:
    """Monthly rows, month after month (interleaved): a season and noise that does not
    compress away (the stored size is then a fair yardstick)."""
    noise = np.random.default_rng(series).normal(0, 1, (length, series))
    return [f"shop-{k},{2010 + i // 12}-{i % 12 + 1:02d},"
            f"{20 + 10 * math.sin(i / 3 + k) + noise[i, k]:.3f}"
            for i in range(length) for k in range(series)]


def test_cli_uploads_with_progress_submits_and_forecasts_a_dataset(stack: Stack,
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "sales.csv.gz"
    path.write_bytes(gzip.compress(("unique_id,ds,y\n" + "\n".join(sales_rows(3, 60)))
                                   .encode()))
    run = bptt(stack, "datasets", "upload", str(path))
    assert run.returncode == 0, run.stderr
    dataset_id, summary = run.stdout.strip().splitlines()
    assert "uploading sales.csv.gz" in run.stderr  # the progress bar's label
    assert "3 series  180 points" in summary and "freq MS" in summary
    listed = bptt(stack, "datasets", "list").stdout
    assert dataset_id[:8] in listed and "sales.csv.gz" in listed

    run = bptt(stack, "submit", "--dataset", dataset_id[:8], "--horizon", "4", "--epochs", "3",
               "--follow")
    assert run.returncode == 0, run.stderr
    job_id = run.stdout.splitlines()[0]
    out = tmp_path / "forecast.csv"
    run = bptt(stack, "forecast", job_id, "--dataset", dataset_id, "--out", str(out))
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["unique_id"] for r in rows} == {"shop-0", "shop-1", "shop-2"} and len(rows) == 12

    refused = bptt(stack, "submit", "--dataset", dataset_id, str(path), "--horizon", "4")
    assert refused.returncode == 2 and "one of them" in refused.stderr
    assert bptt(stack, "datasets", "delete", dataset_id).returncode == 0
    assert bptt(stack, "datasets", "show", dataset_id).returncode == 1


def test_the_client_streams_a_file_in_blocks(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("unique_id,ds,y\n" + "\n".join(sales_rows(40, 3000)) + "\n")
    sent: list[int] = []
    dataset = Client(stack.url, stack.token).upload(
        "/v1/datasets", path, content_type="text/csv", gzipped=False, query={"name": "big"},
        progress=sent.append)
    assert sum(sent) == path.stat().st_size > 2 * 2**20 and len(sent) >= 3  # 1 MiB at a time
    assert dataset["num_points"] == 120_000 and dataset["upload_bytes"] == sum(sent)


# --- memory: an upload is never held whole ------------------------------------------------

UPLOAD_MB = 200


@pytest.fixture(scope="module")
def lone_api(tmp_path_factory) -> Iterator[tuple[str, str, int]]:
    """The API alone, one gunicorn worker process: (url, token, that process's pid)."""
    env = _base_env(tmp_path_factory.mktemp("rss"))
    settings = Settings.from_env(env)
    db.upgrade(settings.database_url)
    sessions = db.session_factory(settings)
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name="rss")
        token = repository.create_token(session, tenant=tenant).token
    sessions.kw["bind"].dispose()
    port = _free_port()
    api = serve.start(serve.api_command("127.0.0.1", port, processes=1), env, quiet=True)
    try:
        serve.wait_until_healthy(f"http://127.0.0.1:{port}/healthz", [api])
        children = Path(f"/proc/{api.pid}/task/{api.pid}/children").read_text().split()
        assert len(children) == 1
        yield f"http://127.0.0.1:{port}", token, int(children[0])
    finally:
        serve.stop_all([api])


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines())
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def generated_csv(megabytes: int) -> Iterator[bytes]:
    """A long-format CSV of about `megabytes` MB, made as it is sent: 500 series, their rows
    interleaved (day after day), so the server must sort what it cannot hold."""
    yield b"unique_id,ds,y\n"
    sent, day = 0, 0
    names = [f"a-rather-long-series-name-to-make-rows-wide-{k:04d}" for k in range(500)]
    while sent < megabytes * 1_000_000:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(946_684_800 + day * 86_400))
        block = "".join(f"{name},{stamp},{(k * 7919 + day * 104729) % 100_000 / 1000:.3f}\n"
                        for k, name in enumerate(names)).encode()
        sent += len(block)
        day += 1
        yield block


def test_a_200_mb_upload_leaves_the_api_process_far_below_its_size(
        lone_api: tuple[str, str, int]) -> None:
    url, token, pid = lone_api
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset its peak RSS to the current RSS
    before = memory_kib(pid)
    assert before["VmHWM"] <= before["VmRSS"] + 1024
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=DEADLINE_S)
    connection.request("POST", "/v1/datasets?name=big.csv", body=generated_csv(UPLOAD_MB),
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
                       encode_chunked=True)  # no Content-Length: streamed as it is made
    answer = connection.getresponse()
    dataset = json.loads(answer.read())
    assert answer.status == 201, dataset
    after = memory_kib(pid)
    grown_mb = (after["VmHWM"] - before["VmRSS"]) / 1024
    uploaded_mb = dataset["upload_bytes"] / 2**20
    print(f"uploaded {uploaded_mb:.0f} MiB ({dataset['num_points']} points); the API's peak "
          f"RSS grew by {grown_mb:.1f} MiB (from {before['VmRSS'] / 1024:.0f} MiB)")
    assert uploaded_mb > UPLOAD_MB * 0.9
    assert dataset["num_series"] == 500 and dataset["frequency"] == "D"
    assert grown_mb < uploaded_mb / 4  # far below: the text is never held


# --- scale-out on the production stack -----------------------------------------------------

class BrokerWatch:
    """Every command Redis receives while it runs (MONITOR), to measure what travels."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.sizes: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BrokerWatch:
        self._monitor = self.client.monitor().__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.client.ping()  # one more command wakes the reader
        self._thread.join(timeout=10)

    def _run(self) -> None:
        for event in self._monitor.listen():
            command = event["command"]
            self.sizes.append((command.split(" ", 1)[0].upper(), len(command)))
            if self._stop.is_set():
                return


def test_a_sweep_over_a_dataset_spreads_over_the_workers_with_ids_only_in_redis(
        stack: Stack, tmp_path: Path) -> None:
    broker_url = stack.env.get("BPTT_BROKER_URL", "")
    if not broker_url.startswith("redis"):
        pytest.skip("the production stack's test (PostgreSQL and Redis)")
    path = tmp_path / "large.csv"
    path.write_text("unique_id,ds,y\n" + "\n".join(sales_rows(400, 120)) + "\n")
    dataset = Client(stack.url, stack.token).upload(
        "/v1/datasets", path, content_type="text/csv", gzipped=False, query={})
    assert dataset["num_points"] == 48_000
    sessions = db.session_factory(Settings.from_env({**stack.env}))
    owners: set[str] = set()
    with BrokerWatch(broker_url) as watch:
        status, sweep = stack.call("POST", "/v1/sweeps", {
            "job": {"dataset_id": dataset["id"], "horizon": 6,
                    "training": {"epochs": 2, "ensemble": 1}, "model": {"hidden_size": 8}},
            "strategy": "grid", "space": {"training.learning_rate": [0.001, 0.002, 0.003,
                                                                     0.004]}})
        assert status == 202, sweep
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            with sessions() as session:  # which worker process holds each running trial
                owners |= {owner.rsplit(":", 1)[0] for owner in session.scalars(
                    select(Job.lease_owner).where(Job.sweep_id == sweep["id"],
                                                  Job.lease_owner.is_not(None)))}
            status, sweep = stack.call("GET", f"/v1/sweeps/{sweep['id']}")
            if sweep["finished_at"] is not None:
                break
            time.sleep(0.05)
    sessions.kw["bind"].dispose()
    assert sweep["status"] == "succeeded", sweep
    assert len(owners) == 2, owners  # host:pid of both workers' training processes
    pushed = [size for name, size in watch.sizes if name in ("LPUSH", "RPUSH", "PUBLISH")]
    largest = max(size for _, size in watch.sizes)
    total = sum(size for _, size in watch.sizes)
    print(f"{len(watch.sizes)} Redis commands, {len(pushed)} messages, the largest command "
          f"{largest} bytes, {total} bytes in all; dataset text {dataset['text_bytes']} "
          f"bytes, stored {dataset['stored_bytes']} bytes")
    assert len(pushed) >= 4  # one message per trial, at least
    assert largest < 4096 < dataset["stored_bytes"] / 10  # a message is no dataset
    assert total < dataset["text_bytes"] / 4  # not even all of them together
