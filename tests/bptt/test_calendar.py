"""bptt.calendar: frequencies read and named, grids checked, spacing inferred, dates stepped."""

from datetime import datetime

import numpy as np
import pytest

from bptt import (
    CalendarError,
    OffGrid,
    SpacingEvidence,
    format_timestamp,
    future_stamps,
    grid_positions,
    grid_positions_of_keys,
    infer_freq,
    key_timestamp,
    parse_freq,
    parse_timestamp,
    shift_timestamp,
    timestamp_key,
)


def stamps(*texts: str | int) -> list:
    return [parse_timestamp(t) for t in texts]


@pytest.mark.parametrize(("text", "name"), [
    ("MS", "MS"), ("M", "ME"), ("ME", "ME"), ("2MS", "2MS"), ("QS", "QS"), ("QS-JAN", "QS"),
    ("QS-FEB", "QS-FEB"), ("Q", "QE"), ("Q-NOV", "QE-NOV"), ("YS", "YS"), ("AS-JUL", "YS-JUL"),
    ("A", "YE"), ("W", "W-SUN"), ("W-MON", "W-MON"), ("D", "D"), ("2D", "2D"), ("B", "B"),
    ("H", "h"), ("6h", "6h"), ("15min", "15min"), ("T", "min"), ("S", "s"), ("7", "7"),
])
def test_frequencies_read_as_pandas_names_them(text: str, name: str) -> None:
    assert parse_freq(text).name == name


@pytest.mark.parametrize("text", ["X", "MS-JAN", "D-MON", "0D", "W-XYZ", "", "0", "1.5D"])
def test_unknown_frequencies_are_refused(text: str) -> None:
    with pytest.raises(CalendarError):
        parse_freq(text)


@pytest.mark.parametrize(("start", "freq", "after_three"), [
    ("2021-01", "MS", "2021-04-01"),
    ("2021-01-31", "ME", "2021-04-30"),  # month ends stay month ends (Feb 28 in between)
    ("2021-02-01", "QS-FEB", "2021-11-01"),
    ("2020-12-31", "QE", "2021-09-30"),
    ("2019-01-01", "YS", "2022-01-01"),
    ("2021-01-03", "W-SUN", "2021-01-24"),
    ("2021-01-29", "B", "2021-02-03"),  # Friday + 3 business days: Wednesday
    ("2021-01-01", "2D", "2021-01-07"),
    ("2021-01-01T23:00", "h", "2021-01-02T02:00:00"),
    ("2021-01-01T00:00", "15min", "2021-01-01T00:45:00"),
    (10, "5", 25),
])
def test_stepping_forward(start: str | int, freq: str, after_three: str | int) -> None:
    moved = shift_timestamp(parse_timestamp(start), parse_freq(freq), 3)
    assert format_timestamp(moved) == after_three
    ahead = future_stamps(parse_timestamp(start), parse_freq(freq), 3)
    assert format_timestamp(ahead[-1]) == after_three and len(ahead) == 3


def test_times_with_offsets_are_utc() -> None:
    assert parse_timestamp("2021-01-01T09:30+02:00") == datetime(2021, 1, 1, 7, 30)
    with pytest.raises(CalendarError):
        parse_timestamp("2021-13")
    with pytest.raises(CalendarError):
        parse_timestamp("tomorrow")


@pytest.mark.parametrize(("series", "name"), [
    ([["2021-01", "2021-02", "2021-04"]], "MS"),  # a gap does not change the step
    ([["2021-01-31", "2021-02-28", "2021-03-31"]], "ME"),
    ([["2021-01-01", "2021-04-01", "2021-10-01"]], "QS"),
    ([["2021-02-01", "2021-05-01"], ["2021-08-01", "2021-11-01"]], "QS-FEB"),
    ([["2021-03-31", "2021-06-30"]], "QE"),
    ([["2020-07-01", "2021-07-01"]], "YS-JUL"),
    ([["2021-01-03", "2021-01-10", "2021-01-24"]], "W-SUN"),
    ([["2021-01-07", "2021-01-08", "2021-01-11"]], "B"),
    ([["2021-01-01", "2021-01-02", "2021-01-04"]], "D"),
    ([["2021-01-01T00:00", "2021-01-01T00:15", "2021-01-01T00:45"]], "15min"),
    ([["2021-01-01T00:00", "2021-01-01T01:00"], ["2021-01-01T05:00"]], "h"),
    ([[1, 2, 3], [10, 12]], "1"),
    ([[3, 6, 9]], "3"),
])
def test_inferred_frequencies(series: list[list[str | int]], name: str) -> None:
    found = infer_freq([stamps(*s) for s in series])
    assert found is not None and found.name == name


def test_nothing_to_infer_from_single_points() -> None:
    assert infer_freq([stamps("2021-01-01"), stamps("2021-03-01")]) is None


def test_the_grid_places_points_and_names_the_first_off_it() -> None:
    assert grid_positions(stamps("2021-01", "2021-02", "2021-05"), parse_freq("MS")) == [0, 1, 4]
    assert grid_positions(stamps(1, 3, 9), parse_freq("2")) == [0, 1, 4]
    with pytest.raises(OffGrid) as caught:
        grid_positions(stamps("2021-01", "2021-02", "2021-02-15", "2021-04"), parse_freq("MS"))
    assert caught.value.index == 2
    assert "2021-02-01 and 2021-03-01" in caught.value.msg
    with pytest.raises(OffGrid) as caught:
        grid_positions(stamps("2021-01-15", "2021-02-15"), parse_freq("MS"))
    assert caught.value.index == 0 and "first day of a month" in caught.value.msg
    with pytest.raises(OffGrid) as caught:
        grid_positions(stamps("2021-01-04"), parse_freq("W-SUN"))  # a Monday
    assert "Sunday" in caught.value.msg
    with pytest.raises(OffGrid):
        grid_positions(stamps(1, 2, 4), parse_freq("2"))
    with pytest.raises(OffGrid):
        grid_positions(stamps(1, 2), parse_freq("D"))  # integers need an integer step


@pytest.mark.parametrize(("texts", "freq"), [
    (["2021-01", "2021-02", "2021-05", "2022-01"], "MS"),
    (["2020-01-31", "2020-02-29", "2020-06-30"], "ME"),
    (["2021-02-01", "2021-08-01"], "QS-FEB"),
    (["2021-01-29", "2021-02-01", "2021-02-04"], "B"),
    (["2021-01-03T06:00", "2021-01-17T06:00"], "W-SUN"),
    (["1969-12-31T23:00", "1970-01-01T02:00"], "h"),  # either side of the keys' origin
    ([-4, 2, 8], "3"),
])
def test_keys_are_placed_as_timestamps_are(texts: list[str | int], freq: str) -> None:
    moments = stamps(*texts)
    keys = np.array([timestamp_key(m) for m in moments])
    integer = isinstance(moments[0], int)
    assert [key_timestamp(k, integer=integer) for k in keys.tolist()] == moments
    placed = grid_positions_of_keys(keys, parse_freq(freq), integer=integer)
    assert placed.tolist() == grid_positions(moments, parse_freq(freq))
    assert [format_timestamp(shift_timestamp(moments[0], parse_freq(freq), p))
            for p in placed.tolist()] == [format_timestamp(m) for m in moments]


def test_evidence_gathered_series_by_series_is_the_pooled_inference() -> None:
    series = [stamps("2021-01", "2021-02", "2021-04"), stamps("2020-06", "2020-07"),
              stamps("2019-03-15")]  # one point off month starts: the majority decides
    evidence = SpacingEvidence(integer=False)
    for one in series:
        evidence.add(np.array([timestamp_key(m) for m in one]))
    found = evidence.freq()
    assert found is not None and found.name == infer_freq(series).name == "MS"
    # the same series one after the other, in one array: the spacing between them not counted
    together = SpacingEvidence(integer=False)
    together.add(np.array([timestamp_key(m) for one in series for m in one]), np.array([0, 3, 5]))
    assert (together.pairs, together.steps, together.freq()) == \
        (evidence.pairs, evidence.steps, found)
    assert SpacingEvidence(integer=True).freq() is None  # no two points: nothing to read


def test_integer_ds_must_fit_64_bit_keys() -> None:
    assert parse_timestamp(str(2**62)) == 2**62
    with pytest.raises(CalendarError):
        parse_timestamp(str(2**62 + 1))
