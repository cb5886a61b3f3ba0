"""One update: clipping reports, non-finite detection, and weights left untouched on failure."""

import numpy as np
import pytest

from bptt import NetworkSpec, init_parameters, make_loss
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
])
def test_bad_network_specs_are_refused(bad):
    with pytest.raises(ValueError):
        NetworkSpec(**bad)
