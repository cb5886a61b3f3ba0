"""Forecast combination: weights from validation windows only, saved with the model, applied by
every forecast path (bptt.forecast, stateful forecasts), quantiles moved with the mean."""

import dataclasses
import json

import numpy as np
import pytest

import bptt
from bptt import Callbacks, Checkpoint, TrainingSpec, combination
from bptt.combination import PARTNERS, Combination, combine, partner_paths, weight_grid
from bptt.data import expanding_mean, make_windows
from bptt.serialization import from_safetensors, to_safetensors
from bptt.state import append_observations, forecast_state, initial_states


def _spec(**training):
    return TrainingSpec.from_dict({
        "horizon": 4, "quantiles": [0.1, 0.5, 0.9], "model": {"hidden_size": 8},
        "window": {"input_size": 12},
        "training": {"epochs": 4, "batch_size": 16, "ensemble": 2, **training}})


def _stationary(count=3, n=120, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(count):
        x = np.zeros(n)
        for t in range(1, n):
            x[t] = 0.5 * x[t - 1] + rng.normal()
        out[f"s{i}"] = 10 + 3 * i + x
    return out


def _partners(rng, n, h):
    """Random classical partners' paths (n, h, P - 1), the naive one 0, as partner_paths'."""
    forecasts = rng.normal(size=(n, h, len(PARTNERS) - 1))
    forecasts[:, :, 0] = rng.normal(size=n)[:, None]  # the series' mean: flat
    forecasts[:, :, 1] = 0.0
    return forecasts


def test_the_grid_is_convex_and_starts_with_the_network_alone():
    for seasonal, size in ((False, 15), (True, 35)):
        grid = weight_grid(0.25, seasonal=seasonal)
        assert np.allclose(grid.sum(axis=1), 1) and (grid >= 0).all()
        assert np.array_equal(grid[0], [1, 0, 0, 0, 0]) and len(grid) == size
        assert np.all(np.diff(grid[:, 0]) <= 0)  # ties go to more weight on the network
        assert seasonal or not grid[:, 3].any()  # no seasonal naive without a season
        assert not grid[:, 1].any()  # the flat mean is no longer offered


@pytest.mark.parametrize("truth", ["network", "naive", "snaive", "reverting"])
def test_weights_go_to_the_forecast_that_is_right_on_validation(truth):
    rng = np.random.default_rng(1)
    n, h = 60, 5
    net = rng.normal(size=(n, h))
    forecasts = _partners(rng, n, h)
    y = net if truth == "network" else forecasts[:, :, PARTNERS.index(truth) - 1]
    series = np.repeat(np.arange(3), n // 3)
    expected = np.eye(len(PARTNERS))[PARTNERS.index(truth)]
    assert np.allclose(combination.fit_weights(net, y, forecasts, series), expected)
    if truth != "snaive":  # without the seasonal partner: the same answer
        assert np.allclose(combination.fit_weights(net, y, forecasts, series, seasonal=False),
                           expected)


def _bootstrap_by_definition(candidates, y, series, grid, draws):
    """bootstrap_scores as its docstring defines it, one grid weight at a time: the mean over
    series (weighted) of the weight's MAE (windows weighted) relative to the network's."""
    known = np.isfinite(y)
    starts = np.flatnonzero(np.r_[True, series[1:] != series[:-1]])
    rng = np.random.default_rng(0)  # the same draws as bootstrap_scores
    window_weights = rng.exponential(size=(len(y), draws))
    series_weights = rng.exponential(size=(len(starts), draws))
    bounds = list(zip(starts, [*starts[1:], len(y)], strict=True))

    def mae(w, d):
        return np.array([sum(window_weights[n, d] * np.abs(candidates[n] @ w - y[n])[known[n]].sum()
                             for n in range(a, b))
                         / sum(window_weights[n, d] * known[n].sum() for n in range(a, b))
                         for a, b in bounds])

    scores = np.empty((len(grid), draws))
    for d in range(draws):
        own, share = mae(grid[0], d), series_weights[:, d] / series_weights[:, d].sum()
        for g, w in enumerate(grid):
            scores[g, d] = np.sum(mae(w, d) / own * share)
    return scores


@pytest.mark.parametrize("block_values", [None, 60])
def test_bootstrap_scores_are_their_definition_in_any_block_size(monkeypatch, block_values):
    rng = np.random.default_rng(4)
    n, h, draws = 12, 3, 5
    y = rng.normal(size=(n, h))
    y[2, 1] = y[7, 0] = np.nan  # gaps: no error counted
    candidates = np.concatenate([(y + rng.normal(size=(n, h)))[:, :, None],
                                 _partners(rng, n, h)], axis=2)
    series = np.repeat([0, 1, 2], [5, 3, 4])
    grid = weight_grid(0.25, seasonal=True)
    if block_values:  # 60 values: blocks of 5 weights of the 35
        monkeypatch.setattr(combination, "BOOTSTRAP_BLOCK_VALUES", block_values)
    scores = combination.bootstrap_scores(candidates, y, series, grid, draws)
    assert np.allclose(scores, _bootstrap_by_definition(candidates, y, series, grid, draws),
                       rtol=1e-12, atol=0)


def test_scarce_evidence_spreads_the_weight_over_forecasts_that_trade_wins():
    # one series, 8 validation windows: the network and naive both forecast too high, each by
    # less than the other on half of the windows and by about as much overall. A weight's
    # score is linear between them, so the one best weight sits at a corner decided by the
    # last window's noise; the bootstrap draws reweigh the windows and split the weight.
    n, h = 8, 4
    net_error = np.tile([1.0, 3.0], n // 2)[:, None] + np.zeros((n, h))
    naive_error = np.tile([3.0, 1.05], n // 2)[:, None] + np.zeros((n, h))
    y = -naive_error  # naive forecasts 0
    net = y + net_error
    forecasts = np.full((n, h, len(PARTNERS) - 1), 100.0)  # mean, snaive, reverting: far off
    forecasts[:, :, PARTNERS.index("naive") - 1] = 0.0
    weights = combination.fit_weights(net, y, forecasts, np.zeros(n, int))
    network, naive = weights[0], weights[PARTNERS.index("naive")]
    assert 0.2 < network < 0.8 and np.isclose(network + naive, 1)
    assert np.array_equal(weights, combination.fit_weights(net, y, forecasts, np.zeros(n, int)))


def test_the_flat_mean_takes_no_weight_even_where_it_is_right():
    rng = np.random.default_rng(1)
    net = rng.normal(size=(30, 4))
    forecasts = _partners(rng, 30, 4)
    weights = combination.fit_weights(net, forecasts[:, :, 0], forecasts, np.zeros(30, int))
    assert weights[PARTNERS.index("mean")] == 0


def test_the_reverting_partner_reverts_as_fast_as_the_window_says():
    rng = np.random.default_rng(6)
    n, phi, mean = 400, 0.6, 5.0
    z = np.zeros(n)
    for t in range(1, n):
        z[t] = phi * z[t - 1] + rng.normal()
    level = mean + z[-1]
    x = (mean + z - level)[None]  # centred on the last value
    path = combination.reverting_paths(x, np.array([mean - level]), 6)[0]
    steps = np.arange(1, 7)
    assert np.allclose(path, (mean - level) * (1 - 0.6 ** steps), atol=0.1 * abs(mean - level))
    walk = np.cumsum(rng.normal(0.3, 1, size=(1, n)), axis=1)  # drifting: far from its mean
    x = walk - walk[:, -1:]
    offset = np.array([walk.mean() - walk[0, -1]])
    assert np.abs(combination.reverting_paths(x, offset, 6)).max() < 0.1 * abs(offset[0])
    forecasts, seasonal = partner_paths(x, offset, 1, 6)
    assert not seasonal and not forecasts[:, :, PARTNERS.index("snaive") - 1].any()
    assert np.allclose(forecasts[:, :, 0], offset[0])  # the flat mean, still for old files


def test_every_series_counts_the_same_whatever_its_scale():
    rng = np.random.default_rng(2)
    h = 3
    net = rng.normal(size=(30, h))
    y = 0.6 * net + 0.3 * rng.normal(size=(30, h))
    forecasts = _partners(rng, 30, h)
    series = np.repeat(np.arange(3), 10)
    weights = combination.fit_weights(net, y, forecasts, series)
    scale = np.r_[np.full(10, 1e3), np.ones(20)]  # series 0 in other units
    rescaled = combination.fit_weights(net * scale[:, None], y * scale[:, None],
                                       forecasts * scale[:, None, None], series)
    assert np.array_equal(weights, rescaled) and 0 < weights[0] < 1


def test_gaps_in_targets_are_skipped_and_no_targets_keep_the_network():
    net = np.ones((4, 2))
    y = np.zeros((4, 2))
    y[:, 1] = np.nan
    forecasts = np.ones((4, 2, len(PARTNERS) - 1))
    forecasts[:, :, 1] = 0.0  # naive
    forecasts[:, 1] = -5.0  # wrong only where the target is a gap
    forecasts[:, :, 3] = 1.0  # reverting: wrong too
    naive = np.eye(len(PARTNERS))[PARTNERS.index("naive")]
    assert np.allclose(combination.fit_weights(net, y, forecasts, np.zeros(4, int)), naive)
    assert np.allclose(combination.fit_weights(net, np.full((4, 2), np.nan), forecasts,
                                               np.zeros(4, int)), np.eye(len(PARTNERS))[0])


def test_quantiles_are_averaged_as_the_means_are():
    rng = np.random.default_rng(3)
    paths = np.sort(rng.normal(size=(5, 4, 4)), axis=2)
    weights = np.tile([0.4, 0.2, 0.1, 0.1, 0.2], (5, 1))
    forecasts = _partners(rng, 5, 4)
    out = combine(paths, weights, forecasts)
    mean = 0.4 * paths[:, :, 0] + forecasts @ weights[0, 1:]
    assert np.allclose(out[:, :, 0], mean)
    # each partner's quantile weighted as its mean is; a classical partner's quantiles are its
    # point forecast
    assert np.allclose(out[:, :, 1:], 0.4 * paths[:, :, 1:] + (mean - 0.4 * paths[:, :, 0])[
        :, :, None])
    # the rule of files written before: the quantiles move with the mean
    old = combine(paths, weights, forecasts, averaged=False)
    assert np.allclose(old[:, :, 1:] - old[:, :, :1], paths[:, :, 1:] - paths[:, :, :1])


def test_validation_windows_carry_their_level_and_the_mean_up_to_their_origin():
    values = np.arange(40.0) ** 1.5
    values[[5, 33]] = np.nan
    train, val = make_windows([values], input_size=6, horizon=3, validation_fraction=0.2)
    for part in (train, val):
        origins = np.rint(part.level ** (2 / 3)).astype(int)  # the level is the origin's value
        for origin, mean in zip(origins, part.mean, strict=True):
            assert mean == pytest.approx(np.nanmean(values[: origin + 1]))
    assert np.allclose(expanding_mean(np.array([np.nan, 1.0, np.nan, 3.0])),
                       [np.nan, 1, 1, 2], equal_nan=True)
    assert val.take(np.array([0])).mean[0] == val.mean[0]


def test_fit_fits_the_weights_on_the_validation_windows_only(monkeypatch):
    series = _stationary()
    chunks = []
    real_fit_weights = combination.fit_weights  # few windows: the bagged weights

    def spy(net, y, forecasts, index, **options):
        chunks.append((y, forecasts[:, 0, 0], index))
        return real_fit_weights(net, y, forecasts, index, **options)

    monkeypatch.setattr(combination, "fit_weights", spy)
    result = bptt.fit(series, spec=_spec())
    seen = {name: np.concatenate(parts) for name, parts in zip(("y", "offset", "index"),
                                                                zip(*chunks, strict=True),
                                                                strict=True)}
    scaled = [s.transform(v) for s, v in zip(result.model.scalers, series.values(), strict=True)]
    train, val = make_windows(scaled, 12, 4, 0.1)
    assert np.array_equal(seen["y"], val.y) and np.array_equal(seen["index"], val.series)
    assert np.allclose(seen["offset"], val.mean - val.level)
    # no validation target is a training target, and no target reaches the means
    assert len(seen["y"]) < len(train)
    model = result.model
    assert model.combination is not None
    assert np.array_equal(model.combination.weights, np.tile(model.combination.default, (3, 1)))
    assert np.allclose(model.combination.means, [np.nanmean(s) for s in scaled])


def test_the_combination_is_saved_and_loaded_and_old_files_forecast_with_the_network():
    result = bptt.fit(_stationary(), spec=_spec())
    model = dataclasses.replace(result.model, combination=Combination(
        np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]), np.array([0.6, 0.3, 0.1]),
        result.model.combination.means))
    again = bptt.Model.from_bytes(model.to_bytes())
    for name in ("weights", "default", "means"):
        assert np.array_equal(getattr(again.combination, name), getattr(model.combination, name))
    a, b = bptt.forecast(model), bptt.forecast(again)
    assert all(np.array_equal(x["mean"], y["mean"]) for x, y in zip(a, b, strict=True))
    # a file written before combinations existed: no such tensors, the network alone
    old = bptt.Model.from_bytes(dataclasses.replace(model, combination=None).to_bytes())
    assert old.combination is None
    plain = bptt.forecast(old)
    assert not np.allclose(plain[0]["mean"], a[0]["mean"])
    assert np.allclose(plain[2]["mean"], a[2]["mean"])  # weights (1, 0, 0): the network


def test_forecasts_combine_the_network_the_mean_and_the_last_value():
    series = _stationary()
    result = bptt.fit(series, spec=_spec())
    weights = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.0, 1.0, 0.0]])
    means = result.model.combination.means
    model = dataclasses.replace(result.model, combination=Combination(
        weights, np.array([0.2, 0.8, 0.0]), means),
        quantile_offsets=np.zeros_like(result.model.quantile_offsets))
    network = bptt.forecast(dataclasses.replace(model, combination=None))
    combined = bptt.forecast(model)
    for i, values in enumerate(series.values()):
        scaler = model.scalers[i]
        mean, last = scaler.inverse(means[i]), values[-1]
        expected = weights[i, 0] * network[i]["mean"] + weights[i, 1] * mean + weights[i, 2] * last
        assert np.allclose(combined[i]["mean"], expected)
        for q, side in ((0.1, np.minimum), (0.9, np.maximum)):
            # quantile averaging: the network's distance, times w_net, and the outer quantiles
            # never on the wrong side of the mean
            assert np.allclose(combined[i]["quantiles"][q] - combined[i]["mean"],
                               side(weights[i, 0] * (network[i]["quantiles"][q]
                                                     - network[i]["mean"]), 0))
    # a series the model never saw: the default weights and its own mean
    new = series["s0"] * 2 + 7
    fresh = bptt.forecast(model, {"new": new})[0]
    alone = bptt.forecast(dataclasses.replace(result.model, combination=None), {"new": new})[0]
    assert np.allclose(fresh["mean"], 0.2 * alone["mean"] + 0.8 * new.mean())
    # a training series sent with more history keeps its training mean, as it keeps its scaler
    longer = np.concatenate([series["s2"], [30.0, 31.0]])
    sent = bptt.forecast(model, {"s2": longer})[0]
    assert np.allclose(sent["mean"], model.scalers[2].inverse(means[2]))


def test_a_file_from_before_the_seasonal_partner_forecasts_as_it_did():
    result = bptt.fit(_stationary(), spec=_spec())
    model = dataclasses.replace(result.model, combination=Combination(
        np.tile([0.5, 0.3, 0.2], (3, 1)), np.array([0.5, 0.3, 0.2]),
        result.model.combination.means))
    tensors, metadata = from_safetensors(model.to_bytes())
    for name in ("combination.weights", "combination.default"):  # three partners then
        tensors[name] = tensors[name][..., :3]
    old = bptt.Model.from_bytes(to_safetensors(tensors, metadata))
    assert not old.combination.averaged
    network = bptt.forecast(dataclasses.replace(old, combination=None))
    for a, b in zip(bptt.forecast(old), network, strict=True):
        # the rule of then: the network's quantiles moved with the mean, offsets and all
        for q in (0.1, 0.5, 0.9):
            assert np.allclose(a["quantiles"][q] - a["mean"], b["quantiles"][q] - b["mean"])


def test_a_file_from_before_the_reverting_partner_forecasts_as_it_did():
    result = bptt.fit(_stationary(), spec=_spec())
    four = np.array([0.5, 0.2, 0.2, 0.1])  # network, mean, naive, snaive: no reverting then
    model = dataclasses.replace(result.model, combination=Combination(
        np.tile(four, (3, 1)), four, result.model.combination.means))
    tensors, metadata = from_safetensors(model.to_bytes())
    for name in ("combination.weights", "combination.default"):
        assert tensors[name].shape[-1] == len(PARTNERS)
        tensors[name] = tensors[name][..., :4]
    old = bptt.Model.from_bytes(to_safetensors(tensors, metadata))
    assert old.combination.averaged
    assert np.array_equal(old.combination.default, np.r_[four, 0])
    for a, b in zip(bptt.forecast(old), bptt.forecast(model), strict=True):
        np.testing.assert_array_equal(a["mean"], b["mean"])
        np.testing.assert_array_equal(a["quantiles"][0.9], b["quantiles"][0.9])


def test_the_mean_lies_inside_the_interval_whatever_the_weights():
    series = _stationary()
    result = bptt.fit(series, spec=_spec())
    for weights in ([0.0, 1, 0, 0], [0.0, 0, 1, 0], [0.2, 0.4, 0.4, 0]):
        model = dataclasses.replace(result.model, combination=Combination(
            np.tile(weights, (3, 1)), np.array(weights), result.model.combination.means))
        for f in bptt.forecast(model, series):
            assert (f["quantiles"][0.1] <= f["mean"]).all()
            assert (f["mean"] <= f["quantiles"][0.9]).all()


def test_stateful_forecasts_equal_forecasts_with_a_combination():
    series = _stationary()
    result = bptt.fit(series, spec=_spec())
    model = dataclasses.replace(result.model, combination=Combination(
        np.tile([0.3, 0.2, 0.2, 0.0, 0.3], (3, 1)), np.array([0.3, 0.2, 0.2, 0.0, 0.3]),
        result.model.combination.means))
    state = initial_states(model, {"s1": series["s1"]})[0]
    first = forecast_state(model, state)
    assert np.allclose(first["mean"], bptt.forecast(model)[1]["mean"], atol=1e-5)
    state = append_observations(model, state, [20.0, None, 14.0])
    history = np.concatenate([series["s1"], [20.0, np.nan, 14.0]])
    expected = bptt.forecast(model, {"s1": history})[0]
    got = forecast_state(model, state)
    np.testing.assert_allclose(got["mean"], expected["mean"], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(got["quantiles"][0.9], expected["quantiles"][0.9], rtol=1e-6,
                               atol=1e-5)


def test_random_walks_that_the_network_cannot_forecast_put_most_weight_on_naive():
    rng = np.random.default_rng(4)
    walks = {f"w{i}": 100 + np.cumsum(rng.normal(size=150)) for i in range(4)}
    # one epoch at a tiny rate: an untrained network, clearly worse than the last value
    result = bptt.fit(walks, spec=_spec(epochs=1, learning_rate=1e-6, ensemble=1))
    assert result.model.combination.default[2] >= 0.8


def test_stationary_series_far_from_their_mean_lean_on_it():
    rng = np.random.default_rng(5)
    # white noise around fixed means: the series' mean is the best forecast, and the reverting
    # partner (phi near 0) goes there at once
    noise = {f"n{i}": 50 + 10 * i + rng.normal(size=150) for i in range(4)}
    result = bptt.fit(noise, spec=_spec(epochs=1, learning_rate=1e-6, ensemble=1))
    assert result.model.combination.default[PARTNERS.index("reverting")] >= 0.6


def test_without_validation_windows_there_is_no_combination():
    result = bptt.fit(_stationary(), spec=_spec(validation_fraction=0.0))
    assert result.model.combination is None
    _, metadata = from_safetensors(result.model.to_bytes())
    assert "combination" not in json.loads(metadata["model_card"])
    _, metadata = from_safetensors(bptt.fit(_stationary(), spec=_spec()).model.to_bytes())
    assert json.loads(metadata["model_card"])["combination"]["partners"] == [
        "network", "mean", "naive", "snaive", "reverting"]


def test_a_resumed_fit_ends_with_the_same_combination():
    spec = _spec(epochs=4, early_stopping_patience=None)
    saved = {}
    whole = bptt.fit(_stationary(), spec=spec, callbacks=Callbacks(
        on_checkpoint=lambda c: saved.setdefault((c.member, c.epoch), c.to_bytes())))
    resumed = bptt.fit(_stationary(), spec=spec, resume=Checkpoint.from_bytes(saved[(1, 2)]))
    assert np.array_equal(whole.model.combination.weights, resumed.model.combination.weights)
    assert np.array_equal(whole.model.quantile_offsets, resumed.model.quantile_offsets)
