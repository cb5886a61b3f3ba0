"""What a new user waits for: from `pip install -e .` in a fresh virtual environment to the first
finished job of `bptt up`, with a cold and then a warm kernel cache.

Creates a virtual environment in a temporary directory, installs this checkout into it exactly as
README says (`pip install -e .`, no extras; pip's wheel cache is reused if it has the wheels),
then runs that environment's `bptt up --workers 2` twice on fresh data dirs, each time timing
from the start of `bptt up` until a small job (one short series, 2 epochs, ensemble 1) has
succeeded: once with an empty kernel cache (Numba compiles every kernel) and once with the cache
the first run filled. NUMBA_CACHE_DIR points at the temporary directory, so that the cold run
is cold whatever this checkout's own __pycache__ holds.

    python benchmarks/first_run.py

Prints a Markdown table: install time, both start-to-first-job times (and how long of each the
kernels took), their sum with the install, and the environment's size. Numbers depend on the
machine and the network: rerun it rather than trust a copy.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
DEADLINE_S = 900  # a cold compile takes one to two minutes on 2 cores
JOB = {"series": [{"id": "s", "values": [round(20 + 10 * math.sin(i / 3), 3)
                                         for i in range(60)]}],
       "horizon": 4, "training": {"epochs": 2, "ensemble": 1}}


def timed(command: list[str], **options) -> float:
    """Seconds that command took (it must succeed)."""
    began = time.perf_counter()
    subprocess.run(command, check=True, **options)
    return time.perf_counter() - began


def size_mb(folder: Path) -> float:
    """Bytes of every file under folder, in MB (10^6), links not followed."""
    total = sum(path.lstat().st_size for path in folder.rglob("*")
                if path.is_file() and not path.is_symlink())
    return total / 1e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, token: str, method: str, path: str, payload=None) -> dict:
    body = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url + path, data=body, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def first_job(venv: Path, data_dir: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds from starting `bptt up` to its first succeeded job, seconds of kernel prep)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out_path = data_dir.with_name(data_dir.name + ".out")
    began = time.perf_counter()
    with open(out_path, "wb") as out:
        up = subprocess.Popen([str(venv / "bin" / "bptt"), "up", "--port", str(port),
                               "--workers", "2", "--data-dir", str(data_dir)],
                              env=env, stdout=out, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + DEADLINE_S
        token = None
        while token is None:
            if time.monotonic() > deadline or up.poll() is not None:
                raise RuntimeError(f"bptt up did not start: {out_path.read_text()}")
            lines = out_path.read_text().splitlines()
            token = next((line for line in lines if line.startswith("bptt_")), None)
            time.sleep(0.1)
        job = call(url, token, "POST", "/v1/jobs", JOB)
        while job["status"] not in ("succeeded", "failed", "cancelled"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the job did not finish: {job}")
            time.sleep(0.1)
            job = call(url, token, "GET", f"/v1/jobs/{job['id']}")
        seconds = time.perf_counter() - began
        if job["status"] != "succeeded":
            raise RuntimeError(f"the job {job['status']}: {job.get('error')}")
        kernels = re.search(r"kernels ready in (\d+) s", out_path.read_text())
        return seconds, float(kernels.group(1)) if kernels else float("nan")
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(timeout=30)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bptt-first-run-") as scratch:
        root = Path(scratch)
        venv = root / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install_s = timed([str(venv / "bin" / "pip"), "install", "-q", "-e", str(CHECKOUT)],
                          cwd=root)
        # The user's environment, minus this process's virtual environment and cache choices.
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("BPTT_", "NUMBA_", "VIRTUAL_ENV"))}
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["NUMBA_CACHE_DIR"] = str(root / "numba-cache")
        cold_s, cold_kernels_s = first_job(venv, root / "data-cold", env)
        warm_s, warm_kernels_s = first_job(venv, root / "data-warm", env)
        venv_mb = size_mb(venv)
    print("| step | seconds |")
    print("|---|---|")
    print(f"| `pip install -e .` in a fresh venv | {install_s:.0f} |")
    print(f"| `bptt up` to first finished job, cold kernel cache | {cold_s:.0f} "
          f"(kernels {cold_kernels_s:.0f}) |")
    print(f"| `bptt up` to first finished job, warm kernel cache | {warm_s:.0f} "
          f"(kernels {warm_kernels_s:.0f}) |")
    print(f"| from `pip install -e .` to first finished job | {install_s + cold_s:.0f} |")
    print(f"\nvenv size: {venv_mb:.0f} MB (Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
