"""Exploding gradients: a relu RNN with large recurrent weights diverges unless clipped."""

import numpy as np
import pytest

from bptt import NetworkSpec, init_parameters, make_loss
from bptt.clipping import ClipSpec
from bptt.errors import NonFiniteError
from bptt.optimizers import make_optimizer
from bptt.training_step import train_step


def _train(clip: ClipSpec | None, steps: int = 300) -> list[float]:
    """SGD on 'average of the last 5 inputs' from W_hh = 2 × a random rotation."""
    spec = NetworkSpec(cell="rnn", nonlinearity="relu", hidden_size=16, output_size=1)
    params = init_parameters(spec, 0, np.float64)
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    spec.layout.views(params)["weight_hh_l0"][...] = 2.0 * rotation  # spectral radius 2
    sgd = make_optimizer("sgd")
    state = sgd.init_state(params)
    losses = []
    for step in range(steps):
        x = rng.normal(size=(30, 32, 1))
        y = x[-5:].mean(axis=0)[None]
        report = train_step(spec, params, x, y, loss=make_loss("mse"), optimizer=sgd,
                            optimizer_state=state, lr=0.05, clip=clip, step=step)
        losses.append(report.loss)
    return losses


def test_without_clipping_training_diverges():
    with pytest.raises(NonFiniteError):
        _train(None)


def test_with_clipping_it_trains_to_a_low_loss():
    losses = _train(ClipSpec(max_norm=1.0))
    assert losses[0] > 1000  # the same explosive start
    assert np.mean(losses[-20:]) < 0.1  # the target's variance is 0.2: it learned the task
