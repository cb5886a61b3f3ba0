"""fit and forecast as a library: many series, gaps, repeatability, resume, cancel, quantiles."""

import dataclasses
import json

import numpy as np
import pytest

import bptt
from bptt import Callbacks, Checkpoint, TrainingCancelled, TrainingSpec
from bptt.data import DataError
from bptt.errors import NonFiniteError
from bptt.serialization import from_safetensors, to_safetensors


def _series(seed=0, count=3):
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(count):
        n = 80 + 20 * i
        t = np.arange(n)
        values = 10 + 0.05 * t * (i + 1) + 3 * np.sin(2 * np.pi * t / 12 + i) + rng.normal(0, .3, n)
        out[f"s{i}"] = values
    out["s1"][[10, 11, 40]] = np.nan  # gaps: interpolated as inputs, masked as targets
    return out


def _spec(**training):
    return TrainingSpec.from_dict({
        "horizon": 6, "season_length": 12, "quantiles": [0.1, 0.5, 0.9],
        "model": {"hidden_size": 8},
        "training": {"epochs": 6, "batch_size": 16, "ensemble": 1, **training}})


def test_fit_and_forecast_many_series_with_gaps():
    series = _series()
    result = bptt.fit(series, spec=_spec())
    assert [m.epoch for m in result.history] == list(range(1, 7))
    assert all(np.isfinite(m.train_loss) and m.val_loss is not None for m in result.history)
    assert 0 <= result.coverage <= 1 and 1 <= result.best_epochs[0] <= 6
    forecasts = bptt.forecast(result.model)
    assert [f["id"] for f in forecasts] == ["s0", "s1", "s2"]
    for f in forecasts:
        assert f["mean"].shape == (6,) and set(f["quantiles"]) == {0.1, 0.5, 0.9}
        q = np.stack([f["quantiles"][k] for k in (0.1, 0.5, 0.9)])
        assert np.all(np.diff(q, axis=0) >= 0)  # never crossing
    # a forecast from sent history, for a series the model never saw, and a shorter horizon
    fresh = bptt.forecast(result.model, {"new": series["s0"] * 2 + 5}, horizon=3, quantiles=[0.9])
    assert fresh[0]["mean"].shape == (3,) and list(fresh[0]["quantiles"]) == [0.9]
    with pytest.raises(DataError):
        bptt.forecast(result.model, horizon=7)
    with pytest.raises(DataError):
        bptt.forecast(result.model, quantiles=[0.25])


def test_model_bytes_round_trip_forecast_the_same():
    result = bptt.fit(_series(), spec=_spec(epochs=2, ensemble=3))
    again = bptt.Model.from_bytes(result.model.to_bytes())
    assert again.members.shape == result.model.members.shape == (3, result.model.params.size)
    a, b = bptt.forecast(result.model), bptt.forecast(again)
    assert all(np.array_equal(x["mean"], y["mean"]) for x, y in zip(a, b, strict=True))


def test_an_ensemble_forecasts_the_median_of_its_members():
    result = bptt.fit(_series(), spec=_spec(epochs=3, ensemble=3))
    assert [m.member for m in result.history] == [0] * 3 + [1] * 3 + [2] * 3
    assert len(set(result.model.members[:, 0])) == 3  # different seeds, different weights
    alone = [bptt.forecast(dataclasses.replace(result.model, members=result.model.members[k:k + 1]))
             for k in range(3)]
    median = np.median([a[0]["mean"] for a in alone], axis=0)
    assert np.allclose(bptt.forecast(result.model)[0]["mean"], median)


def test_same_seed_same_weights_bit_for_bit():
    spec = _spec(seed=3)
    first = bptt.fit(_series(), spec=spec).model.params
    second = bptt.fit(_series(), spec=spec).model.params
    other = bptt.fit(_series(), spec=_spec(seed=4)).model.params
    assert np.array_equal(first, second) and not np.array_equal(first, other)


def _fit_saving(spec):
    """A whole fit, with its checkpoints' bytes by (member, epoch) and the metrics on_epoch
    had when each was taken."""
    saved, seen = {}, []
    whole = bptt.fit(_series(), spec=spec, callbacks=Callbacks(
        on_epoch=seen.append,
        on_checkpoint=lambda c: saved.__setitem__((c.member, c.epoch),
                                                  (c.to_bytes(), list(seen)))))
    return whole, saved


@pytest.mark.parametrize("member,epoch", [(0, 3), (1, 2)])
def test_resume_from_a_checkpoint_ends_bit_identical(member, epoch):
    spec = _spec(epochs=6, early_stopping_patience=None, ensemble=2)
    whole, saved = _fit_saving(spec)
    data, before = saved[(member, epoch)]
    resumed = bptt.fit(_series(), spec=spec, resume=Checkpoint.from_bytes(data), history=before)
    assert np.array_equal(whole.model.members, resumed.model.members)
    assert [m.train_loss for m in whole.history] == [m.train_loss for m in resumed.history]
    assert whole.best_epochs == resumed.best_epochs and whole.stopped == resumed.stopped


def test_a_resume_without_the_history_trains_the_same_and_reports_the_rest():
    spec = _spec(epochs=6, early_stopping_patience=None, ensemble=2)
    whole, saved = _fit_saving(spec)
    data, before = saved[(1, 2)]
    checkpoint = Checkpoint.from_bytes(data)
    assert checkpoint.trained_epochs() == [(m.member, m.epoch) for m in before]
    resumed = bptt.fit(_series(), spec=spec, resume=checkpoint)
    assert np.array_equal(whole.model.members, resumed.model.members)
    # the checkpoint knows how the finished member ended, not its epochs' metrics
    assert whole.best_epochs == resumed.best_epochs and whole.stopped == resumed.stopped
    assert [m.train_loss for m in resumed.history] == [
        m.train_loss for m in whole.history[len(before):]]
    with pytest.raises(ValueError, match="history has 7 epochs"):
        bptt.fit(_series(), spec=spec, resume=checkpoint, history=whole.history[:7])
    with pytest.raises(ValueError, match="with resume"):
        bptt.fit(_series(), spec=spec, history=before)


def test_a_checkpoint_does_not_grow_with_the_epochs():
    spec = _spec(epochs=40, early_stopping_patience=None, ensemble=2)
    _, saved = _fit_saving(spec)
    first = len(saved[(0, 1)][0])
    assert abs(len(saved[(0, 40)][0]) - first) < 64  # the same arrays, the same few numbers
    # the second member's carry the first one's weights (and how it ended), no more
    assert len(saved[(1, 40)][0]) < first * 1.5


def test_an_older_checkpoint_that_carried_the_history_still_resumes():
    spec = _spec(epochs=6, early_stopping_patience=None, ensemble=2)
    whole, saved = _fit_saving(spec)
    data, before = saved[(1, 2)]
    older = _with_history(data, before)
    assert len(older) > len(data)
    resumed = bptt.fit(_series(), spec=spec, resume=Checkpoint.from_bytes(older))
    assert np.array_equal(whole.model.members, resumed.model.members)
    assert whole.best_epochs == resumed.best_epochs and whole.stopped == resumed.stopped


def _with_history(data, history):
    """A checkpoint as to_bytes wrote it before checkpoints stopped carrying the epochs'
    metrics: the history in its JSON metadata, no members."""
    tensors, metadata = from_safetensors(data)
    meta = json.loads(metadata["checkpoint"])
    del meta["members"]
    meta["history"] = [dataclasses.asdict(m) for m in history]
    return to_safetensors(tensors, {"checkpoint": json.dumps(meta)})


def test_resume_from_an_early_stopped_members_last_checkpoint_trains_no_extra_epoch():
    spec = _spec(epochs=300, early_stopping_patience=2, learning_rate=0.05, ensemble=2)
    whole, saved = _fit_saving(spec)
    assert whole.stopped[0] == "early_stopping"
    last = max(epoch for member, epoch in saved if member == 0)
    data, before = saved[(0, last)]
    resumed = bptt.fit(_series(), spec=spec, resume=Checkpoint.from_bytes(data), history=before)
    assert [(m.member, m.epoch) for m in resumed.history] == [
        (m.member, m.epoch) for m in whole.history]
    assert np.array_equal(whole.model.members, resumed.model.members)


def test_cancel_stops_within_the_epoch():
    calls = {"n": 0}
    epochs = []

    def should_cancel():
        calls["n"] += 1
        return calls["n"] > 5  # a flag raised during the first epoch

    with pytest.raises(TrainingCancelled):
        bptt.fit(_series(), spec=_spec(batch_size=4), callbacks=Callbacks(
            on_epoch=epochs.append, should_cancel=should_cancel))
    assert epochs == [] and calls["n"] == 6  # checked before every batch, stopped at once


def test_early_stopping_keeps_the_best_epoch():
    checkpoints = {}
    result = bptt.fit(_series(), spec=_spec(epochs=300, early_stopping_patience=3,
                                            learning_rate=0.05),
                      callbacks=Callbacks(on_checkpoint=lambda c: checkpoints.setdefault(
                          c.epoch, c.params)))
    assert result.stopped == ["early_stopping"] and len(result.history) < 300
    best = min(result.history, key=lambda m: m.val_loss)
    assert result.best_epochs == [best.epoch]
    assert np.array_equal(result.model.params, checkpoints[best.epoch])


def test_each_members_last_epoch_says_why_it_was_the_last():
    seen = []
    result = bptt.fit(_series(), spec=_spec(epochs=300, early_stopping_patience=2,
                                            learning_rate=0.05, ensemble=2),
                      callbacks=Callbacks(on_epoch=seen.append))
    assert result.stopped == ["early_stopping", "early_stopping"]
    for member in (0, 1):
        epochs = [m for m in seen if m.member == member]
        assert [m.stopped for m in epochs] == [None] * (len(epochs) - 1) + ["early_stopping"]
    budget = bptt.fit(_series(), spec=_spec(epochs=3, early_stopping_patience=None))
    assert [m.stopped for m in budget.history] == [None, None, "completed"]
    assert budget.stopped == ["completed"]


def test_too_short_series_name_themselves():
    with pytest.raises(DataError) as info:
        bptt.fit({"long": np.arange(100.0), "short": np.arange(20.0)},
                 spec=TrainingSpec.from_dict({"horizon": 6, "window": {"input_size": 24}}))
    assert info.value.loc == ["series", 1, "values"] and "short" in str(info.value)


def test_divergence_is_a_clear_error():
    spec = TrainingSpec.from_dict({"horizon": 3, "model": {"cell": "rnn", "nonlinearity": "relu"},
                                   "training": {"optimizer": "sgd", "learning_rate": 1e6,
                                                "clip": {"max_norm": None}, "epochs": 50,
                                                "ensemble": 1}})
    with pytest.raises(NonFiniteError):
        bptt.fit({"a": np.sin(np.arange(200.0))}, spec=spec)


def test_a_short_series_gets_its_quantiles_calibrated_at_every_step():
    # 100 points, horizon 10, window 40: 5 validation windows, too few for a per-step quantile
    # alone; each step pools its neighbours' residuals, so no step keeps training's width
    rng = np.random.default_rng(3)
    values = 50 + np.cumsum(rng.normal(0, 1, 100))
    spec = TrainingSpec.from_dict({"horizon": 10, "quantiles": [0.1, 0.5, 0.9],
                                   "model": {"hidden_size": 8},
                                   "training": {"epochs": 3, "ensemble": 1}})
    result = bptt.fit({"walk": values}, spec=spec)
    offsets = result.model.quantile_offsets
    assert offsets.shape == (10, 3)
    assert np.all(np.any(offsets != 0, axis=1))


@pytest.mark.parametrize(("step", "band"), [(0, (0, 2)), (5, (4, 7)), (9, (8, 10))])
def test_calibration_band_widens_until_it_holds_enough_residuals(step, band):
    from bptt.calibration import _calibration_band
    assert _calibration_band(np.full(10, 4), step) == slice(*band)
    assert _calibration_band(np.full(10, 8), step) == slice(step, step + 1)


def test_adamw_decays_by_default_and_an_explicit_zero_stays_zero():
    series = _series()
    lengths = [len(values) for values in series.values()]
    decay = {name: bptt.resolve_spec(lengths, _spec(optimizer=name)).training.weight_decay
             for name in ("adam", "adamw", "sgd")}
    assert decay == {"adam": 0.0, "adamw": 0.01, "sgd": 0.0}  # PyTorch's defaults
    explicit = bptt.resolve_spec(lengths, _spec(optimizer="adamw", weight_decay=0.0))
    assert explicit.training.weight_decay == 0.0
    decayed = bptt.fit(series, spec=_spec(optimizer="adamw")).model.members
    undecayed = bptt.fit(series, spec=_spec(optimizer="adamw", weight_decay=0.0)).model.members
    assert not np.array_equal(decayed, undecayed)  # the default was silently 0 before


def test_a_non_finite_validation_loss_stops_training_with_a_clear_error():
    series = _series()
    # Only a validation target (the latest point) overflows the squared error; the training
    # windows and their targets are all finite, so only the validation loss diverges.
    series["s0"][-1] = 1e30  # float32 holds it; its square does not
    # No seasonal adjustment: a multiplicative one would take logs and tame the outlier.
    spec = dataclasses.replace(_spec(), scaler="robust", seasonality="none")
    with pytest.raises(NonFiniteError, match="validation loss"):
        bptt.fit(series, spec=spec)



def _steps_spec(**training):
    return _spec(epochs=None, **training)


def test_a_budget_in_updates_trains_that_many_updates_in_rounds():
    batches = []
    spec = _steps_spec(max_steps=23, eval_every=5, early_stopping_patience=None)
    result = bptt.fit(_series(), spec=spec, callbacks=Callbacks(
        should_cancel=lambda: batches.append(1) and False))  # asked once before every update
    assert len(batches) == 23
    assert result.model.spec.training.epochs == 5  # rounds of 5, 5, 5, 5 and 3 updates
    assert [m.steps for m in result.history] == [5, 10, 15, 20, 23]
    assert result.stopped == ["completed"]


@pytest.mark.parametrize("member,epoch", [(0, 2), (1, 4)])
def test_resume_in_updates_ends_bit_identical(member, epoch):
    spec = _steps_spec(max_steps=23, eval_every=5, early_stopping_patience=None, ensemble=2)
    whole, saved = _fit_saving(spec)
    data, before = saved[(member, epoch)]
    resumed = bptt.fit(_series(), spec=spec, resume=Checkpoint.from_bytes(data), history=before)
    assert np.array_equal(whole.model.members, resumed.model.members)
    assert [(m.train_loss, m.steps) for m in whole.history] == [
        (m.train_loss, m.steps) for m in resumed.history]
    assert whole.best_epochs == resumed.best_epochs and whole.stopped == resumed.stopped


def test_batches_are_balanced_across_series_not_windows():
    from bptt.data import index_windows
    from bptt.trainer import _BalancedSampler

    lengths = [2000] + [40] * 9  # one series holds most of the training windows
    train, _ = index_windows([np.zeros(n) for n in lengths], 8, 2, 0.1)
    long_share = np.mean(train.series == 0)
    assert long_share > 0.85
    sampler = _BalancedSampler(train)
    rng = np.random.default_rng(0)
    rows = np.concatenate(sampler.round_rows(rng, 100, 32))
    per_series = np.bincount(train.series[rows], minlength=10)
    assert per_series.min() >= 320 and per_series.max() <= 321  # 3,200 draws over 10 series
    # within a series, uniformly over its training windows
    starts = train.start[rows[train.series[rows] == 0]]
    assert starts.min() < 200 and starts.max() > 1700


def test_a_round_draws_its_series_as_successive_permutations():
    """The sampler's one-call draw is the generator's stream of successive permutations, so a
    seed trains the same members as it did when they were drawn one by one."""
    from bptt.data import index_windows
    from bptt.trainer import _BalancedSampler

    for series in (1, 2, 5, 40):
        train, _ = index_windows([np.zeros(30)] * series, 8, 2, 0.1)
        sampler = _BalancedSampler(train)
        drawn, replayed = np.random.default_rng(7), np.random.default_rng(7)
        rows = np.concatenate(sampler.round_rows(drawn, 3, 16))
        laps = -(-48 // series)
        picks = np.concatenate([replayed.permutation(series) for _ in range(laps)])[:48]
        within = replayed.integers(0, sampler.count[picks])
        assert np.array_equal(rows, sampler.first[picks] + within)


def test_the_validation_set_evaluated_each_round_is_capped_latest_first_over_every_series():
    from bptt.data import index_windows
    from bptt.trainer import capped_validation

    _, val = index_windows([np.zeros(n) for n in [300] * 6 + [60] * 4], 8, 2, 0.2)
    picked = capped_validation(val, cap=23)
    again = capped_validation(val, cap=23)  # deterministic
    assert len(picked) == 23 and np.array_equal(again.start, picked.start)
    assert np.array_equal(again.series, picked.series)
    latest = {s: val.start[val.series == s].max() for s in range(10)}
    for s in range(10):  # every series' two latest windows, then part of the third round
        starts = sorted(picked.start[picked.series == s], reverse=True)
        assert starts[:2] == [latest[s], latest[s] - 1] and len(starts) <= 3
    assert capped_validation(val, cap=len(val)) is val
