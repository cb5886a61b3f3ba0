"""Calendar features as network inputs: which encoding a fit uses, and each step's columns.

Where a series has a date `start` and the model a date frequency, every input step gets its
calendar columns (bptt.calendar_features: month of the year, day of the week, hour of the
day, ... as the frequency resolves them) after the value, and the head reads the calendar
columns of the first forecast step. Why the first step's alone, not every horizon step's: for
a fixed frequency the calendar of step s is a fixed function of the first step's, and a
linear one in both encodings (a permutation of one-hot columns, a rotation of each (sin, cos)
pair), so the linear head can give each step its own calendar effect from these columns, with
horizon times fewer head weights. They are known-future inputs: a forecast recomputes them
from each series' start, frequency and length (the forecast origin).

The choice (TrainingSpec.calendar): "auto" (DEFAULT_ENCODING where a frequency is known, off
where none is), "cyclic", "onehot", or "off". A series without a date start has zeros for its
calendar columns (its calendar is unknown; zero is no value of either encoding), as in
training, so one model serves dated and undated series alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .calendar import (
    CalendarError,
    Freq,
    Timestamp,
    format_timestamp,
    parse_freq,
    parse_timestamp,
)
from .calendar_features import calendar_features, cycles_for, feature_names
from .spec import SpecError

# What "auto" uses where the frequency is known: benchmarks/accuracy.py's better encoding on
# the real series (README, "Calendar features").
DEFAULT_ENCODING = "cyclic"


@dataclass(frozen=True)
class SeriesDates:
    """Where a series sits on the calendar, as given with it: its first value's timestamp and
    its own frequency (None: not given)."""

    start: Timestamp | None
    freq: Freq | None


def series_dates(series) -> list[SeriesDates]:
    """The `start` and `freq` of each item of `series` (the shapes data.as_series takes; only
    [{"id", "values", "start", "freq"}, ...] carries them), in its order. Unreadable ones are
    left out (None): the service checks them where they are submitted."""
    if isinstance(series, Mapping):
        return [SeriesDates(None, None)] * len(series)
    return [SeriesDates(_read(parse_timestamp, item.get("start")),
                        _read(parse_freq, item.get("freq")))
            if isinstance(item, Mapping) else SeriesDates(None, None) for item in series]


def _read(parse, value):
    if value is None:
        return None
    try:
        return parse(value)
    except (CalendarError, TypeError):
        return None


def model_freq(spec_freq: str | None, dates: list[SeriesDates]) -> Freq | None:
    """The date frequency the calendar follows: the spec's, else the one every series that
    gives a date frequency gives (None: none, or several)."""
    if spec_freq is not None:
        freq = _read(parse_freq, spec_freq)
        return freq if freq is not None and freq.unit != "step" else None
    found = {d.freq for d in dates if d.freq is not None and d.freq.unit != "step"}
    return found.pop() if len(found) == 1 else None


def dated(d: SeriesDates, freq: Freq) -> bool:
    """Whether a series' calendar is known on `freq`: a date start, and no other frequency."""
    return (d.start is not None and not isinstance(d.start, int)
            and (d.freq is None or d.freq == freq))


@dataclass(frozen=True)
class CalendarInputs:
    """The calendar columns of a model: the encoding, the frequency, and where each of its
    training series starts (None: unknown, zeros) and how long it was (its forecast origin)."""

    encoding: str  # "cyclic" or "onehot"
    freq: Freq
    starts: list[Timestamp | None]
    lengths: list[int]

    @property
    def names(self) -> list[str]:
        return feature_names(self.freq, self.encoding)

    @property
    def columns(self) -> int:
        return len(self.names)

    def steps(self, start: Timestamp | None, first: int, count: int) -> np.ndarray:
        """(count, columns) float32 columns of steps first .. first + count - 1 of a series
        that starts at `start` (zeros when its start is unknown)."""
        if start is None:
            return np.zeros((count, self.columns), np.float32)
        return calendar_features(start, self.freq, count, first,
                                 self.encoding).astype(np.float32)

    def forecast_inputs(self, starts: list[Timestamp | None], lengths: list[int],
                        window: int) -> tuple[np.ndarray, np.ndarray]:
        """(step features (S, window, columns), head features (S, columns)) of forecasts of
        series that start at `starts` and hold `lengths` values: the window's last `window`
        steps, then the first step after them, as training gathered them."""
        both = np.stack([self.steps(start, length - window, window + 1)
                         for start, length in zip(starts, lengths, strict=True)])
        return both[:, :window], both[:, window]

    def flat(self) -> np.ndarray:
        """(points, columns): every step of every training series, one after another
        (the first columns of data.ExtraInputs, gathered by index as the values are: 4 bytes a
        column and point, never a window's worth)."""
        return np.concatenate([self.steps(start, 0, n)
                               for start, n in zip(self.starts, self.lengths, strict=True)]
                              + [np.empty((0, self.columns), np.float32)])

    def card(self) -> dict:
        return {"encoding": self.encoding, "freq": self.freq.name, "features": self.names,
                "input": "after the value, each input step's own columns",
                "head": "the columns of the first forecast step (the step after the window)",
                "starts": [None if s is None else format_timestamp(s) for s in self.starts],
                "lengths": list(self.lengths)}

    @classmethod
    def from_card(cls, card: dict | None) -> CalendarInputs | None:
        """The calendar of a model card (None: "off", or a file written before calendars)."""
        if not card or card.get("encoding", "off") == "off":
            return None
        return cls(card["encoding"], parse_freq(card["freq"]),
                   [None if s is None else parse_timestamp(s) for s in card["starts"]],
                   list(card["lengths"]))


def off_card(reason: str) -> dict:
    """The model card's calendar section of a model without calendar columns, saying why."""
    return {"encoding": "off", "why": reason}


def resolve_calendar(spec, series) -> tuple[str, str]:
    """(the encoding a fit of `series` with `spec` uses: "cyclic", "onehot" or "off"; why it
    is off, "" when on), from the series' dates alone (their values are not read: each item
    needs only its "start" and "freq"), so that a service can show and check the choice when
    a job is submitted. A SpecError at ["calendar"] for an encoding the dates cannot carry."""
    series = series if isinstance(series, Mapping) else list(series)
    calendar, why = choose(spec.calendar, spec.freq, series_dates(series), [0] * len(series))
    return ("off", why) if calendar is None else (calendar.encoding, "")


def choose(choice: str, spec_freq: str | None, dates: list[SeriesDates],
           lengths: list[int]) -> tuple[CalendarInputs | None, str]:
    """(the calendar a fit uses, None for none; why, for a model without one). "auto" is off
    where it cannot be on; an explicit encoding that cannot be is a SpecError at ["calendar"]
    saying what it lacks."""
    if choice == "off":
        return None, "switched off (calendar: off)"
    freq = model_freq(spec_freq, dates)
    starts = [d.start if freq is not None and dated(d, freq) else None for d in dates]
    if freq is None:
        lack = "no date frequency is known (give freq, or a freq with each series)"
    elif not cycles_for(freq):
        lack = f"the frequency {freq.name} resolves no calendar cycle finer than a year"
    elif all(start is None for start in starts):
        lack = f"no series has a date start on the {freq.name} grid"
    else:
        encoding = DEFAULT_ENCODING if choice == "auto" else choice
        return CalendarInputs(encoding, freq, starts, list(lengths)), ""
    if choice == "auto":
        return None, f"auto, and {lack}"
    raise SpecError([{"loc": ["calendar"], "msg": f"{choice!r} needs calendar dates, but {lack}"}])
