"""Calendar features of a series' time steps: known for the forecast's steps as well as the past.

A frequency resolves some cycles of the calendar and not others: monthly data has a month of
the year but no day of the week; hourly data has an hour of the day and a day of the week. Each
frequency gets the cycles finer than a year that its period can show (`cycles_for`):

    month-based, periods under a year   month of the year
    weekly                              week of the year (as a fraction of the year's days)
    daily, business-daily               day of the week, day of the year
    hourly and finer                    hour of the day, day of the week

and none for yearly data and integer steps.

Encodings:
- "cyclic": a (sin, cos) pair per cycle, the phase 2π·position/period. Two columns whatever the
  period, neighbours on the cycle stay neighbours (December next to January), and a fractional
  position (the hour of a 15-minute step) is exact;
- "onehot": a column per value of a cycle with few values (12 months, 7 weekdays, 24 hours);
  cycles with many (the day or week of the year) stay cyclic. Lets the network give each value
  its own effect (a holiday month, a closed weekday), at the price of more inputs.

Positions are counted from the series' first point on its grid: step k of a series that starts at
`start` is start shifted by k periods (bptt.calendar.shift_timestamp), so the features of a
forecast's steps are those of the steps after the last one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calendar import Freq, Timestamp, shift_timestamp, timestamp_key

ENCODINGS = ("cyclic", "onehot")
US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR
DAYS_PER_YEAR = 365.2425  # the Gregorian year: the day of the year's cycle drifts by no day


@dataclass(frozen=True)
class Cycle:
    """A calendar cycle: its name, its period in its own units, and whether one-hot encoding
    gives each of its (few, whole) values a column."""

    name: str
    period: float
    discrete: bool


MONTH_OF_YEAR = Cycle("month_of_year", 12, True)
WEEK_OF_YEAR = Cycle("week_of_year", DAYS_PER_YEAR / 7, False)
DAY_OF_WEEK = Cycle("day_of_week", 7, True)
DAY_OF_YEAR = Cycle("day_of_year", DAYS_PER_YEAR, False)
HOUR_OF_DAY = Cycle("hour_of_day", 24, True)


def cycles_for(freq: Freq) -> tuple[Cycle, ...]:
    """The calendar cycles that steps of `freq` resolve (see the module docstring)."""
    if freq.unit == "month":
        return (MONTH_OF_YEAR,) if freq.months * freq.multiple < 12 else ()
    if freq.unit == "week":
        return (WEEK_OF_YEAR,) if freq.multiple < 52 else ()
    if freq.unit == "bday" or (freq.unit == "second" and freq.period_seconds % 86400 == 0):
        days = freq.multiple if freq.unit == "bday" else freq.period_seconds // 86400
        return (DAY_OF_WEEK, DAY_OF_YEAR) if days % 7 else (DAY_OF_YEAR,)
    if freq.unit == "second":
        return (HOUR_OF_DAY, DAY_OF_WEEK) if freq.period_seconds < 86400 else (DAY_OF_WEEK,)
    return ()  # integer steps have no calendar


def feature_names(freq: Freq, encoding: str = "cyclic") -> list[str]:
    """The columns calendar_features gives, in order (for the model card)."""
    _check(encoding)
    names: list[str] = []
    for cycle in cycles_for(freq):
        if encoding == "onehot" and cycle.discrete:
            names += [f"{cycle.name}={value}" for value in range(int(cycle.period))]
        else:
            names += [f"{cycle.name}_sin", f"{cycle.name}_cos"]
    return names


def calendar_features(start: Timestamp, freq: Freq, steps: int, first: int = 0,
                      encoding: str = "cyclic") -> np.ndarray:
    """(steps, len(feature_names(freq, encoding))) features of the grid points first,
    first + 1, ... of a series that starts at `start`."""
    _check(encoding)
    cycles = cycles_for(freq)
    if not cycles:
        return np.empty((steps, 0))
    positions = _positions(start, freq, steps, first)
    columns = []
    for cycle in cycles:
        position = positions[cycle.name]
        if encoding == "onehot" and cycle.discrete:
            values = np.floor(position).astype(np.int64) % int(cycle.period)
            columns.append(np.eye(int(cycle.period))[values])
        else:
            phase = 2 * np.pi * position / cycle.period
            columns.append(np.stack([np.sin(phase), np.cos(phase)], axis=1))
    return np.concatenate(columns, axis=1)


def _positions(start: Timestamp, freq: Freq, steps: int, first: int) -> dict[str, np.ndarray]:
    """Where each step sits on each cycle: month 0-11, weekday 0 (Monday)-6, hour 0-24 with
    its fraction, day of the year from 0 (1 January) with its fraction."""
    if freq.unit == "month":
        moment = shift_timestamp(start, freq, first)
        month0 = moment.month - 1
        months = month0 + np.arange(steps) * freq.months * freq.multiple
        return {"month_of_year": months % 12}
    keys = _keys(start, freq, steps, first)  # microseconds since 1970-01-01, a Thursday
    days = keys // US_PER_DAY
    years = keys.astype("datetime64[us]").astype("datetime64[Y]")
    year_start = years.astype("datetime64[us]").astype(np.int64)
    return {
        "day_of_week": (days + 3) % 7,
        "hour_of_day": (keys % US_PER_DAY) / US_PER_HOUR,
        "day_of_year": (keys - year_start) / US_PER_DAY,
        "week_of_year": (keys - year_start) / US_PER_DAY / 7,
    }


def _keys(start: Timestamp, freq: Freq, steps: int, first: int) -> np.ndarray:
    """The steps' timestamps as microseconds since 1970."""
    if freq.unit == "bday":
        origin = np.datetime64(shift_timestamp(start, freq, first).date(), "D")
        offsets = np.arange(steps) * freq.multiple
        days = np.busday_offset(origin, offsets, roll="forward").astype(np.int64)
        time_of_day = timestamp_key(start) % US_PER_DAY
        return days * US_PER_DAY + time_of_day
    origin = timestamp_key(shift_timestamp(start, freq, first))
    return origin + np.arange(steps, dtype=np.int64) * freq.period_seconds * 1_000_000


def _check(encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, not {encoding!r}")
