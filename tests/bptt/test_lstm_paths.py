"""The LSTM kernel's other paths, which the shared cases (2 inputs, hidden 3) do not reach:
more than FOLD_INPUTS inputs (the input projection as one GEMM), hidden sizes from
DIRECT_HIDDEN up (W_hh read in place), and nonzero start states (truncated windows)."""

import numpy as np
import pytest

from bptt import NetworkSpec, dropout_masks, init_parameters, loss_and_gradients, make_loss
from bptt.gradcheck import check_gradients, relative_error


@pytest.mark.parametrize("inputs,hidden,layers,trunc", [
    (6, 5, 2, None), (6, 5, 2, (3, 5)), (1, 5, 2, (3, 5)), (4, 3, 1, None), (5, 4, 1, (2, 4))])
def test_gradients_match_finite_differences(inputs, hidden, layers, trunc):
    loss = make_loss("mse")
    spec = NetworkSpec(cell="lstm", input_size=inputs, hidden_size=hidden, num_layers=layers,
                       output_size=2, dropout=0.3 if layers == 2 else 0.0)
    rng = np.random.default_rng(1)
    params = init_parameters(spec, 3, np.float64)
    x = rng.normal(size=(9, 4, inputs))
    y = rng.normal(size=(7, 4, 2))
    masks = dropout_masks(spec, 4, np.random.default_rng(3), np.float64)
    errors = check_gradients(spec, params, x, y, loss, first_output=2, truncate=trunc,
                             dropout_masks=masks)
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-6, (worst, errors[worst])


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-8), (np.float32, 1e-4)])
@pytest.mark.parametrize("inputs,hidden,trunc", [(8, 192, None), (1, 200, (4, 6)), (3, 64, (4, 6)),
                                                 (16, 40, None)])
def test_gradients_match_torch_autograd(dtype, tol, inputs, hidden, trunc):
    pytest.importorskip("torch")
    from tests.bptt.torch_reference import loss_and_grads

    loss = make_loss("mse")
    spec = NetworkSpec(cell="lstm", input_size=inputs, hidden_size=hidden, num_layers=2,
                       output_size=3)
    rng = np.random.default_rng(2)
    params = init_parameters(spec, 5, dtype)
    x = rng.normal(size=(10, 6, inputs)).astype(dtype)
    y = rng.normal(size=(8, 6, 3)).astype(dtype)
    ours = loss_and_gradients(spec, params, x, y, loss, first_output=2, truncate=trunc)
    ref_loss, ref = loss_and_grads(spec, params, x, y, loss, 2, trunc)
    assert ours.loss == pytest.approx(ref_loss, rel=tol)
    for name, grad in spec.layout.views(ours.grad).items():
        assert relative_error(grad, ref[name]) < tol, name
