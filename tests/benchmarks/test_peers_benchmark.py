"""The benchmark against neuralforecast still runs end to end (a smoke run with tiny steps: the
figures come from a full run), and its verdict follows the target's rule."""

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("neuralforecast")
pytest.importorskip("statsmodels")
ROOT = Path(__file__).resolve().parents[2]
METHODS = ["bptt default"] + [f"nf {m} {kind}" for kind in ("default", "best")
                              for m in ("LSTM", "GRU", "RNN")] + ["nf best"]


def test_quick_run_prints_every_method_the_defaults_the_choices_and_the_verdict():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--quick"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    # neuralforecast's documented defaults, read from the library itself
    assert re.search(r"^\| LSTM \| -1 \| 2 \| 128 \| 128 \| 2 \| 1000 \|", out, re.M), out
    assert re.search(r"^\| GRU \| -1 \| 2 \| 200 \|", out, re.M), out
    rows = {cells[2]: cells for cells in _rows(out, "real") if len(cells) == 6}  # not the verdict
    assert list(rows) == METHODS, out
    for cells in rows.values():
        assert float(cells[3]) > 0 and math.isfinite(float(cells[4])), cells
    # the grid's choice per model on nile, from the quick grid (h = 10: input 2h or 4h)
    chosen = [cells for cells in _rows(out, "nile") if cells[2] in ("LSTM", "GRU", "RNN")]
    assert len(chosen) == 3, out
    for cells in chosen:
        assert re.fullmatch(r"input (20|40), hidden (16|32), steps (5|10)", cells[3]), cells
    assert re.search(r"^\| real \| 1 \| [\d.]+ \| [\d.]+ \| [\d.]+x \|", out, re.M), out
    assert re.search(r"in every group\): (met|not met)$", out, re.M), out
    assert "Load average (1/5/15 min) at the end" in out


def _rows(out: str, first: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith(f"| {first} |")]


@pytest.fixture
def peers(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # peers.py imports accuracy
    spec = importlib.util.spec_from_file_location("peers", ROOT / "benchmarks" / "peers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_target_needs_five_times_the_speed_and_no_worse_mase(peers):
    def run(seconds, mase):
        return peers.Run(seconds=seconds, mase={"a": [mase], "b": [mase]})

    assert peers._beats(run(2.0, 0.8), run(10.0, 0.8))  # 5x at equal MASE
    assert not peers._beats(run(2.0, 0.8), run(9.9, 0.9))  # better, but only 4.95x
    assert not peers._beats(run(1.0, 0.81), run(100.0, 0.8))  # fast, but worse
    assert not peers._beats(run(1.0, math.nan), run(100.0, 0.8))  # a failed bptt fit


def test_grid_is_two_by_two_by_two_in_multiples_of_the_horizon(peers):
    settings = peers.grid_settings(peers.GRID, 12)
    assert len(settings) == 8 and len({tuple(s.values()) for s in settings}) == 8
    assert {s["input_size"] for s in settings} == {24, 48}
