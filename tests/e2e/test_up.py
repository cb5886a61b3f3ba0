"""`bptt up` as a user runs it: one command, a URL and a token once everything is ready, jobs
trained, a killed worker brought back, everything gone after Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("bptt") is None, reason="bptt is not installed")

DEADLINE_S = 240  # every wait here ends by itself
SERIES = [{"id": "s", "values": [round(20 + 10 * math.sin(i / 3), 3) for i in range(60)]}]
TINY_JOB = {"series": SERIES, "horizon": 4, "model": {"cell": "gru", "hidden_size": 4},
            "training": {"epochs": 2, "ensemble": 1}}
# Short leases and a quick reaper: a killed worker's job is free again within seconds.
FAST_RECOVERY = {"BPTT_LEASE_SECONDS": "3", "BPTT_REAPER_INTERVAL_SECONDS": "1",
                 "BPTT_REQUEUE_AFTER_SECONDS": "2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with_data_dir(data_dir) -> list[int]:
    """Pids of live processes started with BPTT_DATA_DIR=data_dir (bptt up's children)."""
    marker = f"BPTT_DATA_DIR={data_dir}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:  # gone meanwhile, or not ours to read
                pass
    return found


def worker_children(pid: int) -> list[int]:
    """Pids of the Celery worker processes that `bptt up` (pid) started itself."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    command = f.read()
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid and b"celery" in command:
                found.append(int(entry))
    return found


def wait_for(predicate, what: str):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Up:
    """A running `bptt up`, its terminal output in files, and a client for its API."""

    def __init__(self, data_dir: Path, *args: str, **env: str) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.interrupted = False
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = data_dir.with_name(data_dir.name + ".stdout")
        self.stderr_path = data_dir.with_name(data_dir.name + ".stderr")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                ["bptt", "up", "--port", str(self.port), "--data-dir", str(data_dir), *args],
                env={**os.environ, **env}, stdout=out, stderr=err, start_new_session=True)
        self.token = wait_for(self._token, "bptt up to print its token")

    def _token(self) -> str | None:
        text = self.stdout()
        lines = text.splitlines()
        if text.endswith("\n") and lines and lines[-1].startswith("bptt_"):
            return lines[-1]
        assert self.process.poll() is None, f"bptt up ended early: {text}{self.stderr()}"
        return None

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def call(self, method: str, path: str, payload=None):
        body = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=body, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def job_when(self, job_id: str, wanted: set[str]) -> dict:
        def reached():
            status, job = self.call("GET", f"/v1/jobs/{job_id}")
            assert status == 200, job
            return job if job["status"] in wanted else None

        return wait_for(reached, f"job {job_id} to reach {wanted}")

    def train(self, job: dict) -> dict:
        status, submitted = self.call("POST", "/v1/jobs", job)
        assert status == 202, submitted
        return self.job_when(submitted["id"], {"succeeded", "failed", "cancelled"})

    def interrupt(self) -> None:
        """Ctrl-C, once: a second one while Python finalizes (its SIGINT handler reset) would
        end the process by the signal, as a user's double Ctrl-C may."""
        if self.process.poll() is None and not self.interrupted:
            self.process.send_signal(signal.SIGINT)
            self.interrupted = True

    def stop(self) -> int:
        """Ctrl-C, as a user would; the exit status."""
        self.interrupt()
        try:
            return self.process.wait(timeout=DEADLINE_S)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        for pid in processes_with_data_dir(self.data_dir):  # children outliving a failed test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def exit_lines(up: Up) -> list[str]:
    return [line for line in up.stderr().splitlines()
            if " exited with code " in line or " was killed by " in line]


def test_up_prints_a_token_once_ready_serves_and_stops_cleanly(tmp_path):
    up = Up(tmp_path / "data", "--workers", "1")
    try:
        # The token is the last line, printed once the worker had its kernels and was reading
        # the broker, not merely once the API answered.
        assert up.stdout().splitlines()[-1] == up.token
        assert f"http://127.0.0.1:{up.port}" in up.stdout()
        assert "kernels ready" in up.stdout()
        # BPTT_TRAIN_THREADS unset: the cores this machine lets it use, all for its one worker
        cores = len(os.sched_getaffinity(0))
        assert f"training {cores} ensemble member(s) at once each" in up.stdout()
        worker_log = (tmp_path / "data" / "logs" / "worker1.log").read_text()
        assert "kernels ready in" in worker_log and "worker1@" in worker_log
        assert "superuser privileges" not in worker_log  # dropped under bptt up (celery_app)
        assert len(processes_with_data_dir(tmp_path / "data")) >= 3  # API, worker, pool child
        assert up.train(TINY_JOB)["status"] == "succeeded"
        # Request lines go to the API's log file, not to the terminal.
        api_log = (tmp_path / "data" / "logs" / "api.log").read_text()
        assert '"GET /v1/jobs/' in api_log and '"service.access"' in api_log
        assert "/v1/jobs" not in up.stdout() + up.stderr()
        assert up.stop() == 0
        with pytest.raises(OSError):  # the API is gone with it
            urllib.request.urlopen(f"{up.url}/healthz", timeout=2)
        assert processes_with_data_dir(tmp_path / "data") == []  # and every API and worker
        assert exit_lines(up) == []  # stopping on request is no failure to report
    finally:
        up.kill()


def test_ten_fresh_starts_with_two_workers_each_stay_up_and_train(tmp_path):
    # Two workers on a fresh data dir used to race to create the broker's queue table, and the
    # loser took `bptt up` down with it on about half of all starts.
    stopping: list[Up] = []
    try:
        for attempt in range(10):
            up = Up(tmp_path / f"data{attempt}", "--workers", "2")
            stopping.append(up)
            workers = worker_children(up.process.pid)
            assert len(workers) == 2
            job = up.train(TINY_JOB)
            assert job["status"] == "succeeded", job
            assert up.process.poll() is None and exit_lines(up) == [], up.stderr()
            assert sorted(worker_children(up.process.pid)) == sorted(workers)  # no restarts
            up.interrupt()  # stops while the next one starts
        assert [up.stop() for up in stopping] == [0] * 10
    finally:
        for up in stopping:
            up.kill()


def test_a_sigkilled_worker_is_restarted_and_its_job_finishes(tmp_path):
    up = Up(tmp_path / "data", "--workers", "1", "--verbose", **FAST_RECOVERY)
    try:
        [worker] = worker_children(up.process.pid)
        long_job = {**TINY_JOB, "training": {"epochs": 400, "ensemble": 1,
                                             "early_stopping_patience": None}}
        status, submitted = up.call("POST", "/v1/jobs", long_job)
        assert status == 202, submitted

        def epochs_done() -> int:
            status, page = up.call("GET", f"/v1/jobs/{submitted['id']}/metrics")
            return len(page["metrics"])

        wait_for(lambda: epochs_done() >= 3, "a few epochs")
        os.kill(worker, signal.SIGKILL)  # the worker's main process; its pool child is orphaned
        killed_at = epochs_done()
        [line] = wait_for(lambda: exit_lines(up), "bptt up to report the exit")
        assert line.startswith("worker1 was killed by SIGKILL (exit code -9)")
        assert "worker1.log" in line and "restarting in" in line
        wait_for(lambda: [pid for pid in worker_children(up.process.pid) if pid != worker],
                 "a new worker")
        job = up.job_when(submitted["id"], {"succeeded", "failed", "cancelled"})
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2 and killed_at < 400  # resumed by the new worker
        status, page = up.call("GET", f"/v1/jobs/{submitted['id']}/metrics")
        assert [m["epoch"] for m in page["metrics"]] == list(range(1, 401))
        # --verbose: every process's lines on the terminal, request lines included
        assert f'GET /v1/jobs/{submitted["id"]} 200' in up.stderr()
        assert up.stop() == 0
    finally:
        up.kill()
