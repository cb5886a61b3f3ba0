"""Seasonality taken out before scaling and put back after forecasting: the decomposition, the
choice on validation, and every forecast path (forecast, states, cross-validation, files)."""

import dataclasses
import json

import numpy as np
import pytest

import bptt
from bptt import TrainingSpec
from bptt.combination import Combination
from bptt.data import DataError
from bptt.scores import mase
from bptt.seasonality import (
    Seasonality,
    centred_moving_average,
    choose_kind,
    seasonal_indices,
    seasonal_path,
)
from bptt.serialization import from_safetensors
from bptt.state import append_observations, forecast_state, initial_states

PATTERN = np.array([3.0, 5, 2, -1, -4, -6, -3, 0, 1, 2, 4, -3])
PATTERN = PATTERN - PATTERN.mean()


def _additive(n=144, seed=0, level=50.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 0.1 * t + PATTERN[t % 12] + rng.normal(0, 0.3, n)


def _multiplicative(n=144, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (20 + 2 * t) * (1 + 0.04 * PATTERN[t % 12]) * np.exp(rng.normal(0, 0.01, n))


def _spec(seasonality=None, **training):
    return TrainingSpec.from_dict({
        "horizon": 6, "season_length": 12, "quantiles": [0.1, 0.5, 0.9],
        "seasonality": seasonality, "model": {"cell": "gru", "hidden_size": 8},
        "window": {"input_size": 24},
        "training": {"epochs": 3, "batch_size": 16, "ensemble": 2, **training}})


def test_the_indices_are_the_pattern_after_the_end_and_sum_to_zero():
    values = _additive()
    indices = seasonal_indices(values, 12)
    assert indices.sum() == pytest.approx(0, abs=1e-9)
    # 144 points: the step after the end has phase 0 of the pattern
    np.testing.assert_allclose(indices, PATTERN, atol=0.25)
    np.testing.assert_allclose(seasonal_indices(values[:-5], 12), np.roll(PATTERN, 5), atol=0.25)
    assert not seasonal_indices(values[:30], 12).any()  # under 3 seasons: none
    assert not seasonal_indices(values, 1).any()
    gappy = values.copy()
    gappy[[100, 101, 130]] = np.nan
    np.testing.assert_allclose(seasonal_indices(gappy, 12), PATTERN, atol=0.3)


def test_the_centred_moving_average_of_an_even_season_is_2_by_m():
    y = np.arange(30.0) + PATTERN[np.arange(30) % 12]
    trend = centred_moving_average(y, 12)
    assert np.isnan(trend[:6]).all() and np.isnan(trend[-6:]).all()
    np.testing.assert_allclose(trend[6:-6], np.arange(30.0)[6:-6])  # the season averages out


@pytest.mark.parametrize("make,expected", [(_additive, "additive"),
                                           (_multiplicative, "multiplicative")])
def test_validation_chooses_the_kind_of_the_season(make, expected):
    series = [make(seed=s) for s in range(3)]
    kind, scores = choose_kind(series, 12, 48, 12, 0.1)
    assert kind == expected and scores[expected] < scores["none"]


def test_without_a_season_validation_keeps_the_series_as_they_are():
    rng = np.random.default_rng(3)
    walks = [100 + np.cumsum(rng.normal(size=200)) for _ in range(3)]
    assert choose_kind(walks, 12, 48, 12, 0.1)[0] == "none"
    assert choose_kind(walks, 1, 48, 12, 0.1) == ("none", {})
    signed = [w - 100 for w in walks]  # not positive: no multiplicative candidate
    assert "multiplicative" not in choose_kind(signed, 12, 48, 12, 0.1)[1]


@pytest.fixture(scope="module")
def multiplicative_fit():
    series = {f"m{i}": _multiplicative(seed=i) for i in range(3)}
    series["signed"] = _additive(seed=9, level=0.0)  # a value <= 0: decomposed additively
    return bptt.fit(series, spec=_spec()), series


def test_fit_chooses_stores_and_reloads_the_seasonality(multiplicative_fit):
    result, series = multiplicative_fit
    season = result.model.seasonality
    assert season.kind == "multiplicative" and season.log.tolist() == [True, True, True, False]
    again = bptt.Model.from_bytes(result.model.to_bytes())
    assert again.seasonality.kind == "multiplicative"
    np.testing.assert_array_equal(again.seasonality.indices, season.indices)
    for a, b in zip(bptt.forecast(result.model), bptt.forecast(again), strict=True):
        np.testing.assert_array_equal(a["mean"], b["mean"])
    # the training series given again with their histories: the same forecasts
    for a, b in zip(bptt.forecast(result.model), bptt.forecast(result.model, series),
                    strict=True):
        np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-6)


def test_a_file_without_seasonality_loads_and_forecasts_as_before():
    series = {"a": _additive(), "b": _additive(seed=1)}
    model = bptt.fit(series, spec=_spec("none")).model
    data = model.to_bytes()
    tensors, metadata = from_safetensors(data)  # what files written before transforms hold:
    assert not [n for n in tensors if n.startswith("seasonality.")]
    assert "seasonality" not in json.loads(metadata["model_card"])
    again = bptt.Model.from_bytes(data)
    assert again.seasonality.kind == "none"
    for a, b in zip(bptt.forecast(model, series), bptt.forecast(again, series), strict=True):
        np.testing.assert_array_equal(a["mean"], b["mean"])


def test_the_season_survives_a_combination_that_puts_everything_on_naive():
    values = _additive(n=150)
    model = bptt.fit({"s": values}, spec=_spec("additive")).model
    naive = dataclasses.replace(model, combination=Combination(
        np.array([[0.0, 0, 1, 0]]), np.array([0.0, 0, 1, 0]), model.combination.means))
    mean = bptt.forecast(naive)[0]["mean"]
    # the seasonally adjusted last value, with the season put back (Naive2)
    indices = seasonal_indices(values, 12)
    adjusted_last = values[-1] - indices[-1]
    np.testing.assert_allclose(mean, adjusted_last + indices[:6], rtol=1e-6)


def test_states_and_whole_histories_agree_with_a_multiplicative_model(multiplicative_fit):
    result, series = multiplicative_fit
    model = result.model
    state = initial_states(model, {"m1": series["m1"]})[0]
    history = series["m1"]
    for chunk in ([300.0, None, 310.0], list(np.linspace(305, 330, 25))):
        state = append_observations(model, state, chunk)
        history = np.concatenate([history, [np.nan if v is None else v for v in chunk]])
        expected = bptt.forecast(model, {"m1": history})[0]
        got = forecast_state(model, state)
        np.testing.assert_allclose(got["mean"], expected["mean"], rtol=1e-6)
        np.testing.assert_allclose(got["quantiles"][0.9], expected["quantiles"][0.9], rtol=1e-6)
    assert state.recent.size <= 10 * 12 + 1  # ten seasons at most: bounded
    with pytest.raises(DataError, match="positive"):
        bptt.forecast(model, {"m1": np.r_[history, -1.0]})


def test_cross_validation_forecasts_with_the_chosen_seasonality():
    series = {f"m{i}": _multiplicative(n=160, seed=i) for i in range(2)}
    cv = bptt.cross_validate(series, spec=_spec("multiplicative"), windows=2)
    model = cv.fit.model
    assert model.seasonality.kind == "multiplicative"
    for window in cv.windows:
        for row in window.series:
            history = series[row.id][: row.cutoff]
            f = bptt.forecast(model, {row.id: history})[0]
            actual = series[row.id][row.cutoff : row.cutoff + 6]
            assert row.mase == pytest.approx(mase(actual, f["mean"], history, 12))


def test_the_mean_lies_inside_the_interval(multiplicative_fit):
    result, series = multiplicative_fit
    for f in bptt.forecast(result.model, series):
        assert (f["quantiles"][0.1] <= f["mean"]).all() and (f["mean"] <= f["quantiles"][0.9]).all()


def test_a_new_series_is_decomposed_from_its_own_history():
    season = Seasonality("additive", 12, np.zeros(1, bool), np.zeros((1, 12)))
    values = _additive()
    adjusted, indices = season.transform(values, log=False)
    np.testing.assert_allclose(indices, seasonal_indices(values, 12))
    flat = np.full((1, 12, 1), adjusted[-1])  # the adjusted series' naive forecast
    back = season.inverse(flat, indices[None], np.zeros(1, bool))
    np.testing.assert_allclose(back[0, :, 0], adjusted[-1] + indices)
    np.testing.assert_allclose(adjusted + seasonal_path(indices, len(values), -len(values)),
                               values)


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_transform_all_gives_each_series_transform_to_the_bit(kind):
    # series of one length are taken out at once: the numbers are transform's, one by one
    rng = np.random.default_rng(7)
    series = []
    for n in [10, 35, 36, 50, 50, 50, 119, 120, 121, 300, 300, 597]:
        values = rng.lognormal(3, 0.5, n) + 5 * np.sin(np.arange(n) * 2 * np.pi / 12)
        values[rng.random(n) < 0.08] = np.nan
        series.append(values)
    series.append(np.r_[np.nan, np.arange(1.0, 60.0)])  # a gap first
    series.append(np.full(48, 4.0))  # flat
    season = Seasonality(kind, 12, np.zeros(len(series), bool), np.zeros((len(series), 12)))
    logs = np.array([kind == "multiplicative" and i % 2 == 0 for i in range(len(series))])
    adjusted, indices = season.transform_all(series, logs)
    for i, values in enumerate(series):
        one, own = season.transform(values, bool(logs[i]))
        assert np.array_equal(adjusted[i], one, equal_nan=True)
        assert np.array_equal(indices[i], own)
    assert np.any(indices != 0)
