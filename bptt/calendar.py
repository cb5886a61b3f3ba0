"""Timestamps of series: parsing, frequencies, the regular grid, inference, stepping forward.

A series' points sit on a grid: integers with a step (`ds` 1, 2, 3 or 10, 20, 30), or dates and
times spaced by a pandas-style frequency ("MS", "QS", "W-SUN", "D", "h", "15min", ...). This
module knows those grids without pandas: it reads a `ds` or a `start`, reads a frequency,
infers one from the spacing of the points, places every point on the grid of its series' first
point (a missing one is a gap; one between grid points is an error), and gives the timestamps
after a series' end, for a forecast's steps.

The grid and the inference work on numpy arrays of integer keys (`timestamp_key`: the integer
itself, or microseconds since 1970 for a date and time), so that a dataset of millions of
points is checked at numpy speed, series by series; the list forms below wrap them for
requests that hold a few thousand points.

Supported frequencies, each with an optional multiple (`2MS`, `15min`): month-based MS/ME (M
is ME, as in pandas before 2.2), QS/QE (Q is QE) and YS/YE (Y, A are YE; AS is YS), whose
quarter and year families take a month anchor (`QS-FEB`, `YE-JUN`); W with a weekday anchor
(`W` is `W-SUN`); D, B (Monday to Friday), h (H), min (T), s (S).
"""

from __future__ import annotations

import calendar as _stdlib_calendar
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

Timestamp = int | datetime  # an integer step number, or a naive (UTC) date and time

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Base name -> (unit, months per period for month-based units, month-end?, default anchor).
_MONTHLY = {
    "MS": (1, False), "ME": (1, True), "M": (1, True),
    "QS": (3, False), "QE": (3, True), "Q": (3, True),
    "YS": (12, False), "AS": (12, False), "YE": (12, True), "Y": (12, True), "A": (12, True),
}
_FIXED = {"D": 86400, "h": 3600, "H": 3600, "min": 60, "T": 60, "s": 1, "S": 1}
_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")
EPOCH = datetime(1970, 1, 1)
US_PER_DAY = 86_400_000_000
# Integer ds as large as this and their differences fit 64-bit keys (nanoseconds since 1970
# still do: 1.7e18 is under 4.6e18).
MAX_INTEGER_DS = 2**62
_FREQ = re.compile(r"(\d*)([A-Za-z]+)(?:-([A-Za-z]{3}))?")


class CalendarError(ValueError):
    """A timestamp or frequency that cannot be read, or a point off its series' grid."""


@dataclass(frozen=True)
class Freq:
    """A parsed frequency: `multiple` periods of `unit`.

    unit is "month" (months = months per period, end = month-end dates, anchor = a month of
    the quarter or year family, 1-12), "week" (anchor = weekday, 0 Monday .. 6 Sunday), "bday",
    "second" (seconds = seconds per period) or "step" (integer ds; seconds = the step).
    """

    unit: str
    multiple: int = 1
    months: int = 0  # per period, before the multiple (1 M, 3 Q, 12 Y)
    end: bool = False  # month-based dates at the month's last day rather than its first
    anchor: int | None = None  # the month (1-12) of Q/Y families, or the weekday of W
    seconds: int = 0  # fixed units: seconds per period before the multiple; "step": the step

    @property
    def name(self) -> str:
        """The canonical pandas-style name ("MS", "QS-FEB", "W-SUN", "15min"; "2" for step 2)."""
        if self.unit == "step":
            return str(self.seconds * self.multiple)
        times = "" if self.multiple == 1 else str(self.multiple)
        if self.unit == "month":
            family = {1: "M", 3: "Q", 12: "Y"}[self.months]
            base = family + ("E" if self.end else "S")
            default = 12 if self.end else 1
            suffix = "" if self.months == 1 or self.anchor == default else \
                f"-{MONTHS[(self.anchor or default) - 1]}"
            return f"{times}{base}{suffix}"
        if self.unit == "week":
            return f"{times}W-{WEEKDAYS[self.anchor if self.anchor is not None else 6]}"
        if self.unit == "bday":
            return f"{times}B"
        names = {86400: "D", 3600: "h", 60: "min", 1: "s"}
        return f"{times}{names[self.seconds]}"

    @property
    def period_seconds(self) -> int:
        """Seconds per period of a fixed unit (second, week, step), multiple included."""
        return self.seconds * self.multiple


def parse_freq(text: str) -> Freq:
    """Read a pandas-style frequency ("MS", "QS-JAN", "W-SUN", "2D", "h", "15min"), or an
    integer step for integer timestamps ("1", "7"); raises CalendarError naming what it read."""
    text = text.strip()
    if text.isdigit():
        if int(text) < 1:
            raise CalendarError(f"an integer step must be at least 1, not {text!r}")
        return Freq("step", seconds=int(text))
    match = _FREQ.fullmatch(text)
    if not match:
        raise CalendarError(f"unknown frequency {text!r}")
    multiple = int(match[1] or 1)
    base, suffix = match[2], (match[3] or "").upper()
    if multiple < 1:
        raise CalendarError(f"a frequency's multiple must be at least 1, not {text!r}")
    if base not in _MONTHLY and base not in _FIXED and base.upper() in (*_MONTHLY, "W", "B", "D"):
        base = base.upper()  # "ms", "w-sun", "d" as season_from_freq reads them
    if base in _MONTHLY:
        months, end = _MONTHLY[base]
        if suffix and months == 1:
            raise CalendarError(f"monthly frequencies take no anchor: {text!r}")
        default = 12 if end else 1
        anchor = _anchor(suffix, MONTHS, text) + 1 if suffix else default
        return Freq("month", multiple, months=months, end=end, anchor=anchor)
    if base == "W":
        return Freq("week", multiple, anchor=_anchor(suffix, WEEKDAYS, text) if suffix else 6,
                    seconds=7 * 86400)
    if suffix:
        raise CalendarError(f"{base!r} takes no anchor: {text!r}")
    if base == "B":
        return Freq("bday", multiple)
    seconds = _FIXED.get(base)
    if seconds is None:
        raise CalendarError(f"unknown frequency {text!r}")
    return Freq("second", multiple, seconds=seconds)


def parse_timestamp(value: str | int) -> Timestamp:
    """An integer, or an ISO 8601 date or time (`YYYY-MM` too) as a naive UTC datetime; a time
    with an offset is converted to UTC. Raises CalendarError for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _bounded(value)
    if not isinstance(value, str):
        raise CalendarError("must be an integer or an ISO 8601 date or time")
    text = value.strip()
    try:
        number = int(text)
    except ValueError:
        pass
    else:
        return _bounded(number)
    match = _YEAR_MONTH.fullmatch(text)
    if match and 1 <= int(match[2]) <= 12:
        return datetime(int(match[1]), int(match[2]), 1)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CalendarError("must be an integer or an ISO 8601 date or time") from None
    if moment.tzinfo is not None:  # aware and naive times cannot be compared
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def format_timestamp(moment: Timestamp) -> str | int:
    """An integer as itself; a date as `YYYY-MM-DD`, a time as `YYYY-MM-DDTHH:MM:SS`."""
    if isinstance(moment, int):
        return moment
    if moment.time() == datetime.min.time():
        return moment.date().isoformat()
    return moment.isoformat()


def shift_timestamp(moment: Timestamp, freq: Freq, periods: int) -> Timestamp:
    """`moment` moved `periods` periods of `freq` forward (backward when negative)."""
    if isinstance(moment, int):
        if freq.unit != "step":
            raise CalendarError(f"an integer timestamp steps by an integer, not {freq.name!r}")
        return moment + periods * freq.period_seconds
    if freq.unit == "step":
        raise CalendarError(f"a date steps by a calendar frequency, not the integer {freq.name}")
    n = periods * freq.multiple
    if freq.unit == "month":
        index = moment.year * 12 + moment.month - 1 + n * freq.months
        year, month = divmod(index, 12)
        if not 1 <= year <= 9999:
            raise CalendarError("steps past year 9999")
        last = _stdlib_calendar.monthrange(year, month + 1)[1]
        return moment.replace(year=year, month=month + 1,
                              day=last if freq.end else min(moment.day, last))
    if freq.unit == "bday":
        moved = np.busday_offset(np.datetime64(moment.date(), "D"), n, roll="forward")
        return datetime.combine(moved.item(), moment.time())
    try:
        return moment + timedelta(seconds=n * freq.seconds)
    except OverflowError:
        raise CalendarError("steps past year 9999") from None


def conforms(moment: Timestamp, freq: Freq) -> str | None:
    """Why `moment` cannot start a grid of `freq` (a MS date on the 15th), or None if it can."""
    if isinstance(moment, int) != (freq.unit == "step"):
        return (f"integer ds needs an integer step, not {freq.name!r}" if isinstance(moment, int)
                else f"a date needs a calendar frequency, not the integer step {freq.name}")
    if freq.unit == "month":
        last = _stdlib_calendar.monthrange(moment.year, moment.month)[1]
        if freq.end and moment.day != last:
            return f"{freq.name} dates fall on the last day of a month"
        if not freq.end and moment.day != 1:
            return f"{freq.name} dates fall on the first day of a month"
        if freq.months > 1 and (moment.month - (freq.anchor or 1)) % freq.months:
            months = [MONTHS[(freq.anchor or 1) - 1 + k].title()
                      for k in range(-12, 0, freq.months)]
            return f"{freq.name} dates fall in {', '.join(sorted(months, key=_month_order))}"
    if freq.unit == "week" and moment.weekday() != freq.anchor:
        return f"{freq.name} dates fall on a {_DAY_NAMES[freq.anchor or 0]}"
    if freq.unit == "bday" and moment.weekday() >= 5:
        return "B dates fall on Monday to Friday"
    return None


def grid_positions(stamps: list[Timestamp], freq: Freq) -> list[int]:
    """The period index of each of a series' sorted, distinct timestamps on the grid that its
    first one starts (0 for the first). Raises OffGrid at the first point off that grid."""
    if not stamps:
        return []
    return grid_positions_of_keys(stamp_keys(stamps), freq,
                                  integer=isinstance(stamps[0], int)).tolist()


def grid_positions_of_keys(keys: np.ndarray, freq: Freq, *, integer: bool) -> np.ndarray:
    """grid_positions of a series' sorted, distinct keys (timestamp_key; integer ds or dates),
    as an int64 array. Raises OffGrid at the first key off the grid."""
    if keys.size == 0:
        return np.zeros(0, np.int64)
    first = key_timestamp(int(keys[0]), integer=integer)
    why = conforms(first, freq)
    if why is not None:
        raise OffGrid(0, why)
    positions, grid_keys = _grid_points(keys, freq)
    off = np.flatnonzero(grid_keys != keys)
    if off.size:
        index = int(off[0])
        raise OffGrid(index, f"is not on the {freq.name} grid from {format_timestamp(first)} "
                             f"(the grid points around it are "
                             f"{_neighbours(first, freq, int(positions[index]))})")
    return positions


class OffGrid(CalendarError):
    """A point between the grid points of its series; `index` is its place among the points."""

    def __init__(self, index: int, msg: str) -> None:
        super().__init__(msg)
        self.index = index
        self.msg = msg


def infer_freq(series_stamps: list[list[Timestamp]]) -> Freq | None:
    """The frequency of sorted, distinct timestamps, pooled over several series (one model,
    one frequency): see SpacingEvidence.freq. The points are not checked here (grid_positions
    does that, and names those off the grid)."""
    firsts = [s[0] for s in series_stamps if s]
    if not firsts:
        return None
    evidence = SpacingEvidence(integer=isinstance(firsts[0], int))
    for stamps in series_stamps:
        evidence.add(stamp_keys(stamps))
    return evidence.freq()


@dataclass
class _MonthPoints:
    """The points on a month's first (or last) day at midnight: how many, the month (1-12) of
    the first of them, and the months they fall in."""

    count: int = 0
    first_month: int = 0
    months: set[int] = field(default_factory=set)

    def add(self, months: np.ndarray) -> None:
        """Some of them, as datetime64[M]."""
        if months.size == 0:
            return
        numbers = months.astype(np.int64) % 12 + 1
        if not self.count:
            self.first_month = int(numbers[0])
        self.count += months.size
        self.months.update(np.unique(numbers).tolist())


class SpacingEvidence:
    """What frequency inference reads from timestamps of one kind (integers, or dates),
    gathered a series at a time: counts of the spacings, of month starts and ends, of
    weekdays. It holds a count per distinct spacing, not per point, so a dataset's series
    can pass through it one by one."""

    def __init__(self, *, integer: bool) -> None:
        self.integer = integer
        self.points = self.pairs = 0
        self.steps: Counter[int] = Counter()  # integer steps, or whole seconds between dates
        self.month_steps: Counter[int] = Counter()  # calendar months between dates
        self.weekdays = np.zeros(7, np.int64)
        self.weekend = False  # some point falls on a Saturday or Sunday
        self.friday_to_monday = False  # some Friday is followed by the Monday after
        self.month_starts, self.month_ends = _MonthPoints(), _MonthPoints()

    def add(self, keys: np.ndarray, series_starts: np.ndarray | None = None) -> None:
        """Sorted, distinct keys (timestamp_key) of one series, or of several one after the
        other, each beginning at its index in `series_starts` (a dataset's group of series
        at numpy speed: the spacing from one series to the next is not counted)."""
        self.points += keys.size
        within = np.ones(max(keys.size - 1, 0), bool)  # pairs of points in the same series
        if series_starts is not None and series_starts.size > 1:
            within[series_starts[1:] - 1] = False
        self.pairs += int(within.sum())
        spacing = np.diff(keys)[within]
        if self.integer:
            _count(self.steps, spacing)
            return
        _count(self.steps, spacing // 1_000_000)
        days = keys // US_PER_DAY
        dates = days.astype("datetime64[D]")
        months = dates.astype("datetime64[M]")
        _count(self.month_steps, np.diff(months.astype(np.int64))[within])
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (Monday is 0)
        self.weekdays += np.bincount(weekday, minlength=7)
        self.weekend = self.weekend or bool((weekday >= 5).any())
        self.friday_to_monday = self.friday_to_monday or bool(
            ((spacing // US_PER_DAY == 3) & (weekday[:-1][within] == 4)).any())
        midnight = keys % US_PER_DAY == 0
        self.month_starts.add(months[midnight & (dates == months.astype("datetime64[D]"))])
        self.month_ends.add(months[midnight & ((dates + 1).astype("datetime64[M]") != months)])

    def freq(self) -> Freq | None:
        """The most common spacing (the smaller on a tie), read as the coarsest calendar unit
        that most points fit (month starts or ends, a weekday). None without two points in
        any series, or for spacings under a second."""
        if not self.pairs:
            return None
        if self.integer:
            return Freq("step", seconds=_mode(self.steps))
        # A calendar unit is read from most points, not all: a few off-grid points must not
        # turn a monthly series into "31D"; grid_positions then names them.
        for chosen, end in ((self.month_starts, False), (self.month_ends, True)):
            if 2 * chosen.count > self.points:
                return _monthly(self.month_steps, chosen, end=end)
        seconds = _mode(self.steps)
        if seconds < 1:
            return None
        weekday = int(np.argmax(self.weekdays))
        if seconds % (7 * 86400) == 0 and 2 * int(self.weekdays[weekday]) > self.points:
            return Freq("week", seconds // (7 * 86400), anchor=weekday, seconds=7 * 86400)
        if seconds == 86400 and not self.weekend and self.friday_to_monday:
            return Freq("bday")  # weekdays only, Friday followed by Monday: business days
        for unit in (86400, 3600, 60, 1):
            if seconds % unit == 0:
                return Freq("second", seconds // unit, seconds=unit)
        return None  # unreachable: every whole number of seconds divides by 1


def timestamp_key(moment: Timestamp) -> int:
    """A timestamp as an integer key: an integer as itself, a date and time as microseconds
    since 1970 (keys of one kind order as their timestamps do)."""
    if isinstance(moment, int):
        return moment
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def key_timestamp(key: int, *, integer: bool) -> Timestamp:
    """The timestamp a key stands for (timestamp_key undone)."""
    return int(key) if integer else EPOCH + timedelta(microseconds=int(key))


def stamp_keys(stamps: list[Timestamp]) -> np.ndarray:
    """timestamp_key of each timestamp, as int64."""
    return np.array([timestamp_key(moment) for moment in stamps], dtype=np.int64)


def future_stamps(last: Timestamp, freq: Freq, horizon: int) -> list[Timestamp]:
    """The `horizon` timestamps after `last` (a series' final point), one period apart."""
    return [shift_timestamp(last, freq, k) for k in range(1, horizon + 1)]


def _monthly(month_steps: Counter[int], points: _MonthPoints, *, end: bool) -> Freq:
    """A month-based frequency from the months between points and the month-start (or
    month-end) `points` among them."""
    months = _mode(month_steps)
    for family in (12, 3):
        if months % family == 0 and len({(m - points.first_month) % family
                                         for m in points.months}) == 1:
            # the family's anchor: the year's (or quarter's) first or last month it names
            anchor = points.first_month if family == 12 else \
                (points.first_month - 1) % 3 + (10 if end else 1)
            return Freq("month", months // family, months=family, end=end, anchor=anchor)
    return Freq("month", months, months=1, end=end, anchor=12 if end else 1)


def _grid_points(keys: np.ndarray, freq: Freq) -> tuple[np.ndarray, np.ndarray]:
    """(period index of the grid point at or before each key, that grid point's key) on the
    grid that keys[0] starts: a key is on the grid when it is its own grid point."""
    first = int(keys[0])
    if freq.unit in ("step", "second", "week"):
        period = freq.period_seconds * (1 if freq.unit == "step" else 1_000_000)
        positions = (keys - first) // period
        return positions, first + positions * period
    time_of_day = first % US_PER_DAY  # every step of a calendar grid keeps it
    dates = (keys // US_PER_DAY).astype("datetime64[D]")
    if freq.unit == "month":
        months = dates.astype("datetime64[M]").astype(np.int64)
        per = freq.months * freq.multiple
        positions = (months - months[0]) // per
        month = months[0] + positions * per
        if freq.end:  # the day before the next month's first
            day = (month + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - 1
        else:
            day = month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    else:  # business days
        positions = np.busday_count(dates[0], dates).astype(np.int64) // freq.multiple
        day = np.busday_offset(dates[0], positions * freq.multiple,
                               roll="forward").astype(np.int64)
    return positions, day * US_PER_DAY + time_of_day


def _neighbours(first: Timestamp, freq: Freq, position: int) -> str:
    """The grid points either side of an off-grid moment (after grid point `position`), for
    the error message."""
    before = shift_timestamp(first, freq, position)
    after = shift_timestamp(first, freq, position + 1)
    return f"{format_timestamp(before)} and {format_timestamp(after)}"


def _bounded(number: int) -> int:
    """An integer ds within MAX_INTEGER_DS either side of 0 (its key must fit 64 bits)."""
    if abs(number) > MAX_INTEGER_DS:
        raise CalendarError(f"an integer ds must lie between -2**62 and 2**62, not {number}")
    return number


def _count(counts: Counter[int], values: np.ndarray) -> None:
    """Add each value of an array to `counts`."""
    found, times = np.unique(values, return_counts=True)
    counts.update(dict(zip(found.tolist(), times.tolist(), strict=True)))


def _month_order(name: str) -> int:
    """January first: for listing months."""
    return MONTHS.index(name.upper())


def _anchor(suffix: str, names: tuple[str, ...], text: str) -> int:
    """The index of an anchor suffix (`JAN` -> 0, `SUN` -> 6)."""
    if suffix not in names:
        raise CalendarError(f"unknown anchor {suffix!r} in {text!r}")
    return names.index(suffix)


def _mode(counts: Counter[int]) -> int:
    """The most common positive spacing; the smallest of those tied."""
    positive = {k: v for k, v in counts.items() if k > 0}
    if not positive:
        return 0
    top = max(positive.values())
    return min(k for k, v in positive.items() if v == top)
