"""Covariates as the network's inputs: what training gathers (each step's dynamic columns; the
static row and the future values of every forecast step at the head), what a forecast builds
from the covariates it is given, the model file, and a series driven by a promotion."""

import dataclasses

import numpy as np
import pytest

import bptt
from bptt import TrainingSpec
from bptt.data import DataError, ExtraInputs, index_windows
from bptt.inference import covariate_inputs, extra_features
from bptt.state import SeriesState, append_observations, forecast_state, initial_states
from bptt.trainer import _prepare

HORIZON, WINDOW, LENGTH = 6, 8, 240
LIFT = 5.0  # what a promotion day adds, in the series' units


def _promoted(count: int, seed: int, length: int = LENGTH):
    """Series on a slowly wandering level that jump by LIFT on their own promotion days, each
    with its promotion calendar: (the first `length` values, the HORIZON after them, the
    calendar over both)."""
    rng = np.random.default_rng(seed)
    series, held_out, promo = {}, {}, {}
    for i in range(count):
        days = (rng.random(length + HORIZON) < 0.25).astype(float)
        level = 20 + np.cumsum(rng.normal(0, 0.1, length + HORIZON))
        values = level + LIFT * days + rng.normal(0, 0.3, length + HORIZON)
        series[f"s{i}"], held_out[f"s{i}"] = values[:length], values[length:]
        promo[f"s{i}"] = days
    return series, held_out, promo


def _declared(promo: dict, end: int | None = None, **static) -> dict:
    out = {"promo": {"kind": "future", "values": {k: v[:end] for k, v in promo.items()}}}
    if static:
        out["store"] = {"kind": "static", "values": static}
    return out


def _future(promo: dict, length: int = LENGTH) -> dict:
    return {"promo": {k: v[length:length + HORIZON] for k, v in promo.items()}}


def _spec() -> TrainingSpec:
    return TrainingSpec.from_dict({
        "horizon": HORIZON, "season_length": 1, "seasonality": "none", "quantiles": [0.5],
        "calendar": "off", "window": {"input_size": WINDOW}, "model": {"hidden_size": 16},
        "training": {"max_steps": 800, "eval_every": 100, "ensemble": 1}})


@pytest.fixture(scope="module")
def promoted_fit():
    series, held_out, promo = _promoted(6, seed=0)
    stores = {k: ("north" if i % 2 else "south") for i, k in enumerate(series)}
    covariates = _declared(promo, LENGTH, **stores)
    return (series, promo, stores, held_out,
            bptt.fit(series, spec=_spec(), covariates=covariates))


def test_the_head_reads_the_static_row_and_every_forecast_steps_future_values():
    columns = np.arange(30, dtype=np.float32).reshape(15, 2)  # calendar column, then promo
    static = np.array([[7.0]], np.float32)
    extra = ExtraInputs(columns, calendar=1, future=(1,), static=static)
    train, _ = index_windows([np.arange(15.0)], 4, 3, 0.2, extra)
    windows = train.all()
    for k in range(len(train)):
        start = int(train.start[k])
        np.testing.assert_array_equal(windows.x[k, :, 1:], columns[start:start + 4])
        origin = start + 4  # the future covariate: its change since the last input step
        np.testing.assert_array_equal(
            windows.head[k], [columns[origin, 0], 7.0,
                              *columns[origin:origin + 3, 1] - columns[origin - 1, 1]])


def test_a_forecast_builds_the_inputs_training_gathered_for_the_same_window(promoted_fit):
    # The window whose forecast steps are the training series' last HORIZON: training gathered
    # it as a validation window; a forecast of the series cut before those steps, given their
    # promotion days, must build the very same step columns and head features.
    series, promo, stores, _, result = promoted_fit
    model, cut = result.model, LENGTH - HORIZON
    problem = _prepare(series, None, model.spec, None, _declared(promo, LENGTH, **stores))[0]
    last = np.flatnonzero(np.diff(np.append(problem.val.series, -1)))  # each series' last
    gathered = problem.val.gather(last)
    ids = list(series)
    lengths = {k: cut for k in ids}
    encoded = covariate_inputs(model, _declared(promo, cut, **stores), lengths)
    future = {"promo": {k: v[cut:LENGTH] for k, v in promo.items()}}
    steps, head = extra_features(model, ids, None, None, encoded, future)
    np.testing.assert_allclose(steps, gathered.x[:, :, 1:], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(head, gathered.head, rtol=1e-6, atol=1e-6)
    # a promotion that starts after the origin reads +1 (scaled), one that goes on reads 0
    column = model.covariates.dynamic.index("promo")
    scale = np.array([model.covariates.scalers[k][column, 1] for k in ids])
    days = np.stack([promo[k][cut:LENGTH] for k in ids])
    change = days - np.stack([promo[k][cut - 1] for k in ids])[:, None]
    np.testing.assert_allclose(head[:, -HORIZON:] * scale[:, None], change, atol=1e-5)
    assert (change != days).any()  # some series was on promotion at the origin


def test_a_promotion_calendar_makes_the_forecast_better(promoted_fit):
    series, promo, _, held_out, with_promo = promoted_fit
    without = bptt.fit(series, spec=_spec())
    wanted = np.stack([held_out[k] for k in series])

    def error(forecasts):
        return np.mean(np.abs(np.stack([f["mean"] for f in forecasts]) - wanted))

    informed = error(bptt.forecast(with_promo.model, future_covariates=_future(promo)))
    blind = error(bptt.forecast(without.model))
    assert informed < 0.5 * blind, (informed, blind)
    assert informed < LIFT / 2  # it tells promotion days from the others


def test_given_histories_forecast_as_the_stored_windows_do(promoted_fit):
    series, promo, stores, _, result = promoted_fit
    stored = bptt.forecast(result.model, future_covariates=_future(promo))
    given = bptt.forecast(result.model, series, covariates=_declared(promo, LENGTH, **stores),
                          future_covariates=_future(promo))
    for a, b in zip(stored, given, strict=True):
        np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-5)


def test_a_store_the_model_never_saw_is_forecast_as_unknown(promoted_fit):
    series, promo, stores, _, result = promoted_fit
    new = {"new": series["s0"]}
    covariates = {"promo": {"kind": "future", "values": {"new": promo["s0"][:LENGTH]}},
                  "store": {"kind": "static", "values": {"new": "east"}}}
    [forecast] = bptt.forecast(result.model, new, covariates=covariates,
                               future_covariates={"promo": {"new": promo["s0"][LENGTH:]}})
    assert np.isfinite(forecast["mean"]).all()


def test_the_model_file_keeps_the_covariates(promoted_fit):
    _, promo, _, _, result = promoted_fit
    again = bptt.Model.from_bytes(result.model.to_bytes())
    before = bptt.forecast(result.model, future_covariates=_future(promo))
    after = bptt.forecast(again, future_covariates=_future(promo))
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a["mean"], b["mean"])
    card = again.card()
    assert card["covariates"]["covariates"] == [{"name": "promo", "kind": "future"},
                                               {"name": "store", "kind": "static"}]
    assert card["input_features"][1] == "covariate promo, scaled per series"
    assert len(card["head_features"]) == again.network.head_inputs == 3 + HORIZON
    assert card["head_features"][3] == ("covariate promo at forecast step 1, scaled per series, "
                                        "minus its value at the window's last step")


def test_a_file_whose_head_read_the_future_covariates_otherwise_is_refused(promoted_fit):
    # a file of an earlier bptt, whose head read the future covariates in levels: its weights
    # would be applied to changes
    model = promoted_fit[-1].model
    older = [name.replace(", minus its value at the window's last step", "")
             for name in model.head_features]
    with pytest.raises(ValueError, match="refit"):
        dataclasses.replace(model, head_features=older)


def test_missing_future_values_and_strangers_are_refused_naming_them(promoted_fit):
    series, promo, _, _, result = promoted_fit
    with pytest.raises(DataError) as caught:
        bptt.forecast(result.model)
    assert caught.value.loc == ["future_covariates", "promo"]
    short = {"promo": {k: v[LENGTH:LENGTH + 2] for k, v in promo.items()}}
    with pytest.raises(DataError) as caught:
        bptt.forecast(result.model, future_covariates=short)
    assert caught.value.loc == ["future_covariates", "promo", "s0"]
    with pytest.raises(DataError) as caught:
        bptt.forecast(result.model, series, future_covariates=_future(promo))
    assert caught.value.loc[:2] == ["covariates", "promo"]
    with pytest.raises(DataError) as caught:
        initial_states(result.model, series)
    assert caught.value.loc == ["covariates", "promo"]


def test_a_model_without_covariates_refuses_them():
    series, _, promo = _promoted(2, seed=1, length=60)
    spec = TrainingSpec.from_dict({**_spec().to_dict(),
                                   "training": {"max_steps": 20, "ensemble": 1}})
    model = bptt.fit(series, spec=spec).model
    with pytest.raises(DataError) as caught:
        bptt.forecast(model, future_covariates=_future(promo, 60))
    assert caught.value.loc == ["covariates"]


def test_fit_checks_the_covariates_against_the_series():
    series, _, promo = _promoted(2, seed=1, length=60)
    with pytest.raises(DataError) as caught:
        _prepare(series, None, _spec(), None, _declared(promo))  # 66 values for 60 steps
    assert caught.value.loc == ["covariates", "promo", "values", "s0"]


def test_cross_validation_cuts_the_covariates_at_every_origin():
    series, held_out, promo = _promoted(4, seed=2)
    full = {k: np.concatenate([v, held_out[k]]) for k, v in series.items()}
    declared = _declared(promo)  # as long as the whole series
    spec = _spec()
    informed = bptt.cross_validate(full, spec=spec, windows=2, covariates=declared)
    blind = bptt.cross_validate(full, spec=spec, windows=2)
    assert informed.mase < 0.6 * blind.mase, (informed.mase, blind.mase)
    # the fit saw the covariates up to the first cutoff only: a promotion calendar that
    # differs after it changes no weight
    later = {k: np.concatenate([v[:LENGTH - HORIZON], 1 - v[LENGTH - HORIZON:]])
             for k, v in promo.items()}
    changed = bptt.cross_validate(full, spec=spec, windows=2, covariates=_declared(later))
    np.testing.assert_array_equal(changed.fit.model.members, informed.fit.model.members)


def test_a_warm_start_continues_with_the_models_covariates_and_categories(promoted_fit):
    series, promo, stores, _, result = promoted_fit
    # declared in the other order, one series in a store the model never met: the continued
    # model reads them in its own order and keeps its categories (the new store is unknown)
    moved = {**stores, "s0": "east"}
    covariates = dict(reversed(_declared(promo, LENGTH, **moved).items()))
    again = bptt.fit(series, spec=_spec(), covariates=covariates, warm_start=result.model)
    assert again.model.network == result.model.network
    assert again.model.covariates.names == result.model.covariates.names == ("promo", "store")
    assert again.model.covariates.categories == result.model.covariates.categories
    assert again.model.covariates.categories["store"] == ("north", "south", "<unknown>")
    historical = {"promo": {**_declared(promo, LENGTH)["promo"], "kind": "historical"}}
    with pytest.raises(DataError) as caught:
        bptt.fit(series, spec=_spec(), covariates=historical, warm_start=result.model)
    assert caught.value.loc == ["covariates"]


def test_stateful_forecasts_with_covariates_equal_forecasts_of_the_whole_history(promoted_fit):
    series, promo, stores, held_out, result = promoted_fit
    model = result.model
    history = _declared(promo, LENGTH)
    states = initial_states(model, series, history)
    whole = bptt.forecast(model, future_covariates=_future(promo))
    for state, expected in zip(states, whole, strict=True):
        state = SeriesState.from_bytes(state.to_bytes())
        got = forecast_state(model, state, future_covariates={
            "promo": promo[state.series_id][LENGTH:LENGTH + HORIZON]})
        np.testing.assert_allclose(got["mean"], expected["mean"], rtol=1e-5)
    # two steps later: the appended values with their promotion days
    sid, more = "s1", 2
    later = append_observations(model, states[1], held_out[sid][:more],
                                {"promo": promo[sid][LENGTH:LENGTH + more]})
    after = LENGTH + more
    future = promo[sid][after:after + HORIZON]
    future = np.concatenate([future, np.zeros(HORIZON - len(future))])
    got = forecast_state(model, later, future_covariates={"promo": future})
    extended = {sid: np.concatenate([series[sid], held_out[sid][:more]])}
    covariates = {"promo": {"kind": "future", "values": {sid: promo[sid][:after]}},
                  "store": {"kind": "static", "values": {sid: stores[sid]}}}
    [expected] = bptt.forecast(model, extended, covariates=covariates,
                               future_covariates={"promo": {sid: future}})
    np.testing.assert_allclose(got["mean"], expected["mean"], rtol=1e-5)
    with pytest.raises(DataError) as caught:
        append_observations(model, later, [1.0], {"store": ["x"]})
    assert caught.value.loc == ["covariates", "store"]
    with pytest.raises(DataError) as caught:
        append_observations(model, later, [1.0, 2.0], {"promo": [1.0]})
    assert caught.value.loc == ["covariates", "promo", "values", sid]
