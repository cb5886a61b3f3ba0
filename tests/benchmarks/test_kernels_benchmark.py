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
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        flops, ours, rate = float(cells[4]), float(cells[5]), float(cells[11])
        assert flops > 0 and ours > 0 and rate > 0, row
        assert cells[12].endswith("%") and cells[13].endswith("%"), row  # of peak, of FMA
    assert "FMA limit" in run.stdout and "engine" in run.stdout, run.stdout


def test_step_flops_count_every_product():
    """The FLOP count: forward, dh and dW_hh skip a window's first step from the zero state;
    the input projection, dW_ih and the head's three products count at every step."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from kernels import step_flops
    finally:
        sys.path.pop(0)
    from bptt import NetworkSpec

    spec = NetworkSpec(cell="lstm", input_size=3, hidden_size=5, output_size=2)
    g = 20
    per_step_input = 2 * 7 * g * 3 * 2  # B = 7: projection and dW_ih
    per_step_recurrent = 2 * 7 * g * 5 * 3
    head = 6 * 1 * 7 * 5 * 2
    assert step_flops(spec, 4, 7, 1) == 4 * per_step_input + 3 * per_step_recurrent + head
    truncated = 4 * per_step_input + (1 + 2) * per_step_recurrent + 6 * 4 * 7 * 5 * 2
    assert step_flops(spec, 4, 7, 4, (2, 2)) == truncated
