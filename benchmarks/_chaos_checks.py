"""The chaos soak's verdict: the database and the API against what the clients were told.

Duplicates: work done twice (two metrics rows for one epoch, two jobs for one Idempotency-Key,
two attempts of a job writing at once, an append applied more often than it was sent).
Lost: work promised and missing (a 202 without its row, anything not terminal after the drain,
an epoch without its metrics row, a confirmed append not in the series, a succeeded job whose
model does not load).
"""

from __future__ import annotations

import hashlib
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from _chaos_load import SERIES_LENGTH, TERMINAL, Load
from sqlalchemy import func, select

import bptt
from service.settings import Settings
from service.store import db
from service.store.tables import EpochMetric, ForecastBatch, Job, JobAttempt, SeriesState, Sweep


@dataclass
class Result:
    """Figures to print, and what went wrong."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    duplicates: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)

    def duplicated(self, n: int, what: str) -> None:
        if n:
            self.duplicates += n
            self.problems.append(f"duplicated: {what}")

    def missing(self, n: int, what: str) -> None:
        if n:
            self.lost += n
            self.problems.append(f"lost: {what}")


def check(settings: Settings, url: str, load: Load) -> Result:
    """Every check of the soak, on the stack's database and API."""
    result = Result()
    sessions = db.session_factory(settings)
    try:
        with sessions() as session:
            _terminal_and_promised(session, load, result)
            _metrics(session, result)
            _attempts(session, result)
            _appends(session, load, result)
            succeeded = list(session.scalars(select(Job.id).where(Job.status == "succeeded")))
    finally:
        sessions.kw["bind"].dispose()
    _models(url, load.token, succeeded, result)
    return result


def _terminal_and_promised(session, load: Load, result: Result) -> None:
    jobs = dict(session.execute(select(Job.id, Job.status)).all())
    sweeps = dict(session.execute(select(Sweep.id, Sweep.status)).all())
    batches = dict(session.execute(select(ForecastBatch.id, ForecastBatch.status)).all())
    open_sweeps = session.scalar(select(func.count()).select_from(Sweep)
                                 .where(Sweep.finished_at.is_(None)))
    for name, rows, promised in (("jobs", jobs, load.jobs),
                                 ("forecast batches", batches, load.batches)):
        counts = Counter(rows.values())
        result.lines.append((f"{name} by status", _counts(counts)))
        result.missing(sum(n for s, n in counts.items() if s not in TERMINAL),
                       f"{name} not terminal after the drain")
        result.missing(len(promised - set(rows)), f"{name} a 202 named that do not exist")
    result.lines.append(("sweeps by status", _counts(Counter(sweeps.values()))))
    result.missing(open_sweeps, "sweeps not settled after the drain")
    result.missing(len(load.sweeps - set(sweeps)), "sweeps a 202 named that do not exist")
    keys = session.execute(select(Job.tenant_id, Job.idempotency_key, func.count())
                           .where(Job.idempotency_key.is_not(None))
                           .group_by(Job.tenant_id, Job.idempotency_key)
                           .having(func.count() > 1)).all()
    result.duplicated(sum(n - 1 for *_, n in keys), "jobs stored twice for one Idempotency-Key")


def _metrics(session, result: Result) -> None:
    """One row per job and epoch, epochs 1..epochs_done with none missing, and for succeeded
    jobs the members' epochs adding up to the rows."""
    doubled = session.execute(select(EpochMetric.job_id, EpochMetric.epoch, func.count())
                              .group_by(EpochMetric.job_id, EpochMetric.epoch)
                              .having(func.count() > 1)).all()
    result.duplicated(sum(n - 1 for *_, n in doubled), "metrics rows for one job and epoch")
    epochs = defaultdict(list)
    for job_id, epoch in session.execute(select(EpochMetric.job_id, EpochMetric.epoch)):
        epochs[job_id].append(epoch)
    gaps = members_off = rows = 0
    for job_id, status, done, members in session.execute(
            select(Job.id, Job.status, Job.epochs_done, Job.members)):
        have = sorted(set(epochs.get(job_id, [])))
        rows += len(have)
        if have != list(range(1, done + 1)):
            gaps += 1
            result.problems.append(f"job {job_id}: epochs {have[:3]}..{have[-3:]} of {done}")
        if status == "succeeded" and sum(m["epochs"] for m in members or []) != done:
            members_off += 1
            result.problems.append(f"job {job_id}: members' epochs do not add up to {done}")
    result.lines.append(("metrics rows (one per job, member and epoch)", f"{rows}"))
    result.missing(gaps, "jobs whose metrics rows are not exactly epochs 1..epochs_done")
    result.missing(members_off, "succeeded jobs whose members' epochs miss rows")


def _attempts(session, result: Result) -> None:
    """Fencing, from the attempts audit: each attempt's last write came before the next
    attempt's claim, every claim was audited, and every attempt of a finished job ended."""
    by_job = defaultdict(list)
    for row in session.scalars(select(JobAttempt).order_by(JobAttempt.job_id,
                                                           JobAttempt.attempt)):
        by_job[row.job_id].append(row)
    claimed = dict(session.execute(select(Job.id, Job.attempts)).all())
    overlaps = unaudited = open_ends = 0
    for job_id, attempts in by_job.items():
        for before, after in zip(attempts, attempts[1:], strict=False):
            if before.last_seen_at > after.claimed_at:
                overlaps += 1
                result.problems.append(
                    f"job {job_id}: attempt {before.attempt} wrote at {before.last_seen_at}, "
                    f"after attempt {after.attempt} claimed it at {after.claimed_at}")
        open_ends += sum(1 for a in attempts if a.outcome is None)
    for job_id, count in claimed.items():
        if len(by_job.get(job_id, [])) != count:
            unaudited += 1
    outcomes = Counter(a.outcome for rows in by_job.values() for a in rows)
    result.lines.append(("attempts by outcome", _counts(outcomes)))
    result.lines.append(("jobs run by more than one attempt",
                         f"{sum(1 for rows in by_job.values() if len(rows) > 1)}"))
    result.lines.append(("attempts overlapping the next one (fencing)", f"{overlaps}"))
    result.duplicated(overlaps, "attempts that wrote after the next attempt's claim")
    if unaudited or open_ends:
        result.problems.append(f"{unaudited} jobs whose claims are not all audited, "
                               f"{open_ends} attempts of finished jobs never ended")


def _appends(session, load: Load, result: Result) -> None:
    """Each series got every confirmed append, and no more than were sent."""
    short = extra = applied_total = 0
    for (job_id, series_id), sent in sorted(load.appends.items()):
        row = session.scalar(select(SeriesState).where(SeriesState.job_id == job_id,
                                                       SeriesState.series_id == series_id))
        applied = 0 if row is None else row.version - 1
        if row is not None and row.length != SERIES_LENGTH + applied:
            result.problems.append(f"{job_id}/{series_id}: length {row.length} after "
                                   f"{applied} appends")
        applied_total += applied
        short += max(0, sent["confirmed"] - applied)
        extra += max(0, applied - sent["confirmed"] - sent["unknown"])
    confirmed = sum(s["confirmed"] for s in load.appends.values())
    unknown = sum(s["unknown"] for s in load.appends.values())
    result.lines.append(("appends confirmed / without an answer / applied",
                         f"{confirmed} / {unknown} / {applied_total}"))
    result.missing(short, "confirmed appends not in their series")
    result.duplicated(extra, "appends applied more often than sent")


def _models(url: str, token: str, succeeded: list[str], result: Result) -> None:
    """Every succeeded job's model downloads, matches its ETag and loads."""
    broken = 0
    for job_id in succeeded:
        request = urllib.request.Request(f"{url}/v1/jobs/{job_id}/model",
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                data, etag = answer.read(), answer.headers.get("ETag", "").strip('"')
            bptt.Model.from_bytes(data)
            if hashlib.sha256(data).hexdigest() != etag:
                raise ValueError("sha256 differs from the ETag")
        except Exception as exc:  # each failure is reported
            broken += 1
            result.problems.append(f"job {job_id}: model does not load: {exc}")
    result.lines.append(("succeeded jobs whose model loads", f"{len(succeeded) - broken} of "
                                                             f"{len(succeeded)}"))
    result.missing(broken, "succeeded jobs whose model does not load")


def _counts(counts: Counter) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: str(kv[0])))
