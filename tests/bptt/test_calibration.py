"""Calibration gathers the validation windows a chunk at a time: the combination's weights, the
conformal shifts and the coverage are those of one pass over every window, to the bit."""

import copy
import math

import numpy as np

import bptt
from bptt import TrainingSpec
from bptt.calibration import calibrate
from bptt.combination import ExactSums
from bptt.trainer import _prepare


def _series(count=7, seed=3):
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(count):
        n = 70 + 9 * i
        t = np.arange(n)
        values = 20 + 2 * i + 3 * np.sin(2 * np.pi * t / 6) + rng.normal(0, 1, n).cumsum() / 3
        values[rng.choice(n, 3, replace=False)] = np.nan  # gaps: unknown targets too
        out[f"s{i}"] = values
    return out


def _fitted():
    spec = TrainingSpec.from_dict({
        "horizon": 5, "season_length": 6, "quantiles": [0.1, 0.5, 0.9],
        "model": {"hidden_size": 8}, "window": {"input_size": 12},
        "training": {"epochs": 3, "batch_size": 16, "ensemble": 2,
                     "validation_fraction": 0.3}})
    series = _series()
    model = bptt.fit(series, spec=spec).model
    problem, _, _, scaled, _ = _prepare(series, None, spec)  # what fit calibrated on
    return model, problem.val, scaled


def test_chunked_calibration_equals_one_pass_to_the_bit():
    model, val, scaled = _fitted()
    assert len(list(val.series_chunks(10))) >= 5  # several chunks, whole series each
    results = []
    for chunk in (len(val), 10, 1):  # one pass; about 10 windows; one series at a time
        mine = copy.deepcopy(model)
        coverage = calibrate(mine, val, scaled, chunk=chunk)
        results.append((coverage, mine.combination.default, mine.quantile_offsets))
    whole = results[0]
    assert not np.all(whole[2] == 0)  # the shifts were fitted
    for coverage, weights, offsets in results[1:]:
        assert coverage == whole[0]
        assert np.array_equal(weights, whole[1])
        assert np.array_equal(offsets, whole[2])


def test_series_chunks_keep_each_series_whole_and_every_window_once():
    _, val, _ = _fitted()
    for size in (1, 4, 10, 10_000):
        chunks = list(val.series_chunks(size))
        series = np.concatenate([c.series for c in chunks])
        assert np.array_equal(series, val.series)  # every window once, in order
        firsts = [c.series[0] for c in chunks[1:]]
        lasts = [c.series[-1] for c in chunks[:-1]]
        assert all(a != b for a, b in zip(lasts, firsts, strict=True))  # none split
        whole = val.all()
        assert np.array_equal(np.concatenate([c.x for c in chunks]), whole.x)


def test_exact_sums_do_not_depend_on_the_blocks():
    rng = np.random.default_rng(0)
    values = rng.lognormal(0, 4, (3, 1000)) * rng.choice([1e-30, 1, 1e30], (3, 1000))
    expected = [math.fsum(row) for row in values]
    for block in (1000, 333, 7):
        sums = ExactSums(3)
        for first in range(0, 1000, block):
            sums.add(0, values[:, first:first + block])
        assert sums.totals().tolist() == expected
