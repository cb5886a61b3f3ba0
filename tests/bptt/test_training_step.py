"""One update: clipping reports, non-finite detection, and weights left untouched on failure."""

import numpy as np
import pytest

from bptt import NetworkSpec, init_parameters, loss_and_gradients, make_loss, predict
from bptt.clipping import ClipSpec, clip_gradients, global_norm
from bptt.errors import NonFiniteError
from bptt.optimizers import make_optimizer
from bptt.training_step import train_step


def _problem(dtype=np.float32):
    spec = NetworkSpec(cell="lstm", hidden_size=8, output_size=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 4, 1)).astype(dtype)
    y = rng.normal(size=(1, 4, 2)).astype(dtype)
    return spec, init_parameters(spec, 0, dtype), x, y


def test_step_reports_pre_clip_norm_and_clipping():
    spec, params, x, y = _problem()
    adam = make_optimizer("adam")
    state = adam.init_state(params)
    before = params.copy()
    report = train_step(spec, params, x, y, loss=make_loss("mse"), optimizer=adam,
                        optimizer_state=state, lr=1e-3, clip=ClipSpec(max_norm=1e-4))
    assert report.clipped and report.grad_norm > 1e-4
    assert not np.array_equal(before, params) and state["step"] == 1
    loose = train_step(spec, params, x, y, loss=make_loss("mse"), optimizer=adam,
                       optimizer_state=state, lr=1e-3, clip=ClipSpec(max_norm=1e6))
    assert not loose.clipped


def test_clipping_by_norm_leaves_that_norm():
    grad = np.full(100, 3.0, np.float32)
    norm, clipped = clip_gradients(grad, ClipSpec(max_norm=2.0))
    assert clipped and norm == pytest.approx(30.0)
    assert global_norm(grad) == pytest.approx(2.0, rel=1e-5)


@pytest.mark.parametrize("poison", ["nan_input", "huge_weights"])
def test_non_finite_loss_raises_and_keeps_weights(poison):
    spec, params, x, y = _problem()
    if poison == "nan_input":
        x[3, 1, 0] = np.nan
    else:
        spec = NetworkSpec(cell="rnn", nonlinearity="relu", hidden_size=8, output_size=2)
        params = np.full(spec.layout.size, 1e20, np.float32)
    before = params.copy()
    sgd = make_optimizer("sgd")
    with pytest.raises(NonFiniteError) as info:
        train_step(spec, params, x, y, loss=make_loss("mse"), optimizer=sgd,
                   optimizer_state=sgd.init_state(params), lr=0.1, step=7)
    assert info.value.where == "loss" and info.value.step == 7
    assert np.array_equal(before, params, equal_nan=True)


@pytest.mark.parametrize("bad", [
    dict(cell="transformer"), dict(hidden_size=0), dict(dropout=1.0), dict(nonlinearity="gelu"),
    dict(head_inputs=-1), dict(input_size=0),
])
def test_bad_network_specs_are_refused(bad):
    with pytest.raises(ValueError):
        NetworkSpec(**bad)


def _wide_problem(head_inputs=2, dtype=np.float32):
    """An LSTM with 3 inputs per step and `head_inputs` head features; (spec, params, x, y, f)."""
    spec = NetworkSpec(cell="lstm", input_size=3, hidden_size=8, output_size=2,
                       head_inputs=head_inputs)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 4, 3)).astype(dtype)
    y = rng.normal(size=(1, 4, 2)).astype(dtype)
    features = rng.normal(size=(4, head_inputs)).astype(dtype)
    return spec, init_parameters(spec, 0, dtype), x, y, features


def test_step_with_head_features_trains_their_head_columns():
    spec, params, x, y, features = _wide_problem()
    before = spec.layout.views(params.copy())["head.weight"]
    sgd = make_optimizer("sgd")
    train_step(spec, params, x, y, loss=make_loss("mse"), optimizer=sgd,
               optimizer_state=sgd.init_state(params), lr=0.1, clip=ClipSpec(max_norm=1.0),
               head_features=features)
    after = spec.layout.views(params)["head.weight"]
    assert after.shape == (2, 8 + 2)
    assert np.all(after[:, 8:] != before[:, 8:])


def test_head_features_change_the_forecast_through_their_columns():
    spec, params, x, _, features = _wide_problem()
    out, _ = predict(spec, params, x, head_features=features)
    shifted, _ = predict(spec, params, x, head_features=features + 1)
    weight = spec.layout.views(params)["head.weight"]
    np.testing.assert_allclose(shifted - out, np.broadcast_to(weight[:, 8:].sum(axis=1), out.shape),
                               rtol=1e-4, atol=1e-6)


def test_head_inputs_initialise_as_nn_linear_and_keep_the_rest():
    """head.weight's bound is nn.Linear's 1/sqrt(H + E); every other parameter (and any network
    without head inputs) draws the same numbers as before from the same seed."""
    wide = NetworkSpec(cell="gru", hidden_size=16, output_size=3, head_inputs=9)
    plain = NetworkSpec(cell="gru", hidden_size=16, output_size=3)
    ours, theirs = wide.layout.views(init_parameters(wide, 4)), plain.layout.views(
        init_parameters(plain, 4))
    assert np.abs(ours["head.weight"]).max() <= 1 / 5
    assert np.abs(ours["head.weight"]).max() > 0.9 / 5
    for name in ours:
        if name.startswith("weight_") or name.startswith("bias_"):
            assert np.array_equal(ours[name], theirs[name]), name


@pytest.mark.parametrize("head_inputs,given,message", [
    (2, None, "pass head_features of shape"),
    (2, np.zeros((4, 3)), "head_features must have shape"),
    (2, np.zeros((5, 2)), "head_features must have shape"),
    (2, np.zeros((2, 4, 2)), "head_features must have shape"),  # 2 sets for 1 output step
    (0, np.zeros((4, 0)), "no head inputs"),
])
def test_mismatched_head_features_are_a_value_error_before_any_update(head_inputs, given,
                                                                      message):
    spec, params, x, y, _ = _wide_problem(head_inputs)
    before = params.copy()
    sgd = make_optimizer("sgd")
    with pytest.raises(ValueError, match=message):
        train_step(spec, params, x, y, loss=make_loss("mse"), optimizer=sgd,
                   optimizer_state=sgd.init_state(params), lr=0.1, head_features=given)
    with pytest.raises(ValueError, match=message):
        predict(spec, params, x, head_features=given if given is None or given.ndim == 2
                else given[0, :3])
    assert np.array_equal(before, params)


@pytest.mark.parametrize("width", [1, 4])
def test_inputs_of_the_wrong_width_are_a_value_error(width):
    spec, params, x, y, features = _wide_problem()
    x = np.zeros((10, 4, width), np.float32)
    with pytest.raises(ValueError, match=r"shape \(steps, batch, 3\)"):
        predict(spec, params, x, head_features=features)
    with pytest.raises(ValueError, match=r"shape \(steps, batch, 3\)"):
        loss_and_gradients(spec, params, x, y, make_loss("mse"), head_features=features)
