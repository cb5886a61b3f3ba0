"""The production pieces run by hand from a directory that is not the data's: `bptt db upgrade`,
`bptt tokens create`, `bptt api` and `bptt worker`, each given --data-dir, make one working
service (the token authenticates at the API, the worker trains the job)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service import serve

from .conftest import DEADLINE_S, Stack, _free_port

BPTT = str(Path(sys.executable).parent / "bptt")  # the console script pip installed


def test_api_and_worker_take_the_data_dir_from_another_directory(tmp_path: Path) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("BPTT_DATA_DIR", "BPTT_DATABASE_URL", "BPTT_BROKER_URL")}

    def run(*args: str) -> str:
        done = subprocess.run([BPTT, *args, "--data-dir", str(data)], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=DEADLINE_S)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("db", "upgrade")
    token = run("tokens", "create", "--tenant", "acme").splitlines()[-1]
    port = _free_port()
    # Each in its own process group (stop_all ends gunicorn's and Celery's children with them).
    processes = [subprocess.Popen([BPTT, *args, "--data-dir", str(data)], cwd=elsewhere,
                                  env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
                 for args in (["api", "--port", str(port)], ["worker", "--name", "dd"])]
    try:
        stack = Stack(f"http://127.0.0.1:{port}", token, env, port)
        serve.wait_until_healthy(f"{stack.url}/healthz", processes)
        status, job = stack.call("POST", "/v1/jobs", {
            "series": [{"id": "a", "values": [float(i % 7) for i in range(80)]}], "horizon": 3,
            "model": {"hidden_size": 4}, "training": {"epochs": 2, "ensemble": 1}})
        assert status == 202, job
        assert stack.wait_for_status(job["id"], {"succeeded", "failed"})["status"] == "succeeded"
    finally:
        serve.stop_all(processes)
    assert not (elsewhere / "data").exists()
    assert (data / "broker.db").exists()  # the worker's broker is the data dir's too
