"""resolve_spec: the plan of a fit from the series' lengths alone, equal to what fit trains with."""

import dataclasses

import numpy as np
import pytest

import bptt
from bptt import TrainingSpec
from bptt.data import make_windows, window_counts
from bptt.trainer import _prepare


@pytest.mark.parametrize("lengths", [[30], [19, 200, 57], [12, 12, 12, 12], [500] * 30])
@pytest.mark.parametrize("input_size", [1, 6, 12])
@pytest.mark.parametrize("horizon", [1, 4])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.35])
def test_window_counts_are_what_make_windows_builds(lengths, input_size, horizon, fraction):
    scaled = [np.sin(np.arange(n, dtype=float)) for n in lengths]
    scaled[0][3] = np.nan  # a gap changes no count
    train, val = make_windows(scaled, input_size, horizon, fraction)
    assert window_counts(lengths, input_size, horizon, fraction) == (len(train), len(val))


def _series(lengths):
    return {f"s{i}": 5 + np.sin(np.arange(n) / 2) for i, n in enumerate(lengths)}


SPECS = [
    {"horizon": 6},
    {"horizon": 3, "freq": "MS"},
    {"horizon": 12, "season_length": 12, "model": {"cell": "gru"},
     "training": {"optimizer": "sgd", "batch_size": 4}},
    {"horizon": 2, "window": {"input_size": 5}, "training": {"validation_fraction": 0.0}},
]


@pytest.mark.parametrize("request_", SPECS)
@pytest.mark.parametrize("lengths", [[60], [40, 300, 90], [2000] * 40])
def test_resolve_spec_from_lengths_is_the_spec_fit_trains_with(request_, lengths):
    spec = TrainingSpec.from_dict(request_)
    planned = bptt.resolve_spec(lengths, spec)
    assert planned == _prepare(_series(lengths), None, spec)[0].spec  # what fit trains with
    assert planned.model.hidden_size and planned.window.input_size and planned.season_length
    assert planned.training.epochs and planned.training.learning_rate
    assert bptt.resolve_spec(lengths, planned) == planned  # nothing left open to choose


def test_training_with_the_resolved_spec_is_training_with_the_open_one():
    series = _series([80, 110])
    spec = TrainingSpec.from_dict({"horizon": 4, "training": {"ensemble": 2, "epochs": 3}})
    planned = bptt.resolve_spec([80, 110], spec)
    open_fit, planned_fit = bptt.fit(series, spec=spec), bptt.fit(series, spec=planned)
    assert np.array_equal(open_fit.model.members, planned_fit.model.members)
    assert open_fit.model.spec == planned_fit.model.spec == planned


def test_a_warm_start_takes_its_open_sizes_from_the_model():
    series = _series([80, 110])
    earlier = bptt.fit(series, spec=TrainingSpec.from_dict(
        {"horizon": 4, "model": {"hidden_size": 6}, "window": {"input_size": 9},
         "training": {"epochs": 1, "ensemble": 1}}))
    spec = TrainingSpec.from_dict({"horizon": 4, "training": {"ensemble": 1}})
    planned = bptt.resolve_spec([80, 110], spec, warm_start=earlier.model)
    assert (planned.model.hidden_size, planned.window.input_size) == (6, 9)
    assert planned == _prepare(series, None, spec, earlier.model)[0].spec


def test_an_invalid_spec_or_no_series_is_refused():
    with pytest.raises(bptt.SpecError):
        bptt.resolve_spec([50], dataclasses.replace(TrainingSpec(horizon=3), horizon=0))
    with pytest.raises(ValueError):
        bptt.resolve_spec([], TrainingSpec(horizon=3))


def test_a_default_budget_is_bounded_whatever_the_data_size():
    spec = TrainingSpec(horizon=6)
    small = bptt.resolve_spec([200] * 10, spec).training
    batches = -(-window_counts([200] * 10, 24, 6, 0.1)[0] // 32)
    assert small.max_steps == min(300, max(30, -(-1500 // batches))) * batches  # the old rule
    for series in (10_000, 48_000, 500_000):  # up to 250M training windows
        t = bptt.resolve_spec([600] * series, spec).training
        assert (t.max_steps, t.eval_every, t.epochs) == (15_000, 100, 150)
