"""The timestamps (`ds`) of a forecast's steps: each series' own timestamps stepped on from its
last value. No Flask here (the workers import it)."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bptt import (
    CalendarError,
    format_timestamp,
    future_stamps,
    parse_freq,
    parse_timestamp,
    shift_timestamp,
)
from service.store.codec import decompress_json
from service.store.dataset_rows import selection_calendar
from service.store.tables import Dataset, Job

Ds = list[str | int]
# (start, freq, length) of each training series of a job, by series id.
Calendar = dict[str, tuple[str | None, str | None, int]]
_CACHED_JOBS = 64  # a dataset never changes once stored; these few keep repeat forecasts cheap
_cache: OrderedDict[str, Calendar] = OrderedDict()
_lock = threading.Lock()
_MONTH_ONLY = re.compile(r"\d{4}-\d{2}")  # a start written as a month: monthly steps


def step_dates(start: str | None, freq: str | None, length: int, horizon: int, *,
               default_freq: str | None = None) -> Ds | None:
    """The ds of `horizon` steps after a series of `length` values from `start` spaced by
    `freq` (else `default_freq`, the job's; else months for a `YYYY-MM` start). Without a
    start the values are numbered from 1; a dated series without any frequency, or one
    stepping past year 9999, has None."""
    return _StepDates(horizon, default_freq)(start, freq, length)


class _StepDates:
    """step_dates for many series of one request: a (start, freq) is read once, and series
    ending on the same timestamp share their steps' ds, formatted once (48,000 series one by
    one took 2-4 s of a forecast request; M4-like series share a few hundred ends)."""

    def __init__(self, horizon: int, default_freq: str | None) -> None:
        self.horizon, self.default_freq = horizon, default_freq
        self.origins: dict[tuple[str | None, str | None], tuple[Any, Any] | None] = {}
        self.after: dict[tuple[Any, Any], Ds | None] = {}

    def __call__(self, start: str | None, freq: str | None, length: int) -> Ds | None:
        key = (start, freq)
        if key not in self.origins:
            self.origins[key] = self._origin(start, freq)
        origin = self.origins[key]
        if origin is None:
            return None
        first, step = origin
        try:
            last = shift_timestamp(first, step, length - 1)
        except CalendarError:
            return None
        if (last, step) not in self.after:
            self.after[last, step] = self._steps_after(last, step)
        dates = self.after[last, step]
        return None if dates is None else list(dates)

    def _origin(self, start: str | None, freq: str | None) -> tuple[Any, Any] | None:
        """(first timestamp, step) of series from `start` at `freq`; None without a step."""
        try:
            first = 1 if start is None else parse_timestamp(start)
            if isinstance(first, int):
                step = parse_freq(freq if freq is not None and freq.isdigit() else "1")
            elif freq or self.default_freq:
                step = parse_freq(freq or self.default_freq or "")
            elif start is not None and _MONTH_ONLY.fullmatch(start.strip()):
                step = parse_freq("MS")
            else:
                return None
        except CalendarError:
            return None
        return first, step

    def _steps_after(self, last: Any, step: Any) -> Ds | None:
        try:
            return [format_timestamp(moment)
                    for moment in future_stamps(last, step, self.horizon)]
        except CalendarError:
            return None


def job_freq(job: Job) -> str | None:
    """The frequency a job trains with (its plan's: given, or inferred from its series)."""
    return (job.resolved_spec or job.spec or {}).get("freq")


def series_dates(series: list[dict[str, Any]], horizon: int, *, default_freq: str | None
                 ) -> dict[str, Ds | None]:
    """step_dates of each series of a request ({"id", "values", "start", "freq"}), by id."""
    dates = _StepDates(horizon, default_freq)
    return {s["id"]: dates(s.get("start"), s.get("freq"), len(s["values"])) for s in series}


def training_dates(session: Session, *, job_id: str, horizon: int, default_freq: str | None,
                   lengths: dict[str, int] | None = None) -> dict[str, Ds | None]:
    """step_dates of a job's training series, by id. With `lengths`, of those series only, at
    those lengths (a stateful series that has had observations appended)."""
    calendar = training_calendar(session, job_id=job_id)
    wanted = lengths if lengths is not None else {uid: c[2] for uid, c in calendar.items()}
    dates = _StepDates(horizon, default_freq)
    return {uid: dates(calendar[uid][0], calendar[uid][1], length)
            for uid, length in wanted.items() if uid in calendar}


def calendar_dates(calendar: Calendar, horizon: int, *, default_freq: str | None
                   ) -> dict[str, Ds | None]:
    """step_dates of each series of a calendar (an uploaded dataset's selection), by id."""
    dates = _StepDates(horizon, default_freq)
    return {uid: dates(start, freq, length) for uid, (start, freq, length) in calendar.items()}


def training_calendar(session: Session, *, job_id: str) -> Calendar:
    """Start, freq and length of each of a job's training series, sent with it or in the
    uploaded dataset it names (read once per process)."""
    with _lock:
        if job_id in _cache:
            _cache.move_to_end(job_id)
            return _cache[job_id]
    row = session.execute(
        select(Dataset.series_zlib, Dataset.uploaded_dataset_id, Dataset.series_ids_zlib)
        .where(Dataset.job_id == job_id)).first()
    if row is not None and row.uploaded_dataset_id is not None:
        subset = None if row.series_ids_zlib is None else decompress_json(row.series_ids_zlib)
        calendar = selection_calendar(session, row.uploaded_dataset_id, subset)
    else:
        series: list[dict[str, Any]] = [] if row is None else decompress_json(row.series_zlib)
        calendar = {s["id"]: (s.get("start"), s.get("freq"), len(s["values"])) for s in series}
    with _lock:
        _cache[job_id] = calendar
        while len(_cache) > _CACHED_JOBS:
            _cache.popitem(last=False)
    return calendar
