"""Calendar features as the network's inputs: the channels training gathers, the columns a
forecast recomputes, the model card, and a series driven by the day of the week."""

import dataclasses
import json
from datetime import datetime

import numpy as np
import pytest

import bptt
from bptt import SpecError, TrainingSpec
from bptt.calendar import parse_freq
from bptt.calendar_features import calendar_features
from bptt.calendar_inputs import series_dates
from bptt.data import ExtraInputs, index_windows
from bptt.inference import calendar_columns
from bptt.serialization import from_safetensors, to_safetensors
from bptt.state import append_observations, forecast_state, initial_states
from bptt.trainer import _prepare

START = "2026-01-05"  # a Monday
WEEKDAY_EFFECT = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 6.0, -6.0])  # weekends move the series


def _weekday_series(count: int, length: int, seed: int) -> list[dict]:
    """Series whose weekends sit far from their weekdays, on a slowly wandering level."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        level = 20 + np.cumsum(rng.normal(0, 0.2, length))
        values = level + WEEKDAY_EFFECT[np.arange(length) % 7] + rng.normal(0, 0.3, length)
        out.append({"id": f"s{i}", "values": values, "start": START, "freq": "D"})
    return out


def _spec(calendar: str, **more) -> TrainingSpec:
    return TrainingSpec.from_dict({
        "horizon": 7, "season_length": 1, "seasonality": "none", "quantiles": [0.1, 0.5, 0.9],
        "calendar": calendar, "window": {"input_size": 3}, "model": {"hidden_size": 16},
        "training": {"max_steps": 600, "eval_every": 100, "ensemble": 1}, **more})


@pytest.fixture(scope="module")
def onehot_fit():
    series = _weekday_series(4, 120, seed=0)
    return series, bptt.fit(series, spec=_spec("onehot"))


def test_windows_gather_each_steps_calendar_and_the_first_targets_at_the_head():
    values = [np.arange(20.0), np.arange(15.0)]
    starts = [datetime(2026, 1, 5), datetime(2026, 3, 1)]
    freq = parse_freq("D")
    columns = [calendar_features(s, freq, len(v), encoding="onehot").astype(np.float32)
               for s, v in zip(starts, values, strict=True)]
    flat = np.concatenate(columns)
    train, val = index_windows(values, 4, 2, 0.2, ExtraInputs(flat, calendar=flat.shape[1]))
    windows = train.all()
    assert windows.x.shape == (len(train), 4, 1 + columns[0].shape[1])
    for k in range(len(train)):
        series, start = int(train.series[k]), int(train.start[k])
        np.testing.assert_array_equal(windows.x[k, :, 1:], columns[series][start:start + 4])
        np.testing.assert_array_equal(windows.head[k], columns[series][start + 4])
        np.testing.assert_array_equal(windows.x[k, :, 0],
                                      values[series][start:start + 4] - values[series][start + 3])
    batch = val.gather(np.array([0]))  # a batch carries its head columns too
    assert batch.head.shape == (1, columns[0].shape[1])


def test_a_forecast_recomputes_the_features_training_saw(onehot_fit):
    series, result = onehot_fit
    model = result.model
    problem = _prepare(series, None, _spec("onehot"))[0]  # the windows training gathered
    seen = problem.val.all()
    steps = model.spec.window.input_size
    for k in range(len(seen)):
        item = series[int(seen.series[k])]
        origin = int(problem.val.start[k]) + steps  # the history a forecast would read
        cut = [{**item, "values": item["values"][:origin]}]
        step_columns, head_columns = calendar_columns(
            model, [d.start for d in series_dates(cut)], [origin])
        np.testing.assert_array_equal(step_columns[0], seen.x[k, :, 1:])
        np.testing.assert_array_equal(head_columns[0], seen.head[k])


def test_the_model_card_stores_the_calendar_and_a_file_forecasts_the_same(onehot_fit):
    series, result = onehot_fit
    model = result.model
    card = model.card()["calendar"]
    assert card["encoding"] == "onehot" and card["freq"] == "D"
    assert card["features"][:7] == [f"day_of_week={d}" for d in range(7)]
    assert card["starts"] == [START] * 4 and card["lengths"] == [120] * 4
    assert model.calendar.encoding == "onehot" and model.network.input_size == 1 + len(
        card["features"]) and model.network.head_inputs == len(card["features"])
    again = bptt.Model.from_bytes(model.to_bytes())
    for a, b in zip(bptt.forecast(model), bptt.forecast(again, series), strict=True):
        np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-6)


def test_stateful_forecasts_follow_the_calendar_as_forecasts_do(onehot_fit):
    series, result = onehot_fit
    model = result.model
    item = series[1]
    state = initial_states(model, {"s1": item["values"]})[0]
    np.testing.assert_allclose(forecast_state(model, state)["mean"],
                               bptt.forecast(model, [item])[0]["mean"], rtol=1e-5)
    new = [21.0, 27.0, 15.0]  # three more days: the calendar moves on with them
    later = append_observations(model, state, new)
    longer = {**item, "values": np.concatenate([item["values"], new])}
    np.testing.assert_allclose(forecast_state(model, later)["mean"],
                               bptt.forecast(model, [longer])[0]["mean"], rtol=1e-5)


def test_the_calendar_forecasts_a_weekday_driven_series_better_than_none():
    """Three input steps of weekdays (Monday to Wednesday: the training series' last) cannot
    tell when the weekend comes; the calendar can."""
    series = _weekday_series(4, 157 + 7, seed=1)
    train = [{**s, "values": s["values"][:-7]} for s in series]
    errors = {}
    for calendar in ("off", "onehot", "cyclic"):
        model = bptt.fit(train, spec=_spec(calendar)).model
        forecasts = bptt.forecast(model, train)
        errors[calendar] = np.mean([np.abs(f["mean"] - s["values"][-7:]).mean()
                                    for f, s in zip(forecasts, series, strict=True)])
    assert errors["onehot"] < 0.5 * errors["off"], errors
    assert errors["cyclic"] < errors["off"], errors


def test_auto_is_off_without_dates_and_says_why():
    values = {f"s{i}": s["values"] for i, s in enumerate(_weekday_series(2, 60, seed=2))}
    model = bptt.fit(values, spec=_spec("auto", training={"max_steps": 10, "ensemble": 1})).model
    assert model.calendar is None and model.spec.calendar == "auto"  # the choice, left open
    assert model.network.input_size == 1 and model.network.head_inputs == 0
    assert model.card()["calendar"]["encoding"] == "off"
    assert "no date frequency" in model.card()["calendar"]["why"]


def test_auto_takes_the_default_encoding_with_dates():
    series = _weekday_series(2, 60, seed=3)
    model = bptt.fit(series, spec=_spec("auto", training={"max_steps": 10, "ensemble": 1})).model
    assert model.calendar.encoding == bptt.calendar_inputs.DEFAULT_ENCODING
    assert model.card()["calendar"]["encoding"] == model.calendar.encoding


@pytest.mark.parametrize(("series", "spec_freq", "lack"), [
    ({"a": np.arange(40.0)}, None, "no date frequency"),
    ([{"id": "a", "values": np.arange(40.0), "start": "2026-01-05"}], "YS", "no calendar cycle"),
    ([{"id": "a", "values": np.arange(40.0)}], "D", "no series has a date start"),
])
def test_an_encoding_without_dates_is_a_spec_error_naming_the_field(series, spec_freq, lack):
    spec = _spec("cyclic", freq=spec_freq, training={"max_steps": 10, "ensemble": 1})
    with pytest.raises(SpecError) as caught:
        bptt.fit(series, spec=spec)
    assert caught.value.errors[0]["loc"] == ["calendar"] and lack in str(caught.value)


def test_a_bad_choice_is_a_spec_error_naming_the_field():
    with pytest.raises(SpecError) as caught:
        TrainingSpec.from_dict({"horizon": 3, "calendar": "weekly"})
    assert caught.value.errors == [{"loc": ["calendar"], "msg": "must be one of "
                                    "['auto', 'cyclic', 'onehot', 'off']"}]


def test_a_file_from_before_calendars_loads_as_off():
    model = bptt.fit({"a": np.sin(np.arange(60.0))},
                     spec=_spec("off", training={"max_steps": 10, "ensemble": 1})).model
    tensors, metadata = from_safetensors(model.to_bytes())
    card = json.loads(metadata["model_card"])
    del card["calendar"], card["training_spec"]["calendar"]
    old = bptt.Model.from_bytes(to_safetensors(tensors, {**metadata,
                                                          "model_card": json.dumps(card)}))
    assert old.calendar is None and old.spec.calendar == "off"
    assert old.card()["calendar"]["encoding"] == "off"
    np.testing.assert_allclose(bptt.forecast(old)[0]["mean"], bptt.forecast(model)[0]["mean"])


def test_a_warm_start_recomputes_the_calendar_from_the_new_series(onehot_fit):
    series, result = onehot_fit
    later = [{**s, "start": "2026-02-02"} for s in series]  # four weeks on: the same weekdays
    warm = bptt.fit(later, spec=dataclasses.replace(_spec("auto"), training=dataclasses.replace(
        _spec("auto").training, max_steps=20)), warm_start=result.model).model
    assert warm.calendar.encoding == "onehot" and warm.calendar.starts == [datetime(2026, 2, 2)] * 4
    with pytest.raises(SpecError) as caught:  # another encoding cannot fill those weights
        bptt.fit(later, spec=_spec("cyclic"), warm_start=result.model)
    assert caught.value.errors[0]["loc"] == ["warm_start"]


def test_cross_validation_keeps_each_series_dates():
    series = _weekday_series(2, 90, seed=4)
    spec = _spec("onehot", training={"max_steps": 20, "ensemble": 1})
    result = bptt.cross_validate(series, spec=spec, windows=2)
    assert result.fit.model.calendar.starts == [datetime(2026, 1, 5)] * 2
    assert result.fit.model.calendar.lengths == [90 - 7 - 7] * 2  # cut at the first cutoff
    assert np.isfinite(result.mase)


def test_resolve_calendar_makes_the_choice_from_the_dates_alone():
    dated = [{"start": START, "freq": "D"}, {"start": None}]  # no values needed
    assert bptt.resolve_calendar(_spec("auto"), dated) == (
        bptt.calendar_inputs.DEFAULT_ENCODING, "")
    assert bptt.resolve_calendar(_spec("onehot"), dated) == ("onehot", "")
    assert bptt.resolve_calendar(_spec("off"), dated)[0] == "off"
    used, why = bptt.resolve_calendar(_spec("auto"), [{"start": START}])
    assert used == "off" and "no date frequency" in why
    with pytest.raises(SpecError):
        bptt.resolve_calendar(_spec("cyclic"), [{"start": START}])
