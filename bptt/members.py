"""Ensemble members trained side by side: one member per thread, callbacks in member order.

Members differ only by seed and never share state, so with `threads` > 1 fit trains up to that
many at once, each thread taking the next member when it has finished one. The kernels release
the GIL (nogil), so the threads run on separate cores; BLAS is held to one thread meanwhile, as
the threads already fill the cores (see parallel.py). Each member runs its batches whole, on its
own thread, exactly as a fit on one thread runs them: a member's weights do not depend on the
thread count.

What a caller sees does not depend on it either. A member's metrics and checkpoints are held
back until every member before it has finished, then handed to the callbacks in the order a
one-thread fit gives them, with the same finished members in each checkpoint. So a service
records the same evaluations, a checkpoint resumes exactly as before (the members after it are
trained again from their seeds), and when members fail, the first one's error is raised after
its evaluations, as one thread would. Callbacks are called one at a time, from the training
threads.
"""

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .parallel import single_threaded_blas


@dataclasses.dataclass
class _Member:
    """What one member has produced that the callbacks have not seen yet."""

    events: list = dataclasses.field(default_factory=list)  # ("epoch" | "checkpoint", value)
    result: object = None
    error: BaseException | None = None
    done: bool = False


def train_members(members: range, threads: int, train_one: Callable, callbacks,
                  finished_of: Callable[[object], tuple[object, object]],
                  before: tuple[list, list, list] = ([], [], [])) -> tuple[list, list]:
    """train_one(member, callbacks) for every member, up to `threads` at once: (their results
    in member order, the metrics the callbacks were given, in that order).

    train_one trains one member, calling the callbacks it is given (on_epoch, on_checkpoint,
    should_cancel) as fit does, and returns what finished_of turns into (summary, best
    weights): what the checkpoints of later members list as finished (Checkpoint.members and
    .finished). The checkpoints that train_one passes on get them filled in here, in order,
    after `before`: (summaries, weights, metrics) of the members finished before these (a
    resumed fit's); the metrics returned start with those. Raises the error of the first member
    (by number) that failed.
    """
    ensemble = _Ensemble(members, callbacks, finished_of, before)
    with single_threaded_blas(), ThreadPoolExecutor(threads, "bptt-member") as pool:
        list(pool.map(lambda member: ensemble.run(member, train_one), members))
    for member in members:
        if ensemble.of[member].error is not None:
            raise ensemble.of[member].error
    return [ensemble.of[m].result for m in members], ensemble.history


class _Ensemble:
    """train_members' shared state: per member what it produced, and how far the callbacks
    have been given it (`lead`: the first member not yet finished and delivered)."""

    def __init__(self, members: range, callbacks, finished_of, before) -> None:
        self.callbacks, self.finished_of = callbacks, finished_of
        self.lock = threading.RLock()  # callbacks run under it, one at a time
        self.of = {m: _Member() for m in members}
        self.lead = members.start
        # the finished members' summaries and best weights, and the metrics delivered, in order
        self.summaries, self.weights, self.history = (list(b) for b in before)
        self.failed: int | None = None  # the first member (by number) that raised

    def run(self, member: int, train_one: Callable) -> None:
        """Train one member on this thread, recording what it produces (or raises)."""
        hooks = dataclasses.replace(
            self.callbacks,
            on_epoch=lambda metrics: self._emit(member, "epoch", metrics),
            # none asked for, none made (fit builds each one only for a callback)
            on_checkpoint=(lambda checkpoint: self._emit(member, "checkpoint", checkpoint))
            if self.callbacks.on_checkpoint else None,
            should_cancel=lambda: self._should_stop(member))
        result, error = None, None
        try:
            result = train_one(member, hooks)
        except BaseException as exc:  # noqa: BLE001 (train_members raises it, in member order)
            error = exc
        with self.lock:
            mine = self.of[member]
            mine.result, mine.error, mine.done = result, error, True
            if error is not None and (self.failed is None or member < self.failed):
                self.failed = member  # members after it stop; those before it go on
            self._deliver()

    def _should_stop(self, member: int) -> bool:
        """Whether the member is to stop: a member before it failed (one thread would never
        have started it), or the fit's own should_cancel says so."""
        with self.lock:
            if self.failed is not None and member > self.failed:
                return True
            ask = self.callbacks.should_cancel
            return bool(ask and ask())

    def _emit(self, member: int, kind: str, value) -> None:
        with self.lock:
            self.of[member].events.append((kind, value))
            self._deliver()

    def _deliver(self) -> None:
        """Hand the callbacks every event they may see now, in one-thread order."""
        while self.lead in self.of:
            lead = self.of[self.lead]
            for kind, value in lead.events:
                if kind == "epoch":
                    self.history.append(value)
                    if self.callbacks.on_epoch:
                        self.callbacks.on_epoch(value)
                elif self.callbacks.on_checkpoint:
                    self.callbacks.on_checkpoint(self._as_one_thread(value))
            lead.events.clear()
            if not lead.done or lead.error is not None:
                return
            summary, weights = self.finished_of(lead.result)
            self.summaries.append(summary)
            self.weights.append(weights)
            self.lead += 1

    def _as_one_thread(self, checkpoint):
        """The checkpoint with the finished members (their weights and how they ended) a
        one-thread fit gives it."""
        return dataclasses.replace(checkpoint, finished=list(self.weights),
                                   members=list(self.summaries))
