"""The accuracy benchmark still runs end to end (a smoke run: the figures come from a full run)."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("statsmodels")
ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_from_two_origins_prints_the_groups_and_the_targets():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--quick",
                          "--origins", "2"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "(seed 0, 2 origins)" in run.stdout
    out = run.stdout
    # the group table: the synthetic group, the real group and the real series by frequency
    for group in ("| trend+season | 2 |", "| real | 1 |", "| real, yearly | 1 |"):
        assert group in out, out
    assert "rel. snaive bptt" in out and "bptt cover 10-90" in out
    assert "Mean MASE over the 1 real series" in out, out + run.stderr
    assert "The oracle beats seasonal naive on" in out  # the synthetic group's reference
    if importlib.util.find_spec("statsforecast"):
        assert "MASE arima" in out and "MASE theta" in out
        assert "Real series, bptt mean MASE < AutoARIMA's:" in out
        assert "geometric mean relative to seasonal naive < AutoARIMA's:" in out
        assert "while AutoETS beats seasonal naive:" in out
    rows = [line for line in out.splitlines() if line.startswith("| nile | nile |")]
    assert len(rows) == 1
    assert "- nile (yearly, m=1, h=10): statsmodels nile" in out  # where it comes from


def _accuracy_module():
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_level_shift_oracle_discounts_noise_and_follows_a_jump():
    # The oracle of the level-shift process is a Bayes filter: a 2-sigma blip at the end of a
    # flat stretch is mostly noise, four points 10 sigmas up are a jump.
    accuracy = _accuracy_module()
    flat = 50 + np.random.default_rng(0).normal(0, accuracy.NOISE_SD, 100)
    blip = np.append(flat, 52.0)
    forecast = accuracy.level_shift_forecast(blip, 3)
    assert np.all(np.abs(forecast - flat.mean()) < 0.5), forecast
    jumped = np.append(flat, [60.2, 59.9, 60.1, 59.8])
    forecast = accuracy.level_shift_forecast(jumped, 3)
    assert np.all(np.abs(forecast - 60.0) < 0.5), forecast


def test_oracle_seeds_counts_every_seed_once():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accuracy.py"),
                          "--oracle-seeds", "2"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = re.findall(r"^\| (\d+) \| (\d+) \|$", run.stdout, flags=re.MULTILINE)
    assert sum(int(seeds) for _, seeds in rows) == 2, run.stdout  # each seed in one row
    assert "of 2 seeds" in run.stdout


def test_quick_covariate_group_prints_every_dataset_and_both_verdicts(tmp_path):
    dump = tmp_path / "cov.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--only",
                          "covariates", "--quick", "--json", str(dump)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "seeds [0], 1 origins" in out, out
    for dataset in ("promo", "holiday", "temperature", "macro_consumption", "group"):
        rows = [line for line in out.splitlines() if line.startswith(f"| {dataset} | ")]
        assert len(rows) == 1, out
        cells = rows[0].strip("|").split("|")
        assert len(cells) == 1 + 6 + 2  # dataset, the six methods, the two ratios
        assert "n/a" not in cells[1:3], rows  # bpttcov and bptt forecast every series
    if importlib.util.find_spec("statsforecast"):
        verdicts = re.findall(r"^(PASS|FAIL) \((a|b)\) group mean MASE, bpttcov < (\w+) .*: "
                              r"(\d+\.\d+) vs (\d+\.\d+)", out, flags=re.MULTILINE)
        assert [(v[1], v[2]) for v in verdicts] == [("a", "bptt"), ("b", "arimax")], out
        for verdict, _, _, ours, theirs in verdicts:  # the verdict is the figures'
            assert (verdict == "PASS") == (float(ours) < float(theirs))
    # the kept run reports as it printed
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--only",
                            "covariates", "--report", str(dump)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert [line for line in again.stdout.splitlines() if line.startswith("| ")] == table
