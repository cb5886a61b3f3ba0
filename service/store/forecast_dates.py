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
    try:
        first = 1 if start is None else parse_timestamp(start)
        if isinstance(first, int):
            step = parse_freq(freq if freq is not None and freq.isdigit() else "1")
        elif freq or default_freq:
            step = parse_freq(freq or default_freq or "")
        elif start is not None and _MONTH_ONLY.fullmatch(start.strip()):
            step = parse_freq("MS")
        else:
            return None
        last = shift_timestamp(first, step, length - 1)
        return [format_timestamp(moment) for moment in future_stamps(last, step, horizon)]
    except CalendarError:
        return None


def job_freq(job: Job) -> str | None:
    """The frequency a job trains with (its plan's: given, or inferred from its series)."""
    return (job.resolved_spec or job.spec or {}).get("freq")


def series_dates(series: list[dict[str, Any]], horizon: int, *, default_freq: str | None
                 ) -> dict[str, Ds | None]:
    """step_dates of each series of a request ({"id", "values", "start", "freq"}), by id."""
    return {s["id"]: step_dates(s.get("start"), s.get("freq"), len(s["values"]), horizon,
                                default_freq=default_freq) for s in series}


def training_dates(session: Session, *, job_id: str, horizon: int, default_freq: str | None,
                   lengths: dict[str, int] | None = None) -> dict[str, Ds | None]:
    """step_dates of a job's training series, by id. With `lengths`, of those series only, at
    those lengths (a stateful series that has had observations appended)."""
    calendar = training_calendar(session, job_id=job_id)
    wanted = lengths if lengths is not None else {uid: c[2] for uid, c in calendar.items()}
    return {uid: step_dates(calendar[uid][0], calendar[uid][1], length, horizon,
                            default_freq=default_freq)
            for uid, length in wanted.items() if uid in calendar}


def calendar_dates(calendar: Calendar, horizon: int, *, default_freq: str | None
                   ) -> dict[str, Ds | None]:
    """step_dates of each series of a calendar (an uploaded dataset's selection), by id."""
    return {uid: step_dates(start, freq, length, horizon, default_freq=default_freq)
            for uid, (start, freq, length) in calendar.items()}


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
