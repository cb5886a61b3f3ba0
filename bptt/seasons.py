"""Season lengths implied by pandas-style frequency strings."""

import re

# Period of the dominant seasonality for each base frequency (the usual choices of the
# forecasting ecosystem: a year of months or quarters, a week of days, a day of hours).
_SEASONS = {
    "Y": 1, "A": 1, "YS": 1, "AS": 1, "YE": 1,
    "Q": 4, "QS": 4, "QE": 4,
    "M": 12, "MS": 12, "ME": 12,
    "W": 52,
    "D": 7, "B": 5,
    "H": 24, "h": 24,
    "T": 60, "min": 60,
    "S": 60, "s": 60,
}


def season_from_freq(freq: str) -> int | None:
    """Season length for a frequency like "MS", "W-SUN", "15min" or "D"; None if unknown."""
    match = re.fullmatch(r"(\d*)([A-Za-z]+)(?:-[A-Za-z]+)?", freq.strip())
    if not match:
        return None
    base = match.group(2)
    season = _SEASONS.get(base, _SEASONS.get(base.upper()))
    if season is None:
        return None
    multiple = int(match.group(1) or 1)
    return max(1, season // multiple) if season % multiple == 0 else 1
