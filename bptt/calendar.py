"""Timestamps of series: parsing, frequencies, the regular grid, inference, stepping forward.

A series' points sit on a grid: integers with a step (`ds` 1, 2, 3 or 10, 20, 30), or dates and
times spaced by a pandas-style frequency ("MS", "QS", "W-SUN", "D", "h", "15min", ...). This
module knows those grids without pandas: it reads a `ds` or a `start`, reads a frequency,
infers one from the spacing of the points, places every point on the grid of its series' first
point (a missing one is a gap; one between grid points is an error), and gives the timestamps
after a series' end, for a forecast's steps.

Supported frequencies, each with an optional multiple (`2MS`, `15min`): month-based MS/ME (M
is ME, as in pandas before 2.2), QS/QE (Q is QE) and YS/YE (Y, A are YE; AS is YS), whose
quarter and year families take a month anchor (`QS-FEB`, `YE-JUN`); W with a weekday anchor
(`W` is `W-SUN`); D, B (Monday to Friday), h (H), min (T), s (S).
"""

from __future__ import annotations

import calendar as _stdlib_calendar
import re
from collections import Counter
from dataclasses import dataclass
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
        return value
    if not isinstance(value, str):
        raise CalendarError("must be an integer or an ISO 8601 date or time")
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
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
    first = stamps[0]
    why = conforms(first, freq)
    if why is not None:
        raise OffGrid(0, why)
    positions = [0]
    for i, moment in enumerate(stamps[1:], start=1):
        guess = _periods_between(first, moment, freq)
        if guess is None or shift_timestamp(first, freq, guess) != moment:
            raise OffGrid(i, f"is not on the {freq.name} grid from {format_timestamp(first)} "
                             f"(the grid points around it are "
                             f"{_neighbours(first, moment, freq, guess)})")
        positions.append(guess)
    return positions


class OffGrid(CalendarError):
    """A point between the grid points of its series; `index` is its place among the points."""

    def __init__(self, index: int, msg: str) -> None:
        super().__init__(msg)
        self.index = index
        self.msg = msg


def infer_freq(series_stamps: list[list[Timestamp]]) -> Freq | None:
    """The frequency of sorted, distinct timestamps, pooled over several series (one model,
    one frequency): the most common spacing (the smaller on a tie), read as the coarsest
    calendar unit that most points fit (month starts or ends, a weekday). None without two
    points in any series, or for spacings under a second. The points are not checked here
    (grid_positions does that, and names those off the grid)."""
    firsts = [s[0] for s in series_stamps if s]
    if not firsts:
        return None
    if isinstance(firsts[0], int):
        steps = Counter(b - a for s in series_stamps for a, b in zip(s, s[1:], strict=False))
        return Freq("step", seconds=_mode(steps)) if steps else None
    points = [m for s in series_stamps for m in s]
    pairs = [(a, b) for s in series_stamps for a, b in zip(s, s[1:], strict=False)]
    if not pairs:
        return None
    # A calendar unit is read from most points, not all: a few off-grid points must not turn
    # a monthly series into "31D"; grid_positions then names them.
    midnight = [m for m in points if m.time() == datetime.min.time()]
    starts = [m for m in midnight if m.day == 1]
    ends = [m for m in midnight if m.day == _stdlib_calendar.monthrange(m.year, m.month)[1]]
    for chosen, end in ((starts, False), (ends, True)):
        if 2 * len(chosen) > len(points):
            return _monthly(pairs, chosen, end=end)
    seconds = _mode(Counter(int((b - a).total_seconds()) for a, b in pairs))
    if seconds < 1:
        return None
    weekday, count = Counter(m.weekday() for m in points).most_common(1)[0]
    if seconds % (7 * 86400) == 0 and 2 * count > len(points):
        return Freq("week", seconds // (7 * 86400), anchor=weekday, seconds=7 * 86400)
    if seconds == 86400 and all(m.weekday() < 5 for m in points) and any(
            (b - a).days == 3 and a.weekday() == 4 for a, b in pairs):
        return Freq("bday")  # weekdays only, Friday followed by Monday: business days
    for unit in (86400, 3600, 60, 1):
        if seconds % unit == 0:
            return Freq("second", seconds // unit, seconds=unit)
    return None  # unreachable: every whole number of seconds divides by 1


def future_stamps(last: Timestamp, freq: Freq, horizon: int) -> list[Timestamp]:
    """The `horizon` timestamps after `last` (a series' final point), one period apart."""
    return [shift_timestamp(last, freq, k) for k in range(1, horizon + 1)]


def _monthly(pairs: list[tuple[datetime, datetime]], points: list[datetime], *, end: bool
             ) -> Freq:
    """A month-based frequency from the spacing of `pairs` and the month-start (or month-end)
    `points` among them."""
    months = _mode(Counter((b.year - a.year) * 12 + b.month - a.month for a, b in pairs))
    anchor_month = points[0].month
    for family in (12, 3):
        if months % family == 0 and len({(m.month - anchor_month) % family
                                         for m in points}) == 1:
            # the family's anchor: the year's (or quarter's) first or last month it names
            anchor = anchor_month if family == 12 else \
                (anchor_month - 1) % 3 + (10 if end else 1)
            return Freq("month", months // family, months=family, end=end, anchor=anchor)
    return Freq("month", months, months=1, end=end, anchor=12 if end else 1)


def _periods_between(first: datetime | int, moment: datetime | int, freq: Freq) -> int | None:
    """How many periods of freq from first to moment, if a whole number could fit."""
    if isinstance(first, int) and isinstance(moment, int):
        gap, step = moment - first, freq.period_seconds
        return gap // step if step else None
    assert isinstance(first, datetime) and isinstance(moment, datetime)
    if freq.unit == "month":
        months = (moment.year - first.year) * 12 + moment.month - first.month
        return months // (freq.months * freq.multiple)
    if freq.unit == "bday":
        days = int(np.busday_count(first.date(), moment.date()))
        return days // freq.multiple
    return int((moment - first).total_seconds() // freq.period_seconds)


def _neighbours(first: Timestamp, moment: Timestamp, freq: Freq, guess: int | None) -> str:
    """The grid points either side of an off-grid moment, for the error message."""
    n = guess or 0
    before, after = shift_timestamp(first, freq, n), shift_timestamp(first, freq, n + 1)
    return f"{format_timestamp(before)} and {format_timestamp(after)}"


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
