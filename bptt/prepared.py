"""A member's training step and evaluation, prepared once rather than at every call.

train_step is the general step: any depth, truncation, dropout and thread count, and it checks
its arguments and finds its buffers afresh at every call. For a small network that per-call
Python (about forty small numpy and bookkeeping calls, 50-60 µs) was a tenth of a 64-unit RNN's
step and of the default LSTM's on a batch of 32, and it is time the GIL is held, which members
training side by side wait on. A member trains one network on batches of one shape over
and over, so its step can be prepared: PreparedStep holds the parameter and gradient views,
the gradient, the zero start state and its buffers' sizes, and each update only takes the
buffers and calls the kernels: forward, head and loss, backward, clipping and the optimizer.

It runs the same kernels on the same arrays in the same order as train_step, so an update is
bit for bit the same (tests/bptt/test_prepared.py compares them over cells, losses, head
inputs, clipping and optimizers). It covers what fit's members run: one layer, full BPTT, the
head on the last step, the whole batch on one thread; `prepare` says None otherwise.

PreparedEvaluation is the same for the validation loss a member computes after every round,
on windows that never change: the windows' inputs laid out for the kernels once, and each
evaluation the forward, the head and the loss, as trainer.evaluate computes them.
"""

import numpy as np

from .cells import CELLS
from .cells._common import work_size
from .cells._head import head_backward, head_work_size
from .clipping import ClipSpec
from .data import Windows
from .forward import PREDICT_CHUNK, head_output
from .losses import levels
from .network import NetworkSpec
from .training_step import StepReport, apply_update
from .workspace import scratch


def prepare(spec: NetworkSpec, params: np.ndarray, *, loss, optimizer,
            clip: ClipSpec | None, truncate: tuple[int, int] | None,
            threads: int) -> "PreparedStep | None":
    """A PreparedStep updating `params` in place, or None where train_step is needed (more
    than one layer, truncated BPTT, or more than one thread)."""
    if spec.num_layers != 1 or truncate is not None or threads != 1:
        return None
    return PreparedStep(spec, params, loss, optimizer, clip)


class _Forward:
    """One layer's forward over batches of one shape (steps, batch): the zero start state kept,
    the caches taken from the thread's scratch at each run (workspace.scratch, under the roles
    train_step and predict use), so that a member's steps and evaluations share them as
    before and a fit holds the memory bptt.cost estimates."""

    def __init__(self, spec: NetworkSpec, dtype, steps: int, batch: int) -> None:
        hidden, width = spec.hidden_size, spec.gates * spec.hidden_size
        self.spec, self.dtype, self.cell = spec, dtype, CELLS[spec.cell]
        self.h0 = np.zeros((batch, hidden), dtype)
        self.c0 = np.zeros((batch, hidden), dtype) if spec.cell == "lstm" else self.h0
        self.no_aux = np.zeros((1, 1, 1), dtype)  # (the RNN keeps no second state)
        self.gates, self.states = (steps, batch, width), (steps, batch, hidden)
        self.work = (work_size(batch, hidden, width, spec.input_size),)

    def run(self, views: dict, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Run the layer over x (T, B, I): (gates, aux, hs, work), as the backward reads them."""
        dtype = self.dtype
        gates = scratch(("gates", 0), self.gates, dtype)
        hs = scratch(("hs", 0), self.states, dtype)
        aux = scratch(("aux", 0), self.states, dtype) if self.spec.cell != "rnn" else self.no_aux
        work = scratch(("work",), self.work, dtype)
        self.cell.forward(x, self.h0, self.c0, views["weight_ih_l0"], views["weight_hh_l0"],
                          views["bias_ih_l0"], views["bias_hh_l0"], gates, aux, hs,
                          self.spec.relu, work)
        return gates, aux, hs, work


class PreparedStep:
    """train_step(spec, params, x, y, ...) for one network's batches, with its state kept."""

    def __init__(self, spec: NetworkSpec, params: np.ndarray, loss, optimizer,
                 clip: ClipSpec | None) -> None:
        self.spec, self.params, self.loss, self.optimizer, self.clip = (
            spec, params, loss, optimizer, clip)
        self.grad = np.zeros_like(params)
        self.views = spec.layout.views(params)
        self.grad_views = spec.layout.views(self.grad)
        point, delta, quantiles = loss.terms
        self.terms = (point, delta, levels(quantiles, params.dtype))
        self.horizon = spec.output_size // loss.outputs_per_target
        # per batch shape (a full pass's last batch may be smaller: one remake each way per
        # epoch): the forward, the head's work size, the empty head inputs
        self.shape: tuple[int, int] | None = None

    def _shape(self, steps: int, batch: int) -> None:
        spec, dtype = self.spec, self.params.dtype
        self.forward = _Forward(spec, dtype, steps, batch)
        self.head_work = (head_work_size(batch, spec.hidden_size, spec.head_inputs,
                                         spec.output_size),)
        self.no_extra = np.empty((batch, 0), dtype)
        self.shape = (steps, batch)

    def __call__(self, x: np.ndarray, y: np.ndarray, *, optimizer_state: dict, lr: float,
                 step: int | None = None, head_features: np.ndarray | None = None) -> StepReport:
        """One update from x (T, B, I) and y (1, B, horizon), as train_step makes it."""
        dtype = self.params.dtype
        x = np.ascontiguousarray(x, dtype=dtype)
        steps, batch, _ = x.shape
        if (steps, batch) != self.shape:
            self._shape(steps, batch)
        if y.shape != (1, batch, self.horizon):
            raise ValueError(f"targets must have shape {(1, batch, self.horizon)} (the last "
                             f"step's), got {y.shape}")
        targets = np.ascontiguousarray(y, dtype=dtype).reshape(batch, -1)
        known = np.isfinite(targets)
        count = int(known.sum()) * self.loss.outputs_per_target
        extra = (self.no_extra if head_features is None
                 else np.ascontiguousarray(head_features, dtype))
        v, g, forward = self.views, self.grad_views, self.forward
        self.grad[:] = 0
        flow = np.zeros((1, steps))
        gates, aux, hs, work = forward.run(v, x)
        dh = scratch(("dh_top",), forward.states, dtype)  # only its last step is read
        total = head_backward(hs[steps - 1], extra, v["head.weight"], v["head.bias"], targets,
                              known, count, *self.terms, scratch(("head",), self.head_work, dtype),
                              g["head.weight"], g["head.bias"], dh[steps - 1])
        # (dx: layer 0's is not wanted, so the kernel is told so and x stands in, unwritten)
        forward.cell.backward(x, forward.h0, forward.c0, v["weight_ih_l0"], v["weight_hh_l0"],
                              gates, aux, hs, dh, steps - 1, x, g["weight_ih_l0"],
                              g["weight_hh_l0"], g["bias_ih_l0"], g["bias_hh_l0"], flow[0],
                              self.spec.relu, False, work)
        return apply_update(self.params, self.grad, total / max(count, 1), flow, clip=self.clip,
                            optimizer=self.optimizer, optimizer_state=optimizer_state, lr=lr,
                            step=step)


def prepare_evaluation(spec: NetworkSpec, params: np.ndarray, windows: Windows, loss,
                       threads: int) -> "PreparedEvaluation | None":
    """A PreparedEvaluation of `params` (as they are at each call) on `windows`, or None where
    trainer.evaluate is needed (more than one layer or thread, or more windows than
    forward.predict runs in one chunk)."""
    if spec.num_layers != 1 or threads != 1 or not 0 < len(windows) <= PREDICT_CHUNK:
        return None
    return PreparedEvaluation(spec, params, windows, loss)


class PreparedEvaluation:
    """trainer.evaluate(spec, params, windows, loss) for fixed windows, bit for bit."""

    def __init__(self, spec: NetworkSpec, params: np.ndarray, windows: Windows, loss) -> None:
        dtype = params.dtype
        self.loss, self.views = loss, spec.layout.views(params)
        self.x = np.ascontiguousarray(windows.x.transpose(1, 0, 2), dtype)  # (T, B, I)
        self.forward = _Forward(spec, dtype, *self.x.shape[:2])
        self.head = None if windows.head is None else np.asarray(windows.head, dtype)
        self.y, self.known = windows.y, np.isfinite(windows.y)
        self.count = max(int(self.known.sum()) * loss.outputs_per_target, 1)

    def __call__(self) -> float:
        """The mean loss of the network on the windows (the forecast's, as fit monitors it)."""
        _, _, hs, _ = self.forward.run(self.views, self.x)
        out = head_output(self.views, hs[-1], self.head)
        total, _ = self.loss.sum_and_grad(out, self.y, self.known)
        return total / self.count
