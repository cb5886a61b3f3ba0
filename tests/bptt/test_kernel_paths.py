"""The kernels' other paths, which the shared cases (2 inputs, hidden 3) do not reach:
one input and more than FOLD_INPUTS inputs (the input projection as a GEMM per step), hidden
sizes across the GEMM tiles' column panels (NR) and batches across their rows (MR), and nonzero
start states (truncated windows); and what the forward leaves in its caches, which
bptt.insight reads."""

import numpy as np
import pytest

from bptt import NetworkSpec, dropout_masks, init_parameters, loss_and_gradients, make_loss
from bptt.cells import gru, rnn
from bptt.cells._common import work_size
from bptt.cells._gemm import MR, NR
from bptt.gradcheck import check_gradients, relative_error

CELLS = [("lstm", "tanh"), ("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu")]


@pytest.mark.parametrize("cell,act", CELLS)
@pytest.mark.parametrize("inputs,hidden,layers,trunc", [
    (6, 5, 2, None), (6, 5, 2, (3, 5)), (1, 5, 2, (3, 5)), (4, 3, 1, None), (5, 4, 1, (2, 4)),
    (3, 4, 1, (2, 4))])
def test_gradients_match_finite_differences(cell, act, inputs, hidden, layers, trunc):
    loss = make_loss("mse")
    spec = NetworkSpec(cell=cell, nonlinearity=act, input_size=inputs, hidden_size=hidden,
                       num_layers=layers, output_size=2, dropout=0.3 if layers == 2 else 0.0)
    rng = np.random.default_rng(1)
    params = init_parameters(spec, 3, np.float64)
    x = rng.normal(size=(9, 4, inputs))
    y = rng.normal(size=(7, 4, 2))
    masks = dropout_masks(spec, 4, np.random.default_rng(3), np.float64)
    errors = check_gradients(spec, params, x, y, loss, first_output=2, truncate=trunc,
                             dropout_masks=masks)
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-6, (worst, errors[worst])


@pytest.mark.parametrize("cell,act", CELLS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-8), (np.float32, 1e-4)])
@pytest.mark.parametrize("inputs,hidden,trunc", [(8, 192, None), (1, 200, (4, 6)), (3, 64, (4, 6)),
                                                 (16, 40, None), (1, 33, None)])
def test_gradients_match_torch_autograd(cell, act, dtype, tol, inputs, hidden, trunc):
    pytest.importorskip("torch")
    from tests.bptt.torch_reference import loss_and_grads

    loss = make_loss("mse")
    spec = NetworkSpec(cell=cell, nonlinearity=act, input_size=inputs, hidden_size=hidden,
                       num_layers=2, output_size=3)
    rng = np.random.default_rng(2)
    params = init_parameters(spec, 5, dtype)
    x = rng.normal(size=(10, 6, inputs)).astype(dtype)
    y = rng.normal(size=(8, 6, 3)).astype(dtype)
    ours = loss_and_gradients(spec, params, x, y, loss, first_output=2, truncate=trunc)
    ref_loss, ref = loss_and_grads(spec, params, x, y, loss, 2, trunc)
    assert ours.loss == pytest.approx(ref_loss, rel=tol)
    for name, grad in spec.layout.views(ours.grad).items():
        assert relative_error(grad, ref[name]) < tol, name


@pytest.mark.parametrize("cell,act", CELLS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-8), (np.float32, 1e-4)])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("trunc", [None, (4, 6)])
def test_unfolded_inputs_with_head_features_match_torch_autograd(cell, act, dtype, tol, layers,
                                                                 trunc):
    """More inputs than the gate loops fold (a GEMM per step) and head features, across the
    tiles' column panels."""
    pytest.importorskip("torch")
    from tests.bptt.torch_reference import loss_and_grads

    loss = make_loss("mse")
    spec = NetworkSpec(cell=cell, nonlinearity=act, input_size=8, hidden_size=NR + 8,
                       num_layers=layers, output_size=3, head_inputs=5)
    rng = np.random.default_rng(9)
    params = init_parameters(spec, 2, dtype)
    x = rng.normal(size=(10, MR + 3, 8)).astype(dtype)
    y = rng.normal(size=(8, MR + 3, 3)).astype(dtype)
    features = rng.normal(size=(8, MR + 3, 5)).astype(dtype)
    ours = loss_and_gradients(spec, params, x, y, loss, first_output=2, truncate=trunc,
                              head_features=features)
    ref_loss, ref = loss_and_grads(spec, params, x, y, loss, 2, trunc, head_features=features)
    assert ours.loss == pytest.approx(ref_loss, rel=tol)
    for name, grad in spec.layout.views(ours.grad).items():
        assert relative_error(grad, ref[name]) < tol, name


@pytest.mark.parametrize("cell,act", CELLS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-8), (np.float32, 1e-4)])
@pytest.mark.parametrize("inputs,hidden,batch", [(2, NR + 1, 2 * MR - 3), (5, NR - 1, MR + 1)])
def test_tile_edges_match_torch_autograd(cell, act, dtype, tol, inputs, hidden, batch):
    """Batches and hidden sizes one past and one short of the GEMM tiles' rows and columns."""
    pytest.importorskip("torch")
    from tests.bptt.torch_reference import loss_and_grads

    loss = make_loss("mse")
    spec = NetworkSpec(cell=cell, nonlinearity=act, input_size=inputs, hidden_size=hidden,
                       num_layers=2, output_size=3)
    rng = np.random.default_rng(6)
    params = init_parameters(spec, 8, dtype)
    x = rng.normal(size=(7, batch, inputs)).astype(dtype)
    y = rng.normal(size=(5, batch, 3)).astype(dtype)
    ours = loss_and_gradients(spec, params, x, y, loss, first_output=2, truncate=(3, 5))
    ref_loss, ref = loss_and_grads(spec, params, x, y, loss, 2, (3, 5))
    assert ours.loss == pytest.approx(ref_loss, rel=tol)
    for name, grad in spec.layout.views(ours.grad).items():
        assert relative_error(grad, ref[name]) < tol, name


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _weights(rng, gates, inputs, hidden):
    s = 1 / np.sqrt(hidden)
    g = gates * hidden
    return (rng.uniform(-s, s, (g, inputs)), rng.uniform(-s, s, (g, hidden)),
            rng.uniform(-s, s, g), rng.uniform(-s, s, g))


@pytest.mark.parametrize("inputs,hidden,zero_start", [(1, 5, True), (3, 5, False), (7, 6, True),
                                                      (2, 192, False), (9, 200, True)])
def test_gru_caches_hold_activated_gates(inputs, hidden, zero_start):
    """gates keeps r, z, n after their nonlinearities and aux keeps W_hn h + b_hn, on every path
    (bptt.insight reads the gates as activations)."""
    rng = np.random.default_rng(4)
    steps, batch, h_ = 4, 3, hidden
    x = rng.normal(size=(steps, batch, inputs))
    h0 = np.zeros((batch, h_)) if zero_start else rng.normal(size=(batch, h_)) * 0.5
    w_ih, w_hh, b_ih, b_hh = _weights(rng, 3, inputs, h_)
    gates = np.empty((steps, batch, 3 * h_))
    aux = np.empty((steps, batch, h_))
    hs = np.empty((steps, batch, h_))
    work = np.empty(work_size(batch, h_, 3 * h_, inputs))
    gru.forward(x, h0, h0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, False, work)
    h = h0
    for t in range(steps):
        gi = x[t] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        r = _sigmoid(gi[:, :h_] + gh[:, :h_])
        z = _sigmoid(gi[:, h_ : 2 * h_] + gh[:, h_ : 2 * h_])
        n = np.tanh(gi[:, 2 * h_ :] + r * gh[:, 2 * h_ :])
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(gates[t], np.concatenate([r, z, n], axis=1), rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(aux[t], gh[:, 2 * h_ :], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hs[t], h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("inputs,hidden,zero_start", [(1, 5, True), (3, 5, False), (7, 6, True),
                                                      (2, 192, False), (9, 200, True)])
def test_rnn_caches_hold_the_input_projection(relu, inputs, hidden, zero_start):
    """gates keeps W_ih x (no bias) and hs the activated states, on every path."""
    rng = np.random.default_rng(5)
    steps, batch = 4, 3
    x = rng.normal(size=(steps, batch, inputs))
    h0 = np.zeros((batch, hidden)) if zero_start else rng.normal(size=(batch, hidden)) * 0.5
    w_ih, w_hh, b_ih, b_hh = _weights(rng, 1, inputs, hidden)
    gates = np.empty((steps, batch, hidden))
    hs = np.empty((steps, batch, hidden))
    work = np.empty(work_size(batch, hidden, hidden, inputs))
    rnn.forward(x, h0, h0, w_ih, w_hh, b_ih, b_hh, gates, np.zeros((1, 1, 1)), hs, relu, work)
    h = h0
    for t in range(steps):
        a = x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        h = np.maximum(a, 0) if relu else np.tanh(a)
        np.testing.assert_allclose(gates[t], x[t] @ w_ih.T, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hs[t], h, rtol=1e-12, atol=1e-12)
