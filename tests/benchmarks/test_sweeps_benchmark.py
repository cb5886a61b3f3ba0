"""The sweep scale-out benchmark still runs end to end (a smoke run: the figures come from a
full run)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_a_row_per_worker_count():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sweeps.py"), "--quick",
                          "--workers", "1", "2"], capture_output=True, text=True, timeout=600)
    rows = [line for line in run.stdout.splitlines() if line.startswith("| 1 |")
            or line.startswith("| 2 |")]
    assert len(rows) == 2, run.stdout + run.stderr
    assert all(float(row.split("|")[2]) > 0 for row in rows)
