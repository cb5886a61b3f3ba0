"""`bptt up` as a user runs it: one command, a URL and a token, everything gone after Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

pytestmark = pytest.mark.skipif(shutil.which("bptt") is None, reason="bptt is not installed")


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


def test_up_prints_a_token_serves_and_stops_cleanly(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        ["bptt", "up", "--port", str(port), "--workers", "1", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        lines = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (lines and lines[-1].startswith("bptt_")):
            line = process.stdout.readline()
            assert line, f"bptt up ended early: {lines}"
            lines.append(line.strip())
        assert lines[-1].startswith("bptt_"), lines
        assert len(processes_with_data_dir(tmp_path)) >= 3  # API, worker, its pool child
        assert any(f"http://127.0.0.1:{port}" in line for line in lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=60) == 0
        with pytest.raises(OSError):  # the API is gone with it
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
        assert processes_with_data_dir(tmp_path) == []  # and every API and worker process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
