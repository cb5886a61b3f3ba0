"""The accuracy benchmark still runs end to end (a smoke run: the figures come from a full run)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("statsmodels")
ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_from_two_origins_prints_both_verdicts():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--quick",
                          "--origins", "2"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "(seed 0, 2 origins)" in run.stdout
    assert "Mean MASE over all" in run.stdout, run.stdout + run.stderr
    assert "bptt beats seasonal naive on every series, by MASE over the 2 origins" in run.stdout
    assert "by the last origin alone" in run.stdout
    # every series row counts its origins won out of 2
    rows = [line for line in run.stdout.splitlines() if line.startswith("| nile | nile |")]
    assert len(rows) == 1 and " of 2 |" in rows[0]
