"""fit: raw series in, a trained Model out, epoch by epoch with metrics and checkpoints.

An epoch is one evaluation round. By default (training.max_steps) a round is
training.eval_every updates, each on a batch of windows sampled balanced across series (see
_BalancedSampler); with training.epochs alone it is one full pass over the shuffled training
windows. Each update is one train_step (forward, BPTT, clipping, optimizer); after each round,
the loss on a fixed validation set, the learning-rate schedule, early stopping, the metrics
callback and a checkpoint. Batches are gathered from the stored series by index
(data.WindowIndex): no window matrix of the training set is ever built. Everything random
comes from one numpy Generator whose state is in the checkpoint, so a run resumed from a
checkpoint ends bit-identical to one that never stopped (same machine, same thread count).
"""

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from . import calendar_inputs
from .calendar_features import feature_names
from .calendar_inputs import CalendarInputs
from .calibration import calibrate
from .clipping import ClipSpec
from .covariates import Encoder, fit_encoder
from .covariates import continued as continue_encoder
from .covariates import declare as declare_covariates
from .covariates import encode as encode_covariates
from .data import (
    DataError,
    ExtraInputs,
    WindowIndex,
    Windows,
    as_series,
    fit_scalers,
    index_windows,
    window_counts,
)
from .defaults import input_size_for, resolve
from .errors import NonFiniteError
from .forward import dropout_masks, predict
from .insight import epoch_insight
from .losses import MAE, MSE, Huber, MeanAndQuantiles
from .members import train_members
from .model import Model
from .network import NetworkSpec, init_parameters
from .optimizers import make_optimizer
from .parallel import single_threaded_blas
from .prepared import prepare, prepare_evaluation
from .schedules import make_schedule
from .seasonality import Seasonality, choose_kind
from .serialization import from_safetensors, to_safetensors
from .spec import SpecError, TrainingConfig, TrainingSpec
from .training_step import train_step


class TrainingCancelled(Exception):
    """should_cancel() answered True; training stopped between two batches."""


@dataclass
class EpochMetrics:
    """What one epoch of one ensemble member did."""

    epoch: int  # 1-based, counted within the member
    train_loss: float  # mean over the epoch's batches, before each update
    val_loss: float | None  # on the held-out latest windows; None when there are none
    grad_norm: float  # mean pre-clip global gradient norm over the epoch's updates
    max_grad_norm: float
    clip_fraction: float  # share of updates whose gradient was clipped
    learning_rate: float  # the rate this epoch used
    seconds: float
    grad_flow: list[float] = field(default_factory=list)  # mean |dL/dh_t| per input step, top layer
    member: int = 0  # which ensemble member (0-based)
    # bptt.insight.epoch_insight on a fixed sample of training windows, when Callbacks.insight
    insight: dict | None = None
    # On the member's last epoch, why it was the last: "completed" (the epoch budget) or
    # "early_stopping"; None on every other epoch. A service can say so while later members
    # still train, rather than once the whole fit has returned.
    stopped: str | None = None
    steps: int = 0  # the member's optimizer updates up to the end of this epoch


@dataclass
class Callbacks:
    """Hooks for the service: metrics and checkpoints after each epoch, cancellation between
    batches. Every hook is optional."""

    on_epoch: Callable[[EpochMetrics], None] | None = None
    on_checkpoint: Callable[["Checkpoint"], None] | None = None
    should_cancel: Callable[[], bool] | None = None
    # Compute EpochMetrics.insight after each epoch (one extra forward, and for truncated BPTT
    # two extra gradients, on INSIGHT_SAMPLE windows): what the service's diagnostics show.
    insight: bool = False


@dataclass(frozen=True)
class FinishedMember:
    """How an ensemble member that has finished training ended: what a fit resumed after it
    reports for it (FitResult.best_epochs, .stopped) without its epochs' metrics."""

    epochs: int  # epochs it trained
    best_epoch: int  # the epoch whose weights it keeps (1-based)


@dataclass
class Checkpoint:
    """Everything needed to continue a fit after `epoch` completed epochs of `member`.

    It holds the run's state, not its epochs' metrics: those grow with every epoch, and the
    caller has had each from on_epoch already. A fit resumed from it without them trains the
    same weights; to have its FitResult.history start from the first epoch, pass them to
    fit(history=) (trained_epochs() says which epochs they are)."""

    member: int
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
    finished: list[np.ndarray] = field(default_factory=list)  # best weights of earlier members
    members: list[FinishedMember] = field(default_factory=list)  # how each of those ended

    def trained_epochs(self) -> list[tuple[int, int]]:
        """(member, epoch) of every epoch trained before this checkpoint, in the order fit gave
        their metrics to on_epoch: what fit(resume=self, history=...) expects, in order."""
        before = [(k, e) for k, m in enumerate(self.members) for e in range(1, m.epochs + 1)]
        return before + [(self.member, e) for e in range(1, self.epoch + 1)]

    def to_bytes(self) -> bytes:
        """Safetensors bytes: arrays as tensors, the rest as JSON metadata (never pickled)."""
        arrays = {k: v for k, v in self.optimizer_state.items() if isinstance(v, np.ndarray)}
        scalars = {k: v for k, v in self.optimizer_state.items() if k not in arrays}
        tensors = {"params": self.params, "best_params": self.best_params,
                   **{f"optimizer.{k}": v for k, v in arrays.items()},
                   **{f"finished.{i}": p for i, p in enumerate(self.finished)}}
        meta = {"member": self.member, "epoch": self.epoch, "optimizer": scalars,
                "schedule": self.schedule_state, "rng": self.rng_state,
                "best_loss": self.best_loss, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "learning_rate": self.learning_rate,
                "finished": len(self.finished), "members": [asdict(m) for m in self.members]}
        return to_safetensors(tensors, {"checkpoint": json.dumps(meta)})

    @classmethod
    def from_bytes(cls, data: bytes) -> "Checkpoint":
        """Rebuild a checkpoint from to_bytes' output (or from an older one's, which carried
        the epochs' metrics: they are read only for how the finished members ended)."""
        tensors, metadata = from_safetensors(data)
        meta = json.loads(metadata["checkpoint"])
        optimizer_state = dict(meta["optimizer"])
        optimizer_state.update({k[len("optimizer."):]: v for k, v in tensors.items()
                                if k.startswith("optimizer.")})
        if "members" in meta:
            members = [FinishedMember(**m) for m in meta["members"]]
        else:
            members = _finished_members(meta["history"], meta["finished"])
        return cls(meta["member"], meta["epoch"], tensors["params"], optimizer_state,
                   meta["schedule"], meta["rng"], tensors["best_params"], meta["best_loss"],
                   meta["best_epoch"], meta["bad_epochs"], meta["learning_rate"],
                   [tensors[f"finished.{i}"] for i in range(meta["finished"])], members)


def _finished_members(history: list[dict], finished: int) -> list[FinishedMember]:
    """How the first `finished` members ended, from the epochs' metrics an older checkpoint
    carried: the best epoch is the first with the lowest monitored loss, as training kept it."""
    members = []
    for k in range(finished):
        scores = [m["val_loss"] if m["val_loss"] is not None else m["train_loss"]
                  for m in history if m["member"] == k]
        members.append(FinishedMember(len(scores), 1 + scores.index(min(scores))))
    return members


@dataclass
class FitResult:
    """A trained model and how it got there."""

    model: Model
    history: list[EpochMetrics]  # all members' epochs, member by member
    best_epochs: list[int]  # per member: the epoch whose weights the model holds
    stopped: list[str]  # per member: "completed" or "early_stopping"
    # share of validation targets inside the network's outer quantile interval, before the
    # conformal calibration that the model then applies (see conformal_offsets)
    coverage: float | None


@dataclass
class _Problem:
    """What every ensemble member trains on, and how."""

    network: NetworkSpec
    train: WindowIndex
    val: WindowIndex  # every validation window (for calibration after training)
    check: Windows  # the fixed, capped validation set evaluated after every epoch
    loss: object
    spec: TrainingSpec
    # the calendar columns of the inputs and the head (None: none, for the reason in the note)
    calendar: CalendarInputs | None = None
    calendar_note: str = ""
    covariates: Encoder | None = None  # how the covariates were encoded; None: none


@dataclass
class _MemberRun:
    """The training state of one ensemble member: exactly what a Checkpoint holds."""

    member: int
    params: np.ndarray
    optimizer_state: dict
    schedule: object
    rng: np.random.Generator
    best_params: np.ndarray
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    learning_rate: float = 0.0
    epoch: int = 0

    @classmethod
    def start(cls, problem: _Problem, optimizer, member: int,
              warm_start: Model | None = None) -> "_MemberRun":
        seed = problem.spec.training.seed + member  # members differ only by seed
        if warm_start is None:
            params = init_parameters(problem.network, seed)
        else:  # member k continues from member k of the earlier model (cycling if it had fewer)
            params = warm_start.members[member % len(warm_start.members)].copy()
        return cls(member, params, optimizer.init_state(params), _schedule_for(problem.spec),
                   np.random.default_rng(seed), params.copy(),
                   learning_rate=problem.spec.training.learning_rate)

    @classmethod
    def resume(cls, problem: _Problem, checkpoint: Checkpoint) -> "_MemberRun":
        rng = np.random.default_rng()
        rng.bit_generator.state = checkpoint.rng_state
        schedule = _schedule_for(problem.spec)
        schedule.load_state_dict(checkpoint.schedule_state)
        return cls(checkpoint.member, checkpoint.params.copy(),
                   _copy_state(checkpoint.optimizer_state), schedule, rng,
                   checkpoint.best_params.copy(), checkpoint.best_loss, checkpoint.best_epoch,
                   checkpoint.bad_epochs, checkpoint.learning_rate, checkpoint.epoch)

    def checkpoint(self, finished: list[np.ndarray],
                   members: list[FinishedMember]) -> Checkpoint:
        return Checkpoint(self.member, self.epoch, self.params.copy(),
                          _copy_state(self.optimizer_state), self.schedule.state_dict(),
                          self.rng.bit_generator.state, self.best_params.copy(), self.best_loss,
                          self.best_epoch, self.bad_epochs, self.learning_rate, list(finished),
                          list(members))

    def ended(self) -> FinishedMember:
        return FinishedMember(self.epoch, self.best_epoch)


def fit(series, horizon: int | None = None, spec: TrainingSpec | None = None, *,
        callbacks: Callbacks | None = None, resume: Checkpoint | None = None,
        history: list[EpochMetrics] | None = None,
        warm_start: Model | None = None, covariates=None) -> FitResult:
    """Train one global model (an ensemble of `training.ensemble` seeds) on all `series`.

    `series` takes the shapes of data.as_series. Give either `horizon` (every other choice made
    from the data) or a full `spec`. `warm_start` continues from an earlier model's weights
    (fresh optimizer state, scalers refitted on these series): the network must have its shape,
    and the spec's open sizes are taken from it (no spec at all: the model's own spec).
    `resume` continues from a checkpoint (see Checkpoint), ending bit-identical to the fit that
    gave it; `history` is that fit's metrics up to the checkpoint, as on_epoch had them (one
    per resume.trained_epochs()), for FitResult.history to start with (without it, the history
    holds the epochs trained after the checkpoint only). Raises SpecError or DataError for
    unusable input, NonFiniteError if training diverges, TrainingCancelled when
    callbacks.should_cancel() says so, and ValueError for a history that is not the
    checkpoint's.

    `covariates`: static, historical and future covariates of the series, declared as
    bptt.covariates describes ({name: {"kind", "values": {series id: value(s)}}}); a forecast
    of the model then takes them too (bptt.forecast).
    """
    # BLAS held to one thread for the whole fit (parallel.py says why): each step, forward
    # and insight enters it again, and only the first entry sets the limit. Set and lifted
    # around every step it took about 1 ms a step (a handoff to the BLAS-control thread and
    # threadpoolctl), more than the kernels of a small model's step.
    with single_threaded_blas():
        return _fit(series, horizon, spec, callbacks=callbacks, resume=resume,
                    history=history, warm_start=warm_start, covariates=covariates)


def _fit(series, horizon: int | None, spec: TrainingSpec | None, *,
         callbacks: Callbacks | None, resume: Checkpoint | None,
         history: list[EpochMetrics] | None, warm_start: Model | None,
         covariates) -> FitResult:
    """fit, with BLAS held to one thread."""
    callbacks = callbacks or Callbacks()
    history = _history_before(resume, history)
    problem, named, scalers, scaled, seasonality = _prepare(series, horizon, spec, warm_start,
                                                            covariates)
    spec, network, val = problem.spec, problem.network, problem.val
    optimizer = make_optimizer(spec.training.optimizer, weight_decay=spec.training.weight_decay)

    finished = [] if resume is None else list(resume.finished)
    ended = [] if resume is None else list(resume.members)  # how each finished member ended
    todo = range(len(finished), spec.training.ensemble)

    def start(member: int) -> _MemberRun:
        if resume is not None and resume.member == member:
            return _MemberRun.resume(problem, resume)
        return _MemberRun.start(problem, optimizer, member, warm_start)

    if spec.training.threads > 1 and len(todo) > 1:  # members side by side (bptt.members)
        alone = _one_thread_each(problem)

        def train_one(member: int, hooks: Callbacks) -> _MemberRun:
            run = start(member)
            _train_member(alone, optimizer, run, [], ([], []), hooks)
            return run

        runs, history = train_members(todo, spec.training.threads, train_one, callbacks,
                                      lambda run: (run.ended(), run.best_params),
                                      (ended, finished, history))
        finished += [run.best_params for run in runs]
        ended += [run.ended() for run in runs]
    for member in todo[len(finished) - todo.start:]:
        run = start(member)
        _train_member(problem, optimizer, run, history, (finished, ended), callbacks)
        finished.append(run.best_params)
        ended.append(run.ended())
    stopped = ["completed" if m.epochs >= spec.training.epochs else "early_stopping"
               for m in ended]  # a member short of its epoch budget stopped early

    tails = problem.train.data.tails(spec.window.input_size)  # filled once, in _prepare
    # an open calendar choice stays open in the model's spec, as an open seasonality does: the
    # model's calendar (and card) say what was used
    model = Model(spec, network, np.stack(finished), [n for n, _ in named], scalers, tails,
                  seasonality=seasonality, calendar=problem.calendar,
                  calendar_note=problem.calendar_note, covariates=problem.covariates,
                  covariate_tails=_covariate_tails(problem),
                  covariate_static=_covariate_static(problem))
    coverage = calibrate(model, val, scaled)
    return FitResult(model, history, [m.best_epoch for m in ended], stopped, coverage)


def _history_before(resume: Checkpoint | None,
                    history: list[EpochMetrics] | None) -> list[EpochMetrics]:
    """The metrics FitResult.history starts with: fit's `history`, checked against the
    checkpoint it comes with."""
    if history is None:
        return []
    if resume is None:
        raise ValueError("history is the metrics before a checkpoint: give it with resume")
    expected = len(resume.trained_epochs())
    if len(history) != expected:
        raise ValueError(f"history has {len(history)} epochs; the checkpoint was taken after "
                         f"{expected}")
    return list(history)


def resolve_spec(lengths: Iterable[int], spec: TrainingSpec, *,
                 warm_start: Model | None = None) -> TrainingSpec:
    """The spec that fit trains with on series of these lengths, every open choice made
    (bptt.defaults: input window, hidden size, epochs, learning rate, season length), from the
    lengths alone: no series parsed, no windows built, so a service can show and check a job's
    plan when it is submitted. The one choice the values make, an open `seasonality`, stays
    open here; fit makes it on the validation windows and the model records it. With
    `warm_start`, open sizes come from that model, as in fit, and a network the model's weights
    cannot fill is a SpecError at ["warm_start"].
    fit(series, spec=resolve_spec(lengths, spec)) trains exactly as fit(series, spec=spec).
    Raises SpecError for an invalid spec; series too short for the window are fit's to refuse.
    """
    if warm_start is not None:
        spec = _spec_from_warm_start(None, spec, warm_start)
    resolved = _resolved(_spec_for(None, spec), list(lengths))
    if warm_start is not None and warm_start.covariates is None:
        # (with covariates, the extra columns depend on the covariates given: fit checks)
        calendar = _warm_calendar_columns(resolved, warm_start)
        _check_warm_start(_network_for(resolved, calendar, calendar), warm_start)
    return resolved


def _warm_calendar_columns(spec: TrainingSpec, model: Model) -> int:
    """The calendar columns a warm-started fit will have, as far as the lengths tell: its
    encoding on the earlier model's frequency (the series' dates are fit's to check)."""
    if spec.calendar == "off" or model.calendar is None:
        return 0
    return len(feature_names(model.calendar.freq, spec.calendar))


def _resolved(spec: TrainingSpec, lengths: list[int]) -> TrainingSpec:
    """bptt.defaults' choices for a valid spec on series of these lengths."""
    if not lengths:
        raise DataError(["series"], "at least one series is required")
    input_size = input_size_for(spec, min(lengths))
    train, _ = window_counts(lengths, input_size, spec.horizon,
                             spec.training.validation_fraction)
    return resolve(spec, input_size, train)


def _prepare(series, horizon: int | None, spec: TrainingSpec | None,
             warm_start: Model | None = None, covariates=None):
    """Validate the input and build what training needs: (problem, named series, scalers,
    scaled series, seasonality). The seasonality is the spec's, else chosen on the validation
    windows (bptt.seasonality.choose_kind; a warm start keeps the earlier model's), and is
    taken out of every series before its scaler is fitted."""
    if warm_start is not None:
        spec = _spec_from_warm_start(horizon, spec, warm_start)
    spec = _spec_for(horizon, spec)
    series = series if isinstance(series, Mapping) else list(series)  # read twice
    named = as_series(series)
    # Resolved from the lengths, as resolve_spec does, so that a plan shown before training is
    # the one trained.
    spec = _resolved(spec, [len(values) for _, values in named])
    input_size = spec.window.input_size
    for i, (name, values) in enumerate(named):
        if len(values) < input_size + spec.horizon:
            raise DataError(["series", i, "values"],
                            f"series {name!r} has {len(values)} points; input_size {input_size} "
                            f"+ horizon {spec.horizon} needs at least {input_size + spec.horizon}")
    values = [v for _, v in named]
    m = spec.season_length or 1
    if spec.seasonality is not None:
        kind = spec.seasonality
    elif warm_start is not None:
        kind = warm_start.seasonality.kind
    else:
        kind, _ = choose_kind(values, m, input_size, spec.horizon,
                              spec.training.validation_fraction)
    seasonality, adjusted = Seasonality.fitted(kind, m, values)
    scalers = fit_scalers(spec.scaler, adjusted)
    scaled = [s.transform(v) for s, v in zip(scalers, adjusted, strict=True)]
    lengths = [len(v) for v in values]
    calendar, note = calendar_inputs.choose(spec.calendar, spec.freq,
                                            calendar_inputs.series_dates(series), lengths)
    declared = declare_covariates(covariates, dict(zip((n for n, _ in named), lengths,
                                                       strict=True)))
    ids = [n for n, _ in named]
    if warm_start is not None:  # the earlier model's covariates, columns and categories
        encoder, declared = continue_encoder(warm_start.covariates, declared, ids)
    else:
        encoder = fit_encoder(declared, ids) if declared else None
    extra = _extra_inputs(calendar, encoder, declared, named)
    train, val = index_windows(scaled, input_size, spec.horizon,
                               spec.training.validation_fraction, extra)
    network = _network_for(spec, *_extra_sizes(extra, spec.horizon))
    if warm_start is not None:
        _check_warm_start(network, warm_start)
    check = capped_validation(val).all()
    return (_Problem(network, train, val, check, _loss_for(spec), spec, calendar, note, encoder),
            named, scalers, scaled, seasonality)


def _extra_inputs(calendar: CalendarInputs | None, encoder: Encoder | None,
                  declared: list, named: list) -> ExtraInputs | None:
    """The inputs besides the values: the calendar columns, then the covariates' (scaled per
    series, bptt.covariates); None when there are neither."""
    if calendar is None and encoder is None:
        return None
    lengths = {name: len(values) for name, values in named}
    parts = [] if calendar is None else [calendar.flat()]
    first = 0 if calendar is None else calendar.columns
    if encoder is None:
        return ExtraInputs(parts[0], calendar=first)
    encoded = encode_covariates(encoder, declared, lengths)
    parts.append(np.concatenate(encoded.steps).astype(np.float32))
    future = tuple(first + encoder.dynamic.index(name) for name in encoder.future)
    return ExtraInputs(np.concatenate(parts, axis=1), calendar=first, future=future,
                       static=encoded.static.astype(np.float32))


def _extra_sizes(extra: ExtraInputs | None, horizon: int) -> tuple[int, int]:
    """(extra columns per step, head inputs) of a network reading `extra`."""
    if extra is None:
        return 0, 0
    return extra.columns.shape[1], extra.head_width(horizon)


def _covariate_tails(problem: _Problem) -> np.ndarray | None:
    """(S, L, dynamic covariates): each training series' covariate columns over its last input
    window, for a forecast that is given no history."""
    if problem.covariates is None:
        return None
    tails = problem.train.data.extra_tails(problem.spec.window.input_size)
    return tails[:, :, problem.train.data.extra.calendar:]


def _covariate_static(problem: _Problem) -> np.ndarray | None:
    return None if problem.covariates is None else problem.train.data.extra.static


VALIDATION_CAP = 4096  # windows in the validation set evaluated after every epoch


def capped_validation(val: WindowIndex, cap: int = VALIDATION_CAP) -> WindowIndex:
    """At most `cap` validation windows, chosen deterministically and spread evenly over the
    series: every series' latest window, then every series' second latest, and so on; when a
    round of them does not fit whole, an evenly spaced part of it. Fixed for the whole fit, so
    that epochs compare; all of them when there are no more than `cap`."""
    if len(val) <= cap:
        return val
    latest = np.zeros(int(val.series.max()) + 1, np.int64)
    np.maximum.at(latest, val.series, val.start)
    rank = latest[val.series] - val.start  # 0 for each series' latest window
    order = np.lexsort((val.series, rank))  # rank by rank, series by series within one
    tiers = np.cumsum(np.bincount(rank))
    whole = int(np.searchsorted(tiers, cap, side="right"))  # rounds that fit whole
    done = int(tiers[whole - 1]) if whole else 0
    rest = order[done : int(tiers[whole])]
    spread = rest[np.linspace(0, len(rest) - 1, cap - done).astype(np.int64)]
    return val.take(np.sort(np.concatenate([order[:done], spread])))


def _network_for(spec: TrainingSpec, columns: int = 0, head: int = 0) -> NetworkSpec:
    """The network a resolved spec trains: the value and `columns` extra columns per step
    (calendar, covariates), `head` head inputs (ExtraInputs.head), and a head output for every
    horizon step and quantile."""
    return NetworkSpec(cell=spec.model.cell, input_size=1 + columns,
                       hidden_size=spec.model.hidden_size,
                       num_layers=spec.model.num_layers, nonlinearity=spec.model.nonlinearity,
                       dropout=spec.model.dropout,
                       output_size=spec.horizon * (1 + len(spec.quantiles or ())),
                       head_inputs=head)


def _check_warm_start(network: NetworkSpec, warm_start: Model) -> None:
    """SpecError at ["warm_start"] when the earlier model's weights cannot fill `network`."""
    mismatch = _mismatch(network, warm_start.network)
    if mismatch:
        raise SpecError([{"loc": ["warm_start"], "msg": mismatch}])


def _spec_from_warm_start(horizon: int | None, spec: TrainingSpec | None,
                          model: Model) -> TrainingSpec:
    """The spec of a warm-started fit: the model's own when none is given; otherwise the
    given one with its open sizes (hidden size, input window) taken from the model, so that
    \"continue training\" needs no restating of the architecture (an "auto" calendar takes the
    model's encoding, recomputed from these series' dates)."""
    used = "off" if model.calendar is None else model.calendar.encoding
    if spec is None:
        spec = dataclasses.replace(model.spec, horizon=horizon or model.spec.horizon)
        return dataclasses.replace(spec, calendar=used if spec.calendar == "auto" else
                                   spec.calendar)
    return dataclasses.replace(
        spec,
        calendar=used if spec.calendar == "auto" else spec.calendar,
        model=dataclasses.replace(spec.model, hidden_size=spec.model.hidden_size
                                  or model.network.hidden_size),
        window=dataclasses.replace(spec.window, input_size=spec.window.input_size
                                   or model.spec.window.input_size),
    )


def _mismatch(wanted: NetworkSpec, have: NetworkSpec) -> str:
    """How this fit's network differs from the warm-start model's, in words ("" if not)."""
    fields = ("cell", "input_size", "hidden_size", "num_layers", "nonlinearity", "output_size",
              "head_inputs")
    diffs = [f"{f} {getattr(wanted, f)!r} vs {getattr(have, f)!r}" for f in fields
             if getattr(wanted, f) != getattr(have, f)]
    if not diffs:
        return ""
    return (f"the warm-start model's network does not fit this spec ({'; '.join(diffs)}; "
            "output_size is horizon x (1 + number of quantiles))")


def _train_member(problem: _Problem, optimizer, run: _MemberRun, history: list[EpochMetrics],
                  before: tuple[list[np.ndarray], list[FinishedMember]],
                  callbacks: Callbacks) -> None:
    """Epochs (evaluation rounds) of one member until its budget or early stopping, each
    epoch's metrics appended to `history`; `before`: the members finished before it (their
    weights, how they ended), for its checkpoints."""
    t = problem.spec.training
    clip = ClipSpec(t.clip.max_norm, t.clip.max_value)
    train, rng = problem.train, run.rng
    updates = run.epoch * epoch_updates(t, len(train))
    patience = t.early_stopping_patience
    sampler = _BalancedSampler(train) if t.max_steps is not None else None
    # the member's step and evaluation, made once (bptt.prepared) where they apply
    prepared = prepare(problem.network, run.params, loss=problem.loss, optimizer=optimizer,
                       clip=clip, truncate=t.truncate, threads=t.threads)
    evaluation = prepare_evaluation(problem.network, run.params, problem.check, problem.loss,
                                    t.threads)
    # (checked first too: a run resumed from its early-stopping epoch's checkpoint is done)
    while run.epoch < t.epochs and not (patience and run.bad_epochs >= patience):
        run.epoch += 1
        began = time.perf_counter()
        losses, norms, clipped, flows = [], [], 0, []
        if sampler is None:  # a full pass over the shuffled training windows
            order = rng.permutation(len(train))
            batches = [order[first : first + t.batch_size]
                       for first in range(0, len(order), t.batch_size)]
        else:  # the round's updates, the last round cut to the budget
            count = min(t.eval_every, t.max_steps - updates)
            batches = sampler.round_rows(rng, count, t.batch_size)
        for rows in batches:
            if callbacks.should_cancel and callbacks.should_cancel():
                raise TrainingCancelled(f"cancelled during epoch {run.epoch}")
            batch = train.gather(rows)
            x = np.ascontiguousarray(batch.x.transpose(1, 0, 2))  # (L, b, input_size)
            masks = dropout_masks(problem.network, len(batch), rng, run.params.dtype)
            updates += 1
            if prepared is not None:
                report = prepared(x, batch.y[None], optimizer_state=run.optimizer_state,
                                  lr=run.learning_rate, step=updates, head_features=batch.head)
            else:
                report = train_step(problem.network, run.params, x, batch.y[None],
                                    loss=problem.loss, optimizer=optimizer,
                                    optimizer_state=run.optimizer_state, lr=run.learning_rate,
                                    clip=clip, truncate=t.truncate, dropout_masks=masks,
                                    step=updates, threads=t.threads, head_features=batch.head)
            losses.append(report.loss)
            norms.append(report.grad_norm)
            clipped += report.clipped
            flows.append(report.grad_flow[-1])
        val_loss = None
        if len(problem.check):
            val_loss = evaluation() if evaluation is not None else evaluate(
                problem.network, run.params, problem.check, problem.loss, t.threads)
            if not math.isfinite(val_loss):  # diverged: no later epoch can be trusted either
                raise NonFiniteError("validation loss", updates, f"epoch {run.epoch}")
        monitored = val_loss if val_loss is not None else float(np.mean(losses))
        if monitored < run.best_loss:
            run.best_params, run.best_loss = run.params.copy(), monitored
            run.best_epoch, run.bad_epochs = run.epoch, 0
        else:
            run.bad_epochs += 1
        stopped = None  # the loop's condition, and fit's wording, for this epoch
        if run.epoch >= t.epochs:
            stopped = "completed"
        elif patience and run.bad_epochs >= patience:
            stopped = "early_stopping"
        flow = np.mean(flows, axis=0)
        metrics = EpochMetrics(run.epoch, float(np.mean(losses)), val_loss, float(np.mean(norms)),
                               float(np.max(norms)), clipped / len(norms), run.learning_rate,
                               time.perf_counter() - began, flow.tolist(), run.member,
                               _insight(problem, run.params, flow, norms)
                               if callbacks.insight else None, stopped, updates)
        history.append(metrics)
        run.learning_rate = run.schedule.next(monitored)
        if callbacks.on_epoch:
            callbacks.on_epoch(metrics)
        if callbacks.on_checkpoint:
            callbacks.on_checkpoint(run.checkpoint(*before))


def epoch_updates(training: TrainingConfig, train_windows: int) -> int:
    """Optimizer updates in one full epoch of a resolved spec: training.eval_every with a
    budget in updates (max_steps; the last epoch may be shorter), else one pass's batches."""
    if training.max_steps is not None:
        return training.eval_every
    return max(1, math.ceil(train_windows / training.batch_size))


class _BalancedSampler:
    """Batches of training windows sampled balanced across series: a series drawn uniformly,
    then one of its training windows uniformly.

    Why by series: the accuracy metrics (MASE, sMAPE, the combination's relative MAE) weight
    every series equally, whatever its length; sampled uniformly over windows, as full-pass
    epochs do, a long series would dominate the gradient in proportion to its length. Each
    round draws its series from fresh permutations of them, one after another, so that within
    a round every series contributes as often as any other (within one)."""

    def __init__(self, train: WindowIndex) -> None:
        # training windows are stored series by series, earliest first (index_windows)
        self.series, self.first, self.count = np.unique(train.series, return_index=True,
                                                        return_counts=True)

    def round_rows(self, rng: np.random.Generator, updates: int,
                   batch_size: int) -> list[np.ndarray]:
        """The rows of the training windows of `updates` batches."""
        draws = updates * batch_size
        laps = math.ceil(draws / len(self.series))
        # one permutation per row: the draws of `laps` rng.permutation calls in one call (a
        # round on few series takes dozens of laps, and the calls cost more than its update)
        laid = np.broadcast_to(np.arange(len(self.series)), (laps, len(self.series)))
        picks = rng.permuted(laid, axis=1).ravel()[:draws]
        rows = self.first[picks] + rng.integers(0, self.count[picks])
        return list(rows.reshape(updates, batch_size))


INSIGHT_SAMPLE = 64  # training windows the insight diagnostics look at


def _insight(problem: _Problem, params: np.ndarray, flow: np.ndarray, norms: list[float]) -> dict:
    """The epoch's BPTT insight on a fixed, evenly spread sample of training windows (fixed so
    that epochs compare, and drawn without the run's generator so that training is unchanged).
    The clipping suggestion follows AutoClip over this epoch's pre-clip norms."""
    train = problem.train
    picks = np.unique(np.linspace(0, len(train) - 1, min(INSIGHT_SAMPLE, len(train))).astype(int))
    sample = train.gather(picks)
    x = np.ascontiguousarray(sample.x.transpose(1, 0, 2))
    return epoch_insight(problem.network, params, x, sample.y[None], problem.loss,
                         grad_flow=flow, norm_history=norms,
                         truncate=problem.spec.training.truncate, head_features=sample.head)


def evaluate(network: NetworkSpec, params: np.ndarray, windows: Windows, loss,
             threads: int = 1) -> float:
    """Mean loss of one network on some windows (no gradients)."""
    out, _ = predict(network, params, windows.x.transpose(1, 0, 2), threads=threads,
                     head_features=windows.head)
    known = np.isfinite(windows.y)
    total, _ = loss.sum_and_grad(out, windows.y, known)
    return total / max(int(known.sum()) * loss.outputs_per_target, 1)


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


def _one_thread_each(problem: _Problem) -> _Problem:
    """The problem as each member trains it when members train side by side: its batches
    whole on one thread, as a one-thread fit trains them (so its weights are the same)."""
    training = dataclasses.replace(problem.spec.training, threads=1)
    return dataclasses.replace(problem, spec=dataclasses.replace(problem.spec, training=training))


def _copy_state(state: dict) -> dict:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in state.items()}

