"""Series state: forecasts after appended observations equal forecasts from the whole history."""

import numpy as np
import pytest

import bptt
from bptt.data import DataError
from bptt.state import SeriesState, append_observations, forecast_state, initial_states


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(5)
    t = np.arange(140)
    series = {f"s{i}": 20 + 5 * np.sin(2 * np.pi * t / 12 + i) + rng.normal(0, 0.5, t.size)
              for i in range(3)}
    series["s1"][[30, 131, 132]] = np.nan  # gaps, two of them inside the last window
    spec = bptt.TrainingSpec.from_dict({
        "horizon": 6, "season_length": 12, "quantiles": [0.1, 0.5, 0.9],
        "model": {"cell": "gru", "hidden_size": 8}, "window": {"input_size": 24},
        "training": {"epochs": 3, "ensemble": 2}})
    return bptt.fit(series, spec=spec).model, series


def _same(a: dict, b: dict) -> None:
    """Equal up to float32 rounding (the head runs as one product per series here, batched
    in forecast)."""
    assert a["id"] == b["id"]
    np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-6, atol=1e-5)
    assert list(a["quantiles"]) == list(b["quantiles"])
    for q in a["quantiles"]:
        np.testing.assert_allclose(a["quantiles"][q], b["quantiles"][q], rtol=1e-6, atol=1e-5)


def test_the_initial_state_forecasts_what_the_model_forecasts(trained):
    model, series = trained
    states = initial_states(model, series)
    assert [s.length for s in states] == [140, 140, 140]
    assert states[0].hidden.shape == (2, 8)  # members x hidden size
    for state, expected in zip(states, bptt.forecast(model), strict=True):
        _same(forecast_state(model, state), expected)


def test_a_state_forecasts_with_head_features_as_the_model_does(trained):
    """A model whose head reads 2 features: the state's forecast, given a series' features,
    is bptt.forecast's with the same features (and missing ones are a ValueError)."""
    import dataclasses

    model, series = trained
    network = dataclasses.replace(model.network, head_inputs=2)
    members = np.stack([bptt.init_parameters(network, seed) for seed in (1, 2)])
    wide = dataclasses.replace(model, network=network, members=members,
                               head_features=["store size", "promo over the horizon"])
    features = np.random.default_rng(0).normal(size=(3, 2))
    expected = bptt.forecast(wide, head_features=features)
    for i, state in enumerate(initial_states(wide, series)):
        _same(forecast_state(wide, state, head_features=features[i]), expected[i])
    with pytest.raises(ValueError, match="head features"):
        forecast_state(wide, state)


@pytest.mark.parametrize("chunks", [
    [[21.0, 22.5, None, 19.0]],
    [[None], [18.0, 19.5], [None, None, 24.0], list(np.linspace(15, 25, 30))],
])
def test_appending_equals_forecasting_from_the_whole_history(trained, chunks):
    model, series = trained
    state = initial_states(model, {"s1": series["s1"]})[0]
    history = series["s1"]
    for chunk in chunks:
        state = append_observations(model, state, chunk)
        history = np.concatenate([history, [np.nan if v is None else v for v in chunk]])
        assert state.length == history.size
        expected = bptt.forecast(model, {"s1": history}, horizon=4, quantiles=[0.9])[0]
        _same(forecast_state(model, state, horizon=4, quantiles=[0.9]), expected)
    # the state holds a window, or the latest seasons its seasonal indices need (10 of 12
    # here), and never the whole history
    assert state.recent.size < (40 if model.seasonality.kind == "none" else 130)


def test_a_gap_at_the_window_start_interpolates_from_before_it(trained):
    model, series = trained
    state = initial_states(model, {"s2": series["s2"]})[0]
    # the window starts inside the gap
    state = append_observations(model, state, [None] * 5 + [20.0] * 20)
    assert np.isfinite(state.recent[0])
    history = np.concatenate([series["s2"], [np.nan] * 5, [20.0] * 20])
    _same(forecast_state(model, state), bptt.forecast(model, {"s2": history})[0])


def test_state_round_trips_through_bytes(trained):
    model, series = trained
    state = append_observations(model, initial_states(model, {"s0": series["s0"]})[0], [1.0, None])
    again = SeriesState.from_bytes(state.to_bytes())
    assert again.series_id == "s0" and again.length == state.length
    assert np.array_equal(again.recent, state.recent, equal_nan=True)
    _same(forecast_state(model, again), forecast_state(model, state))


def test_bad_input_is_refused(trained):
    model, series = trained
    with pytest.raises(DataError):
        initial_states(model, {"nope": series["s0"]})
    state = initial_states(model, {"s0": series["s0"]})[0]
    for values in ([], [float("inf")]):
        with pytest.raises(DataError):
            append_observations(model, state, values)
    with pytest.raises(DataError):
        forecast_state(model, state, horizon=7)
