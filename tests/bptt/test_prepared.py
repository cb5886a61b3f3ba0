"""The prepared step and evaluation fit's members take are train_step's update and
trainer.evaluate's loss, bit for bit."""

import numpy as np
import pytest

from bptt import NetworkSpec, init_parameters, make_loss
from bptt.clipping import ClipSpec
from bptt.data import Windows
from bptt.errors import NonFiniteError
from bptt.optimizers import make_optimizer
from bptt.prepared import prepare, prepare_evaluation
from bptt.trainer import evaluate
from bptt.training_step import train_step

CASES = [  # (network, loss, clip, optimizer, head inputs)
    (dict(cell="lstm"), "mse", ClipSpec(max_norm=0.05), "adam", 0),
    (dict(cell="gru"), "huber", ClipSpec(max_value=0.01), "adamw", 0),
    (dict(cell="rnn"), "mae", None, "momentum", 0),
    (dict(cell="rnn", nonlinearity="relu"), "mse", ClipSpec(1.0, 0.5), "rmsprop", 0),
    (dict(cell="lstm"), "mse+pinball", ClipSpec(max_norm=1.0), "adam", 3),
    (dict(cell="gru"), "pinball", ClipSpec(max_norm=1.0), "nesterov", 2),
]


def _batches(spec, dtype, rng):
    """Batches of two shapes (a full pass ends on a smaller one), some targets missing."""
    for steps, batch in [(12, 16), (12, 16), (12, 5), (12, 16), (9, 16)]:
        x = rng.normal(size=(steps, batch, spec.input_size)).astype(dtype)
        y = rng.normal(size=(1, batch, 3)).astype(dtype)
        y[0, 1, 2] = np.nan
        head = rng.normal(size=(batch, spec.head_inputs)).astype(dtype)
        yield x, y, head if spec.head_inputs else None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("network", "loss_name", "clip", "optimizer_name", "head_inputs"), CASES)
def test_each_update_is_train_steps(network, loss_name, clip, optimizer_name, head_inputs,
                                    dtype):
    loss = make_loss(loss_name)
    spec = NetworkSpec(**network, input_size=2, hidden_size=8, head_inputs=head_inputs,
                       output_size=3 * loss.outputs_per_target)
    optimizer = make_optimizer(optimizer_name)
    reference = init_parameters(spec, 1, dtype)
    params = reference.copy()
    reference_state, state = optimizer.init_state(reference), optimizer.init_state(params)
    step = prepare(spec, params, loss=loss, optimizer=optimizer, clip=clip, truncate=None,
                   threads=1)
    for k, (x, y, head) in enumerate(_batches(spec, dtype, np.random.default_rng(5))):
        want = train_step(spec, reference, x, y, loss=loss, optimizer=optimizer,
                          optimizer_state=reference_state, lr=0.01, clip=clip, step=k,
                          head_features=head)
        got = step(x, y, optimizer_state=state, lr=0.01, step=k, head_features=head)
        assert np.array_equal(params, reference)
        assert (got.loss, got.grad_norm, got.clipped) == (want.loss, want.grad_norm, want.clipped)
        assert np.array_equal(got.grad_flow, want.grad_flow)
        for name, value in state.items():  # the optimizer's moments and step count
            assert np.array_equal(value, reference_state[name])


def test_a_non_finite_loss_is_raised_before_any_update():
    spec = NetworkSpec(cell="lstm", hidden_size=4, output_size=2)
    params = init_parameters(spec, 0)
    before = params.copy()
    sgd = make_optimizer("sgd")
    step = prepare(spec, params, loss=make_loss("mse"), optimizer=sgd, clip=None,
                   truncate=None, threads=1)
    x = np.ones((6, 3, 1), np.float32)
    x[2, 1, 0] = np.nan
    with pytest.raises(NonFiniteError) as info:
        step(x, np.zeros((1, 3, 2), np.float32), optimizer_state=sgd.init_state(params),
             lr=0.1, step=4)
    assert info.value.where == "loss" and info.value.step == 4
    assert np.array_equal(params, before)


@pytest.mark.parametrize("other", [dict(num_layers=2), dict(truncate=(4, 8)), dict(threads=2)])
def test_what_it_does_not_cover_goes_to_train_step(other):
    spec = NetworkSpec(cell="gru", hidden_size=4, output_size=2,
                       num_layers=other.get("num_layers", 1))
    params = init_parameters(spec, 0)
    assert prepare(spec, params, loss=make_loss("mse"), optimizer=make_optimizer("sgd"),
                   clip=None, truncate=other.get("truncate"),
                   threads=other.get("threads", 1)) is None


def test_targets_of_more_steps_than_the_last_are_refused():
    spec = NetworkSpec(cell="rnn", hidden_size=4, output_size=2)
    params = init_parameters(spec, 0)
    sgd = make_optimizer("sgd")
    step = prepare(spec, params, loss=make_loss("mse"), optimizer=sgd, clip=None,
                   truncate=None, threads=1)
    with pytest.raises(ValueError, match="last step"):
        step(np.ones((6, 3, 1), np.float32), np.zeros((2, 3, 2), np.float32),
             optimizer_state=sgd.init_state(params), lr=0.1)


def _windows(count, spec, rng, horizon=3):
    y = rng.normal(size=(count, horizon)).astype(np.float32)
    y[1, 0] = np.nan
    return Windows(rng.normal(size=(count, 10, spec.input_size)).astype(np.float32), y,
                   np.zeros(count, np.int64),
                   head=rng.normal(size=(count, spec.head_inputs)).astype(np.float32)
                   if spec.head_inputs else None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("network", "loss_name", "head_inputs"), [
    (dict(cell="lstm"), "mse", 0), (dict(cell="gru"), "huber", 2),
    (dict(cell="rnn", nonlinearity="relu"), "mse+pinball", 0)])
def test_each_evaluation_is_evaluates(network, loss_name, head_inputs, dtype):
    loss = make_loss(loss_name)
    spec = NetworkSpec(**network, input_size=2, hidden_size=8, head_inputs=head_inputs,
                       output_size=3 * loss.outputs_per_target)
    rng = np.random.default_rng(3)
    params = init_parameters(spec, 2, dtype)
    windows = _windows(37, spec, rng)
    evaluation = prepare_evaluation(spec, params, windows, loss, threads=1)
    for _ in range(3):  # the parameters as they are at each call
        assert evaluation() == evaluate(spec, params, windows, loss)
        params += rng.normal(scale=0.1, size=params.shape).astype(dtype)


@pytest.mark.parametrize(("other", "count"), [
    (dict(num_layers=2), 8), (dict(threads=2), 8), ({}, 1025), ({}, 0)])
def test_evaluations_it_does_not_cover_go_to_evaluate(other, count):
    spec = NetworkSpec(cell="gru", hidden_size=4, output_size=3,
                       num_layers=other.get("num_layers", 1))
    windows = _windows(count, spec, np.random.default_rng(0)) if count else \
        Windows(np.zeros((0, 10, 1), np.float32), np.zeros((0, 3), np.float32),
                np.zeros(0, np.int64))
    assert prepare_evaluation(spec, init_parameters(spec, 0), windows, make_loss("mse"),
                              threads=other.get("threads", 1)) is None
