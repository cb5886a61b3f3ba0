"""fit: raw series in, a trained Model out, epoch by epoch with metrics and checkpoints.

The loop: shuffle the training windows with the run's own generator, take mini-batches, one
train_step each (forward, BPTT, clipping, optimizer); after each epoch, the validation loss, the
learning-rate schedule, early stopping, the metrics callback and a checkpoint. Everything random
comes from one numpy Generator whose state is in the checkpoint, so a run resumed from a
checkpoint ends bit-identical to one that never stopped (same machine, same thread count).
"""

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from .clipping import ClipSpec
from .data import DataError, Windows, as_series, fit_scaler, interpolate_gaps, make_windows
from .defaults import input_size_for, resolve
from .forward import dropout_masks, predict
from .losses import MAE, MSE, Huber, MeanAndQuantiles
from .model import Model
from .network import NetworkSpec, init_parameters
from .optimizers import make_optimizer
from .schedules import make_schedule
from .serialization import from_safetensors, to_safetensors
from .spec import SpecError, TrainingSpec
from .training_step import train_step


class TrainingCancelled(Exception):
    """should_cancel() answered True; training stopped between two batches."""


@dataclass
class EpochMetrics:
    """What one epoch did."""

    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's batches, before each update
    val_loss: float | None  # on the held-out latest windows; None when there are none
    grad_norm: float  # mean pre-clip global gradient norm over the epoch's updates
    max_grad_norm: float
    clip_fraction: float  # share of updates whose gradient was clipped
    learning_rate: float  # the rate this epoch used
    seconds: float
    grad_flow: list[float] = field(default_factory=list)  # mean |dL/dh_t| per input step, top layer


@dataclass
class Callbacks:
    """Hooks for the service: metrics and checkpoints after each epoch, cancellation between
    batches. Every hook is optional."""

    on_epoch: Callable[[EpochMetrics], None] | None = None
    on_checkpoint: Callable[["Checkpoint"], None] | None = None
    should_cancel: Callable[[], bool] | None = None


@dataclass
class Checkpoint:
    """Everything needed to continue a fit after `epoch` completed epochs."""

    epoch: int
    params: np.ndarray
    optimizer_state: dict
    schedule_state: dict
    rng_state: dict
    best_params: np.ndarray
    best_loss: float
    best_epoch: int
    bad_epochs: int
    learning_rate: float
    history: list[EpochMetrics]

    def to_bytes(self) -> bytes:
        """Safetensors bytes: arrays as tensors, the rest as JSON metadata (never pickled)."""
        arrays = {k: v for k, v in self.optimizer_state.items() if isinstance(v, np.ndarray)}
        scalars = {k: v for k, v in self.optimizer_state.items() if k not in arrays}
        tensors = {"params": self.params, "best_params": self.best_params,
                   **{f"optimizer.{k}": v for k, v in arrays.items()}}
        meta = {"epoch": self.epoch, "optimizer": scalars, "schedule": self.schedule_state,
                "rng": self.rng_state, "best_loss": self.best_loss, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "learning_rate": self.learning_rate,
                "history": [asdict(m) for m in self.history]}
        return to_safetensors(tensors, {"checkpoint": json.dumps(meta)})

    @classmethod
    def from_bytes(cls, data: bytes) -> "Checkpoint":
        tensors, metadata = from_safetensors(data)
        meta = json.loads(metadata["checkpoint"])
        optimizer_state = dict(meta["optimizer"])
        optimizer_state.update({k[len("optimizer."):]: v for k, v in tensors.items()
                                if k.startswith("optimizer.")})
        return cls(meta["epoch"], tensors["params"], optimizer_state, meta["schedule"],
                   meta["rng"], tensors["best_params"], meta["best_loss"], meta["best_epoch"],
                   meta["bad_epochs"], meta["learning_rate"],
                   [EpochMetrics(**m) for m in meta["history"]])


@dataclass
class FitResult:
    """A trained model and how it got there."""

    model: Model
    history: list[EpochMetrics]
    best_epoch: int  # the epoch whose weights the model holds
    stopped: str  # "completed" or "early_stopping"
    coverage: float | None  # share of validation targets inside the outer quantile interval


def fit(series, horizon: int | None = None, spec: TrainingSpec | None = None, *,
        callbacks: Callbacks | None = None, resume: Checkpoint | None = None) -> FitResult:
    """Train one global model on all `series` (see data.as_series for accepted shapes).

    Give either `horizon` (every other choice made from the data) or a full `spec`. Raises
    SpecError or DataError for unusable input, NonFiniteError if training diverges, and
    TrainingCancelled when callbacks.should_cancel() says so.
    """
    spec = _spec_for(horizon, spec)
    callbacks = callbacks or Callbacks()
    named = as_series(series)
    input_size = input_size_for(spec, min(len(values) for _, values in named))
    for i, (name, values) in enumerate(named):
        if len(values) < input_size + spec.horizon:
            raise DataError(["series", i, "values"],
                            f"series {name!r} has {len(values)} points; input_size {input_size} "
                            f"+ horizon {spec.horizon} needs at least {input_size + spec.horizon}")
    scalers = [fit_scaler(spec.scaler, values) for _, values in named]
    scaled = [s.transform(values) for s, (_, values) in zip(scalers, named, strict=True)]
    train, val = make_windows(scaled, input_size, spec.horizon,
                              spec.training.validation_fraction)
    spec = resolve(spec, input_size, len(train))
    t = spec.training
    network = NetworkSpec(cell=spec.model.cell, input_size=1, hidden_size=spec.model.hidden_size,
                          num_layers=spec.model.num_layers, nonlinearity=spec.model.nonlinearity,
                          dropout=spec.model.dropout,
                          output_size=spec.horizon * (1 + len(spec.quantiles or ())))
    loss = _loss_for(spec)
    optimizer = make_optimizer(t.optimizer, weight_decay=t.weight_decay)
    schedule = _schedule_for(spec)
    clip = ClipSpec(t.clip.max_norm, t.clip.max_value)

    if resume is None:
        params = init_parameters(network, t.seed)
        rng = np.random.default_rng(t.seed)
        state = optimizer.init_state(params)
        best_params, best_loss, best_epoch, bad_epochs = params.copy(), math.inf, 0, 0
        history: list[EpochMetrics] = []
        lr, start = t.learning_rate, 0
    else:
        params, state = resume.params.copy(), _copy_state(resume.optimizer_state)
        rng = np.random.default_rng()
        rng.bit_generator.state = resume.rng_state
        schedule.load_state_dict(resume.schedule_state)
        best_params, best_loss = resume.best_params.copy(), resume.best_loss
        best_epoch, bad_epochs = resume.best_epoch, resume.bad_epochs
        history, lr, start = list(resume.history), resume.learning_rate, resume.epoch

    stopped = "completed"
    updates = start * math.ceil(len(train) / t.batch_size)
    for epoch in range(start + 1, t.epochs + 1):
        began = time.perf_counter()
        losses, norms, clipped, flows = [], [], 0, []
        order = rng.permutation(len(train))
        for first in range(0, len(order), t.batch_size):
            if callbacks.should_cancel and callbacks.should_cancel():
                raise TrainingCancelled(f"cancelled during epoch {epoch}")
            batch = train.take(order[first : first + t.batch_size])
            x = np.ascontiguousarray(batch.x.transpose(1, 0, 2))  # (L, b, 1)
            masks = dropout_masks(network, len(batch), rng, np.float32)
            updates += 1
            report = train_step(network, params, x, batch.y[None], loss=loss, optimizer=optimizer,
                                optimizer_state=state, lr=lr, clip=clip, truncate=t.truncate,
                                dropout_masks=masks, step=updates, threads=t.threads)
            losses.append(report.loss)
            norms.append(report.grad_norm)
            clipped += report.clipped
            flows.append(report.grad_flow[-1])
        val_loss = evaluate(network, params, val, loss, t.threads) if len(val) else None
        monitored = val_loss if val_loss is not None else float(np.mean(losses))
        if monitored < best_loss:
            best_params, best_loss, best_epoch, bad_epochs = params.copy(), monitored, epoch, 0
        else:
            bad_epochs += 1
        metrics = EpochMetrics(epoch, float(np.mean(losses)), val_loss, float(np.mean(norms)),
                               float(np.max(norms)), clipped / len(norms), lr,
                               time.perf_counter() - began, np.mean(flows, axis=0).tolist())
        history.append(metrics)
        lr = schedule.next(monitored)
        if callbacks.on_epoch:
            callbacks.on_epoch(metrics)
        if callbacks.on_checkpoint:
            callbacks.on_checkpoint(Checkpoint(
                epoch, params.copy(), _copy_state(state), schedule.state_dict(),
                rng.bit_generator.state, best_params.copy(), best_loss, best_epoch, bad_epochs,
                lr, list(history)))
        if t.early_stopping_patience and bad_epochs >= t.early_stopping_patience:
            stopped = "early_stopping"
            break

    tails = np.stack([interpolate_gaps(s)[-input_size:] for s in scaled])
    model = Model(spec, network, best_params, [n for n, _ in named], scalers, tails)
    coverage = quantile_coverage(model, val) if spec.quantiles and len(val) else None
    return FitResult(model, history, best_epoch, stopped, coverage)


def evaluate(network: NetworkSpec, params: np.ndarray, windows: Windows, loss,
             threads: int = 1) -> float:
    """Mean loss of the network on some windows (no gradients)."""
    out, _ = predict(network, params, windows.x.transpose(1, 0, 2), threads=threads)
    known = np.isfinite(windows.y)
    total, _ = loss.sum_and_grad(out, windows.y, known)
    return total / max(int(known.sum()) * loss.outputs_per_target, 1)


def quantile_coverage(model: Model, windows: Windows) -> float:
    """Share of known targets that fall inside the outermost quantile interval."""
    out, _ = predict(model.network, model.params, windows.x.transpose(1, 0, 2))
    q = len(model.quantiles)
    paths = np.sort(out.reshape(len(windows), model.horizon, 1 + q)[:, :, 1:], axis=2)
    known = np.isfinite(windows.y)
    inside = (windows.y >= paths[:, :, 0]) & (windows.y <= paths[:, :, -1])
    return float(inside[known].mean())


def _spec_for(horizon: int | None, spec: TrainingSpec | None) -> TrainingSpec:
    if spec is None:
        if horizon is None:
            raise SpecError([{"loc": ["horizon"], "msg": "field required"}])
        spec = TrainingSpec(horizon=horizon)
    elif horizon is not None and horizon != spec.horizon:
        raise SpecError([{"loc": ["horizon"], "msg": "differs from spec.horizon"}])
    problems = spec.problems()
    if problems:
        raise SpecError(problems)
    return spec


def _loss_for(spec: TrainingSpec):
    t = spec.training
    point = {"mse": MSE(), "mae": MAE(), "huber": Huber(t.huber_delta)}[t.loss]
    if spec.quantiles:
        return MeanAndQuantiles(tuple(spec.quantiles), point)
    return point


def _schedule_for(spec: TrainingSpec):
    t = spec.training
    options = {
        "constant": {},
        "step": {"step_size": max(1, t.epochs // 3), "gamma": 0.3},
        "cosine": {"t_max": t.epochs},
        "plateau": {"factor": 0.5, "patience": 8},
    }[t.schedule]
    return make_schedule(t.schedule, t.learning_rate, **options)


def _copy_state(state: dict) -> dict:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in state.items()}

