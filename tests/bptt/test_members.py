"""Ensemble members side by side (bptt.members): the same weights, metrics, checkpoints and
errors as on one thread, whatever the thread count."""

import dataclasses

import numpy as np
import pytest

import bptt
from bptt import Callbacks, Checkpoint, TrainingCancelled
from bptt.errors import NonFiniteError

from .test_fit import _series, _spec


def _with_threads(spec, threads):
    return dataclasses.replace(spec, training=dataclasses.replace(spec.training,
                                                                  threads=threads))


def _record(threads, spec, **options):
    """A fit on `threads` threads with what its callbacks saw, in order."""
    seen = []
    result = bptt.fit(_series(), spec=_with_threads(spec, threads), callbacks=Callbacks(
        on_epoch=lambda m: seen.append(("epoch", m.member, m.epoch, m.train_loss, m.val_loss)),
        on_checkpoint=lambda c: seen.append(("checkpoint", c.member, c.epoch, c.to_bytes()))),
        **options)
    return result, seen


def _without_seconds(checkpoint_bytes):
    """A checkpoint's content, less the wall-clock seconds in its history."""
    checkpoint = Checkpoint.from_bytes(checkpoint_bytes)
    for metrics in getattr(checkpoint, "history", []):  # per-evaluation seconds, if kept
        metrics.seconds = 0.0
    return checkpoint.to_bytes()


@pytest.mark.parametrize("threads", [2, 3])
def test_members_side_by_side_match_one_thread_bit_for_bit(threads):
    spec = _spec(epochs=4, ensemble=4, early_stopping_patience=None)
    one, one_seen = _record(1, spec)
    many, many_seen = _record(threads, spec)
    assert np.array_equal(one.model.members, many.model.members)  # every member's weights
    assert [(m.member, m.epoch, m.train_loss, m.val_loss) for m in one.history] == [
        (m.member, m.epoch, m.train_loss, m.val_loss) for m in many.history]
    # the callbacks saw the same evaluations and checkpoints, in the same order
    assert [e[:3] for e in one_seen] == [e[:3] for e in many_seen]
    assert [e[3:] for e in one_seen if e[0] == "epoch"] == [
        e[3:] for e in many_seen if e[0] == "epoch"]
    assert [_without_seconds(e[3]) for e in one_seen if e[0] == "checkpoint"] == [
        _without_seconds(e[3]) for e in many_seen if e[0] == "checkpoint"]
    assert np.array_equal(bptt.forecast(one.model)[0]["mean"], bptt.forecast(many.model)[0]["mean"])


def test_a_checkpoint_from_members_side_by_side_resumes_bit_identical():
    spec = _with_threads(_spec(epochs=4, ensemble=3, early_stopping_patience=None), 2)
    whole, seen = _record(2, spec)
    saved = {(e[1], e[2]): e[3] for e in seen if e[0] == "checkpoint"}
    for member, epoch in [(0, 2), (1, 3)]:
        checkpoint = Checkpoint.from_bytes(saved[member, epoch])
        before = whole.history[:len(checkpoint.trained_epochs())]
        resumed = bptt.fit(_series(), spec=spec, resume=checkpoint, history=before)
        assert np.array_equal(whole.model.members, resumed.model.members)
        assert whole.best_epochs == resumed.best_epochs and whole.stopped == resumed.stopped
        assert [(m.member, m.epoch, m.train_loss) for m in resumed.history] == [
            (m.member, m.epoch, m.train_loss) for m in whole.history]


def test_the_first_failing_member_raises_as_on_one_thread():
    spec = _spec(epochs=3, ensemble=3, learning_rate=1e30, optimizer="sgd",
                 clip={"max_norm": None}, early_stopping_patience=None)
    errors = []
    for threads in (1, 2):
        with pytest.raises(NonFiniteError) as caught:
            _record(threads, spec)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]


def test_cancel_stops_every_member():
    calls = {"n": 0}

    def should_cancel():
        calls["n"] += 1
        return calls["n"] > 8

    spec = _with_threads(_spec(epochs=50, ensemble=4, batch_size=4), 2)
    with pytest.raises(TrainingCancelled):
        bptt.fit(_series(), spec=spec, callbacks=Callbacks(should_cancel=should_cancel))
    assert calls["n"] < 20  # every member stopped at its next batch
