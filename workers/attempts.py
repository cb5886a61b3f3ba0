"""One training attempt: claim the job, train it with bptt, stream everything to the database.

Metrics and the checkpoint of each epoch go to the database together, in one fenced
transaction, so a resumed attempt starts from the last checkpoint and every epoch's metrics row
exists exactly once. The checkpoint holds the training state only, so that it does not grow
with the epochs: a resumed attempt gives the fit its earlier epochs' metrics from the rows. A
heartbeat thread renews the lease while Numba kernels run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import bptt
from bptt import DataError, NonFiniteError, initial_states
from service.settings import Settings
from service.store import dataset_rows, plans, queue
from service.store.tables import Checkpoint, EpochMetric, Job, Sweep, TrainedModel
from workers import claims
from workers.claims import Claim, LeaseLost
from workers.limits import AttemptLimits, LimitExceeded, record_usage, return_freed_memory

CANCEL_POLL_SECONDS = 0.5  # how often, at most, the trainer asks the database about a cancel

log = logging.getLogger(__name__)


class Heartbeat:
    """Renews a claim's lease every third of the lease until stopped; remembers a lost lease."""

    def __init__(self, sessions: sessionmaker[Session], claim: Claim, lease_seconds: int):
        self.sessions, self.claim, self.lease_seconds = sessions, claim, lease_seconds
        self.lost = threading.Event()
        # batches done in the epoch in progress (JobCallbacks'), written with each renewal
        self.epoch_batches: Callable[[], int | None] = lambda: None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bptt-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.lease_seconds)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                with self.sessions() as session:
                    claims.renew_lease(session, self.claim, lease_seconds=self.lease_seconds,
                                       epoch_batches=self.epoch_batches())
            except LeaseLost:
                self.lost.set()
                return
            except Exception:  # a database hiccup: try again at the next beat
                log.exception("heartbeat for job %s failed", self.claim.job_id)


class JobCallbacks:
    """bptt callbacks that write each epoch to the database and watch for cancellation."""

    def __init__(self, sessions: sessionmaker[Session], claim: Claim, heartbeat: Heartbeat,
                 epochs_done: int, plan: bptt.TrainingSpec, finished: list[dict],
                 limits: AttemptLimits | None = None):
        self.sessions, self.claim, self.heartbeat = sessions, claim, heartbeat
        self.limits = limits
        self.epoch = epochs_done  # epochs are numbered across ensemble members, from 1
        self.budget, self.ensemble = plan.training.epochs, plan.training.ensemble
        self.finished = list(finished)  # members done, as the job row has them (claims.Job.members)
        self.pending: dict | None = None
        self.pending_stop: dict | None = None
        self.cancelled = False
        self._next_poll = 0.0
        self.batches = 0  # asked between batches: the batches of the epoch in progress
        heartbeat.epoch_batches = lambda: self.batches

    def on_epoch(self, metrics: bptt.EpochMetrics) -> None:
        self.epoch += 1
        self.batches = 0
        row = asdict(metrics)
        # the job's progress (the updates: epochs x the plan's eval_every), not metrics columns
        for key in ("epoch", "member", "stopped", "steps"):
            row.pop(key)
        self.pending = row
        self.pending_stop = None if metrics.stopped is None else {
            "member": metrics.member + 1, "epochs": metrics.epoch, "stopped": metrics.stopped}

    def on_checkpoint(self, checkpoint: bptt.Checkpoint) -> None:
        if self.pending_stop is not None:  # the member's last epoch: its checkpoint has its best
            self.finished.append({**self.pending_stop, "best_epoch": checkpoint.best_epoch})
        with self.sessions() as session:
            claims.record_epoch(session, self.claim, epoch=self.epoch,
                              epochs_total=self.epochs_total(), members=list(self.finished),
                              metrics=self.pending, checkpoint=checkpoint.to_bytes())

    def epochs_total(self) -> int:
        """The finished members' epochs and the whole budget of each member still to train."""
        done = sum(m["epochs"] for m in self.finished)
        return done + (self.ensemble - len(self.finished)) * self.budget

    def should_cancel(self) -> bool:
        self.batches += 1
        if self.limits is not None:  # between batches: the job time limit (LimitExceeded)
            self.limits.check_time()
        if self.heartbeat.lost.is_set():
            return True
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + CANCEL_POLL_SECONDS
            with self.sessions() as session:
                self.cancelled = claims.cancel_requested(session, self.claim)
        return self.cancelled

    def as_bptt(self) -> bptt.Callbacks:
        return bptt.Callbacks(on_epoch=self.on_epoch, on_checkpoint=self.on_checkpoint,
                              should_cancel=self.should_cancel, insight=True)


def run_training(sessions: sessionmaker[Session], settings: Settings, job_id: str,
                 owner: str) -> str:
    """Claim and train one job; returns what happened (for logs and tests)."""
    with sessions() as session:
        claim = claims.claim_job(session, job_id=job_id, owner=owner,
                                 lease_seconds=settings.lease_seconds,
                                 max_attempts=settings.max_attempts)
        if claim is None:
            return "not claimed"
        job = session.get(Job, job_id)
        spec_data, tenant_id = job.spec, job.tenant_id
        plan_data, finished = job.resolved_spec, job.members or []
        warm_from = job.warm_start_job_id
        metric = (session.scalar(select(Sweep.metric).where(Sweep.id == job.sweep_id))
                  if job.sweep_id else None)
        warm_bytes = (session.scalar(select(TrainedModel.weights)
                                     .where(TrainedModel.job_id == warm_from))
                      if warm_from else None)
        try:  # sent with the job, or read from its uploaded dataset (never from the broker)
            series = dataset_rows.series_for_job(session, job_id)
        except dataset_rows.DatasetGone as exc:
            series, gone = None, str(exc)
        covariates = (None if series is None
                      else dataset_rows.covariates_for_job(session, job_id, series))
        saved = session.scalar(select(Checkpoint).where(Checkpoint.job_id == job_id))
        resume = bptt.Checkpoint.from_bytes(saved.data) if saved is not None else None
        epochs_done = saved.epoch if saved is not None else 0
        history = _history(session, job_id, resume, finished) if resume is not None else None
    context = {"job_id": job_id, "tenant_id": tenant_id, "attempt": claim.attempt}
    log.info("job %s: attempt %d claimed by %s, resuming after epoch %d", job_id,
             claim.attempt, owner, epochs_done, extra=context)
    if series is None:
        _end(sessions, claim, "failed", f"invalid job: its dataset {gone} was deleted")
        return "invalid"
    if warm_from and warm_bytes is None:
        _end(sessions, claim, "failed", f"invalid job: the model of job {warm_from} that it "
                                        "continues from no longer exists")
        return "invalid"
    warm = bptt.Model.from_bytes(warm_bytes) if warm_bytes else None
    limits = AttemptLimits(settings)
    with Heartbeat(sessions, claim, settings.lease_seconds) as heartbeat:
        try:
            with limits:
                outcome = _train(sessions, settings, claim, heartbeat, limits, _Job(
                    spec_data, plan_data, finished, series, resume, history, epochs_done, warm,
                    metric, covariates))
        except LeaseLost:
            outcome = "lease lost"
        except MemoryError:  # over the ceiling: the job's arrays are freed once out of here
            outcome = "memory ceiling"
        if outcome == "memory ceiling":  # outside the limit: the ending needs memory too
            try:
                _end(sessions, claim, "failed", limits.memory_error())
            except LeaseLost:
                outcome = "lease lost"
    if outcome != "succeeded":  # a success records its usage as it ends (see _train)
        record_usage(sessions, job_id, claim.attempt, limits.usage())
    # The kernels' caches are kept for the next step's reuse; after a job they would keep a
    # large job's memory resident in the worker until another job needs as much.
    bptt.release_scratch()
    return_freed_memory()
    return outcome


@dataclasses.dataclass(frozen=True)
class _Job:
    """What an attempt reads from the database before it trains."""

    spec: dict  # the request (Job.spec)
    plan: dict | None  # the resolved spec (Job.resolved_spec); None for jobs from before it
    finished: list[dict]  # members finished before this attempt (Job.members)
    series: list[dict]
    resume: bptt.Checkpoint | None
    history: list[bptt.EpochMetrics] | None  # the metrics of the epochs before `resume`
    epochs_done: int
    warm: bptt.Model | None
    metric: str | None  # the sweep's metric, for a trial
    covariates: dict | None  # in the engine's form (dataset_rows.covariates_for_job); None: none


def _train(sessions, settings: Settings, claim: Claim, heartbeat: Heartbeat,
           limits: AttemptLimits, job: _Job) -> str:
    """The fit itself and the job's ending; LeaseLost and MemoryError (the memory ceiling's)
    propagate to the caller."""
    series, warm = job.series, job.warm
    try:
        spec = plans.for_workers(bptt.TrainingSpec.from_dict(job.spec), settings)
        if job.plan is not None:  # resolved at submit: train exactly what the document shows
            plan = plans.for_workers(bptt.TrainingSpec.from_dict(job.plan), settings)
        else:
            plan = plans.for_workers(
                bptt.resolve_spec(plans.lengths(series), spec, warm_start=warm), settings)
        callbacks = JobCallbacks(sessions, claim, heartbeat, job.epochs_done, plan, job.finished,
                                 limits)
        with sessions() as session:
            claims.set_stage(session, claim, "training", epochs_total=callbacks.epochs_total(),
                           resolved_spec=plan.to_dict() if job.plan is None else None)
        result = bptt.fit(series, spec=plan, callbacks=callbacks.as_bptt(), resume=job.resume,
                          history=job.history, warm_start=warm, covariates=job.covariates)
        backtest = None
        if plan.cross_validation is not None:  # a second fit, on the series cut back
            with sessions() as session:
                claims.set_stage(session, claim, "cross_validation")
            # From the request, not the plan: open choices are made again for the shorter
            # series, as they would be for a fit on them alone.
            backtest = bptt.cross_validate(
                series, spec=spec, callbacks=bptt.Callbacks(should_cancel=callbacks.should_cancel),
                covariates=job.covariates).to_dict()
    except bptt.TrainingCancelled:
        if heartbeat.lost.is_set():
            raise LeaseLost(claim.job_id) from None
        _end(sessions, claim, "cancelled", "cancelled on request")
        return "cancelled"
    except NonFiniteError as exc:  # deterministic: another attempt would diverge the same way
        _end(sessions, claim, "failed", f"training diverged: {exc}")
        return "diverged"
    except (bptt.SpecError, DataError) as exc:  # bad input the API should have refused
        _end(sessions, claim, "failed", f"invalid job: {exc}")
        return "invalid"
    except LimitExceeded as exc:  # another attempt would run as long: the job ends here
        _end(sessions, claim, "failed", str(exc))
        return "time limit"
    except (LeaseLost, MemoryError):
        raise
    except Exception as exc:
        log.exception("job %s: attempt %d failed", claim.job_id, claim.attempt,
                      extra={"job_id": claim.job_id, "attempt": claim.attempt})
        if claim.attempt >= settings.max_attempts:
            _end(sessions, claim, "failed", f"failed after {claim.attempt} attempts: {exc}")
            return "failed"
        with sessions() as session:
            claims.release(session, claim, error=f"attempt {claim.attempt} failed: {exc}")
        queue.wake(settings, queue.TRAIN_TASK, claim.job_id)
        return "released"
    weights = result.model.to_bytes()
    # None (a gap in series sent as JSON) becomes NaN; a dataset's arrays pass as they are.
    states = initial_states(result.model, {s["id"]: np.asarray(s["values"], dtype=np.float64)
                                           for s in series}, job.covariates)
    # before the job reads succeeded, so that a client sees what it took as soon as it ends
    record_usage(sessions, claim.job_id, claim.attempt, limits.usage())
    with sessions() as session:
        claims.succeed(session, claim, weights=weights, sha256=hashlib.sha256(weights).hexdigest(),
                     model_card=result.model.card(), best_epoch=_global_best(result),
                     score=_score(result, backtest, job.metric), cross_validation=backtest,
                     states=states, epochs=len(result.history), members=_members(result))
    return "succeeded"


def _history(session: Session, job_id: str, resume: bptt.Checkpoint,
             finished: list[dict]) -> list[bptt.EpochMetrics]:
    """The metrics of the epochs before the checkpoint, from the job's rows: the checkpoint
    holds none (they would make every write grow with the epochs), and the rows were written
    with it. Which member and epoch each row is comes from the checkpoint; why a member's last
    epoch was its last, from `finished` (Job.members)."""
    trained = resume.trained_epochs()
    rows = session.scalars(select(EpochMetric)
                           .where(EpochMetric.job_id == job_id, EpochMetric.epoch <= len(trained))
                           .order_by(EpochMetric.epoch)).all()
    ends = {(m["member"] - 1, m["epochs"]): m["stopped"] for m in finished}
    # (a row missing would leave the history short: fit refuses it, and the attempt fails)
    return [bptt.EpochMetrics(epoch=epoch, member=member, stopped=ends.get((member, epoch)),
                              **{name: getattr(row, name) for name in _METRIC_FIELDS},
                              grad_flow=row.grad_flow or [])
            for (member, epoch), row in zip(trained, rows, strict=False)]


# EpochMetrics fields with a column of their own in epoch_metrics (grad_flow may be null)
_METRIC_FIELDS = ("train_loss", "val_loss", "grad_norm", "max_grad_norm", "clip_fraction",
                  "learning_rate", "seconds", "insight")


def _members(result: bptt.FitResult) -> list[dict]:
    """Every member's summary as the engine reports it at the end (what JobCallbacks recorded
    member by member, now from the fit's own account)."""
    epochs = Counter(m.member for m in result.history)
    return [{"member": k + 1, "epochs": epochs[k], "best_epoch": best, "stopped": stopped}
            for k, (best, stopped) in enumerate(zip(result.best_epochs, result.stopped,
                                                    strict=True))]


def _global_best(result: bptt.FitResult) -> int:
    """Member 0's best epoch as a 1-based index into the job's epoch numbering (epochs of all
    members in order, as JobCallbacks numbers them)."""
    return next(i for i, m in enumerate(result.history, start=1)
                if m.member == 0 and m.epoch == result.best_epochs[0])


def _score(result: bptt.FitResult, backtest: dict | None, metric: str | None) -> float | None:
    """What sweeps rank this job by: its cross-validation's mean MASE for a cv_mase sweep,
    else the mean over members of each member's best monitored loss (validation, or training
    without validation windows)."""
    if metric == "cv_mase" and backtest is not None:
        return backtest["mase"]
    best: dict[int, float] = {}
    for m in result.history:
        loss = m.val_loss if m.val_loss is not None else m.train_loss
        best[m.member] = min(best.get(m.member, loss), loss)
    return sum(best.values()) / len(best) if best else None


def _end(sessions, claim: Claim, status: str, error: str) -> None:
    with sessions() as session:
        claims.end(session, claim, status=status, error=error)
