"""Forecast scores against hand-computed values, and rolling-origin cross-validation."""

import dataclasses
import json
import math

import numpy as np
import pytest

import bptt
from bptt import (
    TrainingSpec,
    check_cross_validation,
    check_cross_validation_lengths,
    cross_validate,
)
from bptt.data import DataError
from bptt.scores import coverage, mase, pinball, smape
from bptt.spec import SpecError
from bptt.trainer import Callbacks, TrainingCancelled

# ---------------------------------------------------------------- scores

HISTORY = [0.0, 10.0, 2.0, 14.0, 4.0, 18.0]  # lag-2 differences 2, 4, 2, 4; lag-1 10, 8, 12, 10, 14


def test_mase_scales_by_the_in_sample_seasonal_naive_error():
    # |6 - 6| and |22 - 19|: MAE 1.5
    assert mase([6, 22], [6, 19], HISTORY, 2) == pytest.approx(1.5 / 3)
    assert mase([6, 22], [6, 19], HISTORY, 1) == pytest.approx(1.5 / 10.8)
    assert mase([6, 22], [6, 19], HISTORY, 0) == pytest.approx(1.5 / 10.8)  # no season: lag 1
    assert mase([6, 22], [6, 19], HISTORY, 5) == pytest.approx(1.5 / 18)  # one lag-5 difference


def test_mase_falls_back_to_lag_one_on_a_history_shorter_than_a_season_and_one():
    assert mase([6, 22], [6, 19], HISTORY, 6) == pytest.approx(1.5 / 10.8)
    assert mase([6, 22], [6, 19], HISTORY[:5], 5) == pytest.approx(1.5 / 10)
    assert mase([6, 22], [6, 19], HISTORY, 12) == pytest.approx(1.5 / 10.8)


def test_mase_skips_gaps_in_history_and_actuals():
    gappy = [0.0, 10.0, math.nan, 14.0, 4.0, 18.0]  # lag 2: only |14 - 10| and |18 - 14| remain
    assert mase([math.nan, 22], [100, 19], gappy, 2) == pytest.approx(3 / 4)
    assert mase([None, 22], [100, 19], [0, 10, None, 14, 4, 18], 2) == pytest.approx(3 / 4)
    assert math.isnan(mase([math.nan, math.nan], [1, 2], HISTORY, 2))  # nothing to score
    assert math.isnan(mase([1, 2], [1, 2], [5.0] * 10, 1))  # zero scale
    assert math.isnan(mase([1, 2], [1, math.nan], HISTORY, 2))  # a missing forecast is no gap


def test_smape_is_the_m4_definition_in_percent():
    # terms: 0/0 -> 0, |1 - 3| / (1 + 3) = 0.5, 0 -> 200 * 0.5 / 3
    assert smape([0, 1, 2], [0, 3, 2]) == pytest.approx(100 / 3)
    assert smape([0, 0], [0, 0]) == 0.0
    assert smape([1, 0], [-1, 5]) == pytest.approx(200.0)  # the maximum
    assert smape([0, math.nan, 1, 2], [0, 5, 3, 2]) == pytest.approx(100 / 3)  # the gap is skipped
    assert smape([0, None, 1, 2], [0, 5, 3, 2]) == pytest.approx(100 / 3)
    assert math.isnan(smape([math.nan], [1.0]))
    assert math.isnan(smape([1.0, 2.0], [1.0, math.nan]))


def test_pinball_averages_over_quantiles_and_steps():
    actual = [10.0, 20.0, math.nan]
    paths = {0.1: [8.0, 25.0, 0.0], 0.9: [12.0, 15.0, 0.0]}
    # q=0.1: y - f = 2 -> 0.2; -5 -> 4.5.  q=0.9: -2 -> 0.2; 5 -> 4.5
    assert pinball(actual, paths) == pytest.approx((0.2 + 4.5 + 0.2 + 4.5) / 4)
    assert pinball([1.0, 4.0], {0.5: [2.0, 2.0]}) == pytest.approx(0.5 * 1.5)  # half the MAE
    assert math.isnan(pinball([1.0], {}))
    with pytest.raises(ValueError):
        pinball([1.0], {1.0: [1.0]})


def test_coverage_counts_both_ends_and_skips_gaps():
    assert coverage([1, 5, 10, math.nan], [0, 6, 0, 0], [2, 8, 10, 0]) == pytest.approx(2 / 3)
    assert coverage([1.0], [1.0], [1.0]) == 1.0
    assert math.isnan(coverage([math.nan], [0.0], [1.0]))


# ---------------------------------------------------------------- cross-validation

H = 6
LENGTHS = {"a": 120, "b": 114, "c": 126}  # different lengths: different cutoffs per series


def seasonal(length: int, phase: int, noise: float, seed: int) -> np.ndarray:
    t = np.arange(length)
    rng = np.random.default_rng(seed)
    return 10 + 3 * np.sin(2 * np.pi * (t + phase) / 12) + rng.normal(0, noise, length)


def make_series(noise: float = 0.3) -> dict[str, np.ndarray]:
    return {name: seasonal(n, 2 * k, noise, k) for k, (name, n) in enumerate(LENGTHS.items())}


def small_spec(epochs: int = 15, learning_rate: float = 1e-2, **extra) -> TrainingSpec:
    # no seasonal transform unless asked: these tests are about the network and the backtest
    return TrainingSpec.from_dict({
        "horizon": H, "season_length": 12, "quantiles": [0.1, 0.9], "seasonality": "none",
        "model": {"cell": "gru", "hidden_size": 8}, "window": {"input_size": 24},
        "training": {"epochs": epochs, "ensemble": 1, "learning_rate": learning_rate},
        **extra})


@pytest.fixture(scope="module")
def series():
    return make_series()


@pytest.fixture(scope="module")
def trained(series):
    return cross_validate(series, spec=small_spec(), windows=3)


def test_windows_cutoffs_and_rows(series, trained):
    cv = trained
    assert (cv.horizon, cv.step, cv.season_length, cv.quantiles) == (H, H, 12, (0.1, 0.9))
    assert [w.window for w in cv.windows] == [0, 1, 2]
    assert [w.offset for w in cv.windows] == [12, 6, 0]
    for w in cv.windows:
        assert [r.id for r in w.series] == list(LENGTHS)
        assert [r.cutoff for r in w.series] == [n - H - w.offset for n in LENGTHS.values()]
        for r in w.series:
            assert math.isfinite(r.mase) and r.mase > 0
            assert 0 < r.smape < 200 and r.pinball > 0 and 0 <= r.coverage <= 1
        for score in ("mase", "smape", "pinball", "coverage"):
            assert getattr(w, score) == pytest.approx(np.mean([getattr(r, score)
                                                               for r in w.series]))
    rows = [r for w in cv.windows for r in w.series]
    assert cv.mase == pytest.approx(np.mean([r.mase for r in rows]))


def test_one_fit_on_the_series_cut_at_the_first_cutoff(series, trained):
    model = trained.fit.model
    assert model.series_ids == list(LENGTHS)
    for scaler, values in zip(model.scalers, series.values(), strict=True):
        first = len(values) - H - 12
        assert scaler.center == pytest.approx(values[:first].mean())  # standard scaler
        assert scaler.scale == pytest.approx(values[:first].std())


def test_each_window_forecasts_from_its_cutoff_and_scores_the_next_horizon(series, trained):
    model = trained.fit.model
    for w in trained.windows:
        history = {r.id: series[r.id][: r.cutoff] for r in w.series}
        forecasts = {f["id"]: f for f in bptt.forecast(model, history)}
        for r in w.series:
            actual = series[r.id][r.cutoff : r.cutoff + H]
            f = forecasts[r.id]
            assert r.mase == pytest.approx(mase(actual, f["mean"], history[r.id], 12))
            assert r.smape == pytest.approx(smape(actual, f["mean"]))
            assert r.pinball == pytest.approx(pinball(actual, f["quantiles"]))
            assert r.coverage == pytest.approx(coverage(actual, f["quantiles"][0.1],
                                                        f["quantiles"][0.9]))


def test_training_beats_an_untrained_model(series, trained):
    untrained = cross_validate(series, spec=small_spec(epochs=1, learning_rate=1e-7))
    # the combination's seasonal naive partner rescues an untrained network on these seasonal
    # series, so the networks are compared alone, on the same windows
    alone = {"trained": [], "untrained": []}
    for name, cv in (("trained", trained), ("untrained", untrained)):
        network = dataclasses.replace(cv.fit.model, combination=None)
        for w in cv.windows:
            history = {r.id: series[r.id][: r.cutoff] for r in w.series}
            forecasts = bptt.forecast(network, history)
            alone[name].append(np.mean([
                mase(series[r.id][r.cutoff : r.cutoff + H], f["mean"], history[r.id], 12)
                for r, f in zip(w.series, forecasts, strict=True)]))
    assert np.mean(alone["trained"]) < 0.5 * np.mean(alone["untrained"])
    assert all(a < b for a, b in zip(alone["trained"], alone["untrained"], strict=True))


def test_windows_and_step_come_from_the_spec_unless_given(series):
    spec = small_spec(epochs=1, cross_validation={"windows": 2, "step": 3})
    cv = cross_validate(series, spec=spec)
    assert len(cv.windows) == 2 and cv.step == 3
    assert [w.offset for w in cv.windows] == [3, 0]
    assert [r.cutoff for r in cv.windows[0].series] == [n - H - 3 for n in LENGTHS.values()]
    cv = cross_validate(series, spec=spec, windows=4)  # the argument wins, the step stays
    assert [w.offset for w in cv.windows] == [9, 6, 3, 0]
    cv = cross_validate(series, spec=small_spec(epochs=1, cross_validation={"windows": 2}))
    assert cv.step == H and [w.offset for w in cv.windows] == [H, 0]  # step None: the horizon
    cv = cross_validate(series, spec=small_spec(epochs=1))  # no config: 3 windows
    assert [w.offset for w in cv.windows] == [2 * H, H, 0]
    cv = cross_validate(series, spec=small_spec(epochs=1), windows=1, step=1)
    assert [w.offset for w in cv.windows] == [0]


@pytest.mark.parametrize("kwargs,loc", [
    ({"windows": 0}, ["cross_validation", "windows"]),
    ({"windows": 21}, ["cross_validation", "windows"]),
    ({"windows": 2.5}, ["cross_validation", "windows"]),
    ({"step": 0}, ["cross_validation", "step"]),
])
def test_bad_windows_or_step_arguments_name_the_field(series, kwargs, loc):
    with pytest.raises(SpecError) as info:
        cross_validate(series, spec=small_spec(epochs=1), **kwargs)
    assert [e["loc"] for e in info.value.errors] == [loc]


def test_too_short_series_name_the_field_and_the_points_needed():
    # input 24 + horizon 6 + 6 more windows so that validation (10 %) is held out: 36 points
    # before the first cutoff, then 6 + 2 * 6 after it
    spec = small_spec(epochs=1, window={"input_size": 24})
    long = seasonal(80, 0, 0.3, 0)
    with pytest.raises(DataError) as info:
        cross_validate({"long": long, "short": long[:53]}, spec=spec)
    assert info.value.loc == ["cross_validation", "windows"]
    assert "'short' has 53 points" in info.value.msg and "at least 54" in info.value.msg
    cv = cross_validate({"long": long, "short": long[:54]}, spec=spec)  # exactly enough
    assert cv.fit.history[0].val_loss is not None  # and the fit did hold out validation
    with pytest.raises(DataError) as info:  # the default input window shrinks, but not below 1
        cross_validate({"a": long}, horizon=H, windows=20)
    assert info.value.loc == ["cross_validation", "windows"]


def test_the_lengths_alone_give_the_same_verdict_as_the_series():
    spec = small_spec(epochs=1, window={"input_size": 24})
    long = seasonal(80, 0, 0.3, 0)
    for short in (53, 54):
        series = {"long": long, "short": long[:short]}
        try:
            check_cross_validation(series, spec)
            verdict = None
        except DataError as exc:
            verdict = (exc.loc, exc.msg)
        try:
            check_cross_validation_lengths([("long", 80), ("short", short)], spec)
            from_lengths = None
        except DataError as exc:
            from_lengths = (exc.loc, exc.msg)
        assert from_lengths == verdict
        assert (verdict is None) == (short == 54)


def test_gaps_in_actuals_are_skipped(series):
    gappy = {name: values.copy() for name, values in series.items()}
    gappy["a"][-H:] = np.nan  # the last window of "a" has nothing to score
    gappy["b"][-2] = np.nan
    cv = cross_validate(gappy, spec=small_spec(epochs=1))
    last = cv.windows[-1]
    row_a, row_b, row_c = last.series
    assert (row_a.mase, row_a.smape, row_a.pinball, row_a.coverage) == (None, None, None, None)
    assert all(math.isfinite(getattr(row_b, s)) for s in ("mase", "smape", "pinball", "coverage"))
    assert last.mase == pytest.approx((row_b.mase + row_c.mase) / 2)  # over the scored series
    history = gappy["b"][: row_b.cutoff]
    fc = bptt.forecast(cv.fit.model, {"b": history})[0]
    actual = gappy["b"][row_b.cutoff :]
    assert row_b.mase == pytest.approx(mase(actual, fc["mean"], history, 12))
    assert row_b.mase != pytest.approx(mase(np.nan_to_num(actual), fc["mean"], history, 12))


def test_to_dict_is_plain_json_and_missing_scores_are_null(series):
    spec = TrainingSpec.from_dict({"horizon": H, "freq": "MS",  # season 12 from the frequency
                                   "quantiles": [],  # the mean only: no pinball, no coverage
                                   "model": {"cell": "gru", "hidden_size": 8},
                                   "training": {"epochs": 1, "ensemble": 1}})
    cv = cross_validate(series, spec=spec, windows=2)
    assert cv.season_length == 12 and cv.quantiles == ()
    data = cv.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["season_length"] == 12 and data["quantiles"] == [] and "fit" not in data
    assert len(data["windows"]) == 2 and data["pinball"] is None and data["coverage"] is None
    row = data["windows"][0]["series"][0]
    assert row["pinball"] is None and row["coverage"] is None
    assert type(row["mase"]) is float and type(row["cutoff"]) is int
    trained = cross_validate(series, horizon=H, spec=small_spec(epochs=1)).to_dict()
    assert json.loads(json.dumps(trained, allow_nan=False)) == trained
    assert trained["quantiles"] == [0.1, 0.9] and type(trained["coverage"]) is float


def test_season_length_is_one_without_season_or_freq(series):
    spec = TrainingSpec.from_dict({"horizon": H, "model": {"cell": "gru", "hidden_size": 8},
                                   "training": {"epochs": 1, "ensemble": 1}})
    cv = cross_validate(series, spec=spec, windows=1)
    row = cv.windows[0].series[0]
    fc = bptt.forecast(cv.fit.model, {"a": series["a"][: row.cutoff]})[0]
    actual = series["a"][row.cutoff :]
    assert cv.season_length == 1
    assert row.mase == pytest.approx(mase(actual, fc["mean"], series["a"][: row.cutoff], 1))


def test_cancellation_stops_the_fit(series):
    with pytest.raises(TrainingCancelled):
        cross_validate(series, spec=small_spec(), callbacks=Callbacks(should_cancel=lambda: True))


def test_a_backtest_trains_its_fit_in_updates(series):
    base = small_spec(epochs=1).to_dict()
    base["training"].update(epochs=None, max_steps=7, eval_every=3)
    steps = []
    cv = cross_validate(series, spec=TrainingSpec.from_dict(base), windows=2,
                        callbacks=Callbacks(should_cancel=lambda: steps.append(1) and False))
    assert len(steps) == 7 + 2  # asked before each of the 7 updates, and before each window
    assert len(cv.windows) == 2 and cv.mase is not None
