"""Calendar features: which cycles a frequency resolves, their values on known dates, and the
forecast's steps continuing the series' own."""

from datetime import datetime

import numpy as np
import pytest

from bptt.calendar import parse_freq, shift_timestamp
from bptt.calendar_features import calendar_features, feature_names


@pytest.mark.parametrize(("freq", "names"), [
    ("MS", ["month_of_year_sin", "month_of_year_cos"]),
    ("QS", ["month_of_year_sin", "month_of_year_cos"]),
    ("YS", []),
    ("W-SUN", ["week_of_year_sin", "week_of_year_cos"]),
    ("D", ["day_of_week_sin", "day_of_week_cos", "day_of_year_sin", "day_of_year_cos"]),
    ("7D", ["day_of_year_sin", "day_of_year_cos"]),
    ("B", ["day_of_week_sin", "day_of_week_cos", "day_of_year_sin", "day_of_year_cos"]),
    ("h", ["hour_of_day_sin", "hour_of_day_cos", "day_of_week_sin", "day_of_week_cos"]),
    ("15min", ["hour_of_day_sin", "hour_of_day_cos", "day_of_week_sin", "day_of_week_cos"]),
    ("1", []),
])
def test_a_frequency_gets_the_cycles_its_period_resolves(freq: str, names: list[str]) -> None:
    assert feature_names(parse_freq(freq)) == names
    start = 0 if freq == "1" else datetime(2026, 1, 5)
    assert calendar_features(start, parse_freq(freq), 10).shape == (10, len(names))


def test_cyclic_phases_on_known_dates() -> None:
    monthly = calendar_features(datetime(2026, 1, 1), parse_freq("MS"), 13)
    np.testing.assert_allclose(monthly[0], [0, 1], atol=1e-12)  # January: phase 0
    np.testing.assert_allclose(monthly[6], [0, -1], atol=1e-12)  # July: half the cycle
    np.testing.assert_allclose(monthly[12], monthly[0], atol=1e-12)  # a year on
    quarterly = calendar_features(datetime(2026, 4, 1), parse_freq("QS"), 2)
    np.testing.assert_allclose(quarterly, [[1, 0], [0, -1]], atol=1e-12)  # April, July
    # 2026-12-03 is a Thursday (weekday 3), 00:00
    hourly = calendar_features(datetime(2026, 12, 3), parse_freq("h"), 7)
    np.testing.assert_allclose(hourly[6, :2], [np.sin(np.pi / 2), np.cos(np.pi / 2)],
                               atol=1e-12)  # 06:00 is a quarter of the day
    np.testing.assert_allclose(hourly[0, 2:], [np.sin(2 * np.pi * 3 / 7),
                                               np.cos(2 * np.pi * 3 / 7)], atol=1e-12)


def test_one_hot_gives_each_value_a_column_and_keeps_long_cycles_cyclic() -> None:
    freq = parse_freq("D")
    names = feature_names(freq, "onehot")
    assert names[:7] == [f"day_of_week={d}" for d in range(7)]
    assert names[7:] == ["day_of_year_sin", "day_of_year_cos"]
    days = calendar_features(datetime(2026, 11, 30), freq, 14, encoding="onehot")  # a Monday
    assert days.shape == (14, 9)
    np.testing.assert_array_equal(days[:, :7].argmax(axis=1), np.arange(14) % 7)
    np.testing.assert_array_equal(days[:, :7].sum(axis=1), 1)
    months = calendar_features(datetime(2025, 11, 1), parse_freq("MS"), 3, encoding="onehot")
    np.testing.assert_array_equal(months.argmax(axis=1), [10, 11, 0])
    with pytest.raises(ValueError, match="encoding"):
        feature_names(freq, "binary")


def test_business_days_skip_the_weekend() -> None:
    days = calendar_features(datetime(2026, 12, 3), parse_freq("B"), 5, encoding="onehot")
    np.testing.assert_array_equal(days[:, :7].argmax(axis=1), [3, 4, 0, 1, 2])  # Thu..Wed


@pytest.mark.parametrize("freq", ["MS", "QS-FEB", "W-WED", "D", "B", "h", "15min", "2D"])
@pytest.mark.parametrize("encoding", ["cyclic", "onehot"])
def test_a_forecasts_steps_continue_the_series_features(freq: str, encoding: str) -> None:
    """The features of the steps after a series' end (first = its length) are those of the
    same steps counted from where they fall: what a forecast recomputes from the model card."""
    parsed = parse_freq(freq)
    start = datetime(2024, 2, 29) if freq not in ("MS", "QS-FEB") else datetime(2024, 2, 1)
    if freq == "W-WED":
        start = datetime(2024, 2, 28)
    whole = calendar_features(start, parsed, 400, encoding=encoding)
    future = calendar_features(start, parsed, 30, first=370, encoding=encoding)
    np.testing.assert_allclose(future, whole[370:], atol=1e-9)
    moved = calendar_features(shift_timestamp(start, parsed, 370), parsed, 30, encoding=encoding)
    np.testing.assert_allclose(moved, whole[370:], atol=1e-9)
