"""The chaos soak in its short form, on both stacks: jobs, sweeps, appends and forecast batches
while processes and servers are killed, then nothing duplicated and nothing lost.

Each soak is two minutes of faults whatever the machine does, so the two stacks soak side by
side (about two and a half minutes for both instead of over four): the faults, not the load,
are what the soak is about, and a loaded machine is a harsher test of the same promises."""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.service import pg_server
from tests.workers import redis_server

ROOT = Path(__file__).resolve().parents[2]
MINUTES = 2  # of faults, as the issue asks; with start-up and the drain, about three a stack
PRODUCTION_MISSING = pg_server.missing_reason() or redis_server.missing_reason()
WORKERS = {"embedded": 2, "production": 3}


class _Soak:
    """One stack's soak, running in the background from the moment it is made."""

    def __init__(self, stack: str):
        self.stack = stack
        self._out = tempfile.TemporaryFile("w+")
        self._err = tempfile.TemporaryFile("w+")
        self._process = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--stack", stack,
             "--minutes", str(MINUTES), "--workers", str(WORKERS[stack]), "--fault-every", "4",
             "--seed", "1"], stdout=self._out, stderr=self._err, text=True)

    def output(self) -> str:
        """Wait for the soak; its standard output, once it has exited cleanly."""
        try:
            code = self._process.wait(timeout=900)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            code = "killed after 900 s"
        self._out.seek(0)
        self._err.seek(0)
        out, err = self._out.read(), self._err.read()
        assert code == 0, f"{self.stack}: exit {code}\n{out[-6000:]}{err[-6000:]}"
        return out

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._out.close()
        self._err.close()


@pytest.fixture(scope="module")
def soaks():
    """Both stacks' soaks, started together (the production one where its servers exist)."""
    started = {stack: _Soak(stack) for stack in ("embedded", "production")
               if stack == "embedded" or not PRODUCTION_MISSING}
    yield started
    for soak in started.values():
        soak.stop()


def _figure(out: str, row: str) -> str:
    found = re.search(rf"^\| {re.escape(row)} \| (.*) \|$", out, re.MULTILINE)
    assert found, out
    return found.group(1)


def _injected(out: str) -> int:
    table = out.split("| fault | injected |")[1].split("\n\n")[0]
    return sum(int(n) for n in re.findall(r"^\| [^|]+ \| (\d+) \|$", table, re.MULTILINE))


def _check(out: str) -> None:
    assert "duplicates 0, lost 0" in out
    assert _injected(out) >= 10
    assert "succeeded" in _figure(out, "jobs by status")
    assert _figure(out, "attempts overlapping the next one (fencing)") == "0"


def test_the_embedded_stack_loses_and_duplicates_nothing_under_faults(soaks):
    _check(soaks["embedded"].output())


@pytest.mark.skipif(bool(PRODUCTION_MISSING), reason=str(PRODUCTION_MISSING))
def test_the_production_stack_loses_and_duplicates_nothing_under_faults(soaks):
    _check(soaks["production"].output())
