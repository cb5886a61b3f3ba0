"""The kernel benchmark still runs end to end (a smoke run: the figures come from a full run)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_a_row_per_case():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernels.py"), "--quick",
                          "--no-compile"], capture_output=True, text=True, timeout=600, check=True)
    rows = [line for line in run.stdout.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 6, run.stdout  # 3 cells × (48 steps, 512 truncated)
    assert all(float(row.split("|")[5]) > 0 for row in rows)
