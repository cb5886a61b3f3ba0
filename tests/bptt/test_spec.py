"""The training spec: defaults, strict parsing from JSON, every problem named by location."""

import dataclasses

import pytest

from bptt import SpecError, TrainingSpec
from bptt.defaults import input_size_for, resolve
from bptt.seasons import season_from_freq


def test_minimal_spec_round_trips():
    spec = TrainingSpec.from_dict({"horizon": 12})
    assert spec.model.cell == "lstm" and spec.training.clip.max_norm == 1.0
    assert TrainingSpec.from_dict(spec.to_dict()) == spec


def test_the_design_example_parses():
    spec = TrainingSpec.from_dict({
        "horizon": 12, "season_length": 12, "quantiles": [0.1, 0.5, 0.9],
        "model": {"cell": "lstm", "hidden_size": 32, "num_layers": 1, "dropout": 0.0},
        "window": {"input_size": 36},
        "training": {"epochs": 300, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.005,
                     "loss": "mse", "clip": {"max_norm": 1.0}, "truncate": None,
                     "validation_fraction": 0.1, "early_stopping_patience": 20, "seed": 0}})
    assert spec.quantiles == (0.1, 0.5, 0.9) and spec.window.input_size == 36


@pytest.mark.parametrize("data,loc", [
    ({}, ["horizon"]),
    ({"horizon": "12"}, ["horizon"]),
    ({"horizon": 12, "colour": 1}, ["colour"]),
    ({"horizon": 0}, ["horizon"]),
    ({"horizon": 12, "model": {"cell": "transformer"}}, ["model", "cell"]),
    ({"horizon": 12, "model": {"hidden": 3}}, ["model", "hidden"]),
    ({"horizon": 12, "training": {"epochs": 1.5}}, ["training", "epochs"]),
    ({"horizon": 12, "training": {"learning_rate": -1}}, ["training", "learning_rate"]),
    ({"horizon": 12, "training": {"clip": {"max_norm": 0}}}, ["training", "clip", "max_norm"]),
    ({"horizon": 12, "training": {"truncate": [8, 4]}}, ["training", "truncate"]),
    ({"horizon": 12, "quantiles": [0.9, 0.1]}, ["quantiles"]),
    ({"horizon": 12, "freq": "fortnightly"}, ["freq"]),
    ({"horizon": 12, "model": []}, ["model"]),
])
def test_bad_specs_name_the_field(data, loc):
    with pytest.raises(SpecError) as info:
        TrainingSpec.from_dict(data)
    assert loc in [e["loc"] for e in info.value.errors]


def test_quantiles_are_on_by_default_and_an_empty_list_or_null_means_the_mean_only():
    assert TrainingSpec(horizon=6).quantiles == (0.1, 0.5, 0.9)
    assert TrainingSpec.from_dict({"horizon": 6}).to_dict()["quantiles"] == [0.1, 0.5, 0.9]
    none = TrainingSpec.from_dict({"horizon": 6, "quantiles": []})
    assert none.quantiles == () and none.to_dict()["quantiles"] == []
    assert TrainingSpec.from_dict(none.to_dict()) == none  # stays the mean only
    assert TrainingSpec.from_dict({"horizon": 6, "quantiles": None}).quantiles is None
    assert TrainingSpec.from_dict({"horizon": 6, "quantiles": [0.05, 0.95]}).quantiles == (
        0.05, 0.95)


def test_a_fit_forecasts_intervals_by_default_and_none_when_asked():
    import numpy as np

    import bptt

    series = {"a": 5 + np.sin(np.arange(60) / 2)}
    quick = {"epochs": 1, "ensemble": 1}
    default = bptt.fit(series, spec=TrainingSpec.from_dict({"horizon": 3, "training": quick}))
    assert set(bptt.forecast(default.model)[0]["quantiles"]) == {0.1, 0.5, 0.9}
    bare = bptt.fit(series, spec=TrainingSpec.from_dict({"horizon": 3, "quantiles": [],
                                                         "training": quick}))
    assert bptt.forecast(bare.model)[0]["quantiles"] == {}
    assert bare.model.network.output_size == 3 and default.model.network.output_size == 12


def test_seasons_from_frequencies():
    assert season_from_freq("MS") == 12 and season_from_freq("W-SUN") == 52
    assert season_from_freq("h") == 24 and season_from_freq("QS") == 4
    assert season_from_freq("nonsense") is None


def test_default_window_follows_the_rule_and_the_data():
    spec = TrainingSpec(horizon=12, freq="MS")
    assert input_size_for(spec, shortest=500) == 48  # max(8, 4h, 4m)
    assert input_size_for(spec, shortest=40) == 13  # room for horizon + 4 windows
    resolved = resolve(spec, 24, train_windows=100)
    assert resolved.season_length == 12 and resolved.model.hidden_size == 32
    # 4 batches: the old rule's 300 passes, as 1,200 updates evaluated after every 4
    t = resolved.training
    assert (t.max_steps, t.eval_every, t.epochs) == (1200, 4, 300) and t.learning_rate == 3e-3
    # 1,250 batches: 30 passes would be 37,500 updates; the budget stops at 15,000, evaluated
    # every 100
    t = resolve(spec, 24, train_windows=40_000).training
    assert (t.max_steps, t.eval_every, t.epochs) == (15_000, 100, 150)
    # epochs asked for: full passes, as before
    passes = dataclasses.replace(spec, training=dataclasses.replace(spec.training, epochs=7))
    t = resolve(passes, 24, train_windows=40_000).training
    assert (t.epochs, t.max_steps, t.eval_every) == (7, None, None)


def test_epochs_or_max_steps_but_not_both():
    with pytest.raises(SpecError) as caught:
        TrainingSpec.from_dict({"horizon": 3, "training": {"epochs": 5, "max_steps": 100}})
    assert caught.value.errors[0]["loc"] == ["training", "max_steps"]
    with pytest.raises(SpecError) as caught:
        TrainingSpec.from_dict({"horizon": 3, "training": {"epochs": 5, "eval_every": 10}})
    assert caught.value.errors[0]["loc"] == ["training", "eval_every"]
    with pytest.raises(SpecError) as caught:
        TrainingSpec.from_dict({"horizon": 3, "training": {"max_steps": 0}})
    assert caught.value.errors[0]["loc"] == ["training", "max_steps"]
    # as a resolved spec writes them: epochs the rounds of eval_every updates
    resolved = {"epochs": 4, "max_steps": 310, "eval_every": 100}
    assert TrainingSpec.from_dict({"horizon": 3, "training": resolved}).training.epochs == 4
    t = resolve(TrainingSpec.from_dict({"horizon": 3, "training": {"max_steps": 310}}), 8,
                train_windows=10_000).training
    assert (t.max_steps, t.eval_every, t.epochs) == (310, 100, 4)


def test_cross_validation_is_off_by_default_and_round_trips():
    from bptt.spec import CrossValidationConfig

    assert TrainingSpec(horizon=6).cross_validation is None
    assert TrainingSpec(horizon=6).to_dict()["cross_validation"] is None
    spec = TrainingSpec.from_dict({"horizon": 6, "cross_validation": {"windows": 5, "step": 2}})
    assert spec.cross_validation == CrossValidationConfig(windows=5, step=2)
    assert spec.to_dict()["cross_validation"] == {"windows": 5, "step": 2}
    assert TrainingSpec.from_dict(spec.to_dict()) == spec
    defaults = TrainingSpec.from_dict({"horizon": 6, "cross_validation": {}}).cross_validation
    assert defaults == CrossValidationConfig() and (defaults.windows, defaults.step) == (3, None)
    assert TrainingSpec.from_dict({"horizon": 6, "cross_validation": None}).cross_validation is None
    limits = {"windows": 20, "step": 1}
    assert TrainingSpec.from_dict({"horizon": 6, "cross_validation": limits}).problems() == []


@pytest.mark.parametrize("cv,loc", [
    ({"windows": 0}, ["cross_validation", "windows"]),
    ({"windows": 21}, ["cross_validation", "windows"]),
    ({"windows": "3"}, ["cross_validation", "windows"]),
    ({"windows": 2.0}, ["cross_validation", "windows"]),
    ({"windows": True}, ["cross_validation", "windows"]),
    ({"step": 0}, ["cross_validation", "step"]),
    ({"step": -6}, ["cross_validation", "step"]),
    ({"step": 1.5}, ["cross_validation", "step"]),
    ({"folds": 3}, ["cross_validation", "folds"]),
    ([3], ["cross_validation"]),
])
def test_bad_cross_validation_names_the_field(cv, loc):
    with pytest.raises(SpecError) as info:
        TrainingSpec.from_dict({"horizon": 6, "cross_validation": cv})
    assert [e["loc"] for e in info.value.errors] == [loc]
