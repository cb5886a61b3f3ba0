"""The accuracy benchmark still runs end to end (a smoke run: the figures come from a full run)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("statsmodels")
ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_the_verdicts():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--quick"],
                         capture_output=True, text=True, timeout=600)
    assert "Mean MASE over all" in run.stdout, run.stdout + run.stderr
    assert "bptt beats seasonal naive on every series" in run.stdout
