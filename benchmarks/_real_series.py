"""The real series of benchmarks/accuracy.py: all of them ship inside installable packages
(statsmodels, statsforecast, pmdarima: the `bench` extra), so nothing is downloaded at run time.

Each entry: (name, {series id: values}, season length m, horizon h, frequency, source). Series
of one entry are fitted together by one bptt model (macrodata's three); every other entry is a
series of its own. A few long series are cut to their latest part (said in the loader) to keep
the classical baselines' fits, AutoARIMA's above all, within minutes on two cores.
"""

from collections.abc import Callable

import numpy as np

RealSeries = tuple[str, dict[str, np.ndarray], int, int, str, str]


def _statsmodels() -> list[RealSeries]:
    from statsmodels.datasets import co2, elnino, macrodata, nile, sunspots

    weekly = co2.load_pandas().data["co2"].to_numpy(float)  # gaps stay gaps (NaN)
    table = elnino.load_pandas().data
    macro = macrodata.load_pandas().data
    return [
        ("co2", {"co2": weekly[-312:]}, 52, 13, "weekly",
         "statsmodels co2: Mauna Loa CO2, the last 312 weeks (6 years) of 1958-2001"),
        ("elnino", {"elnino": table.drop(columns="YEAR").to_numpy(float).ravel()}, 12, 12,
         "monthly", "statsmodels elnino: sea surface temperatures, 1950-2010"),
        ("macrodata", {c: macro[c].to_numpy(float) for c in ("realgdp", "cpi", "unemp")}, 4, 8,
         "quarterly", "statsmodels macrodata: US real GDP, CPI, unemployment, 1959-2009"),
        ("sunspots", {"sunspots": sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(float)},
         11, 10, "yearly", "statsmodels sunspots: yearly activity 1700-2008 (an ~11-year cycle)"),
        ("nile", {"nile": nile.load_pandas().data["volume"].to_numpy(float)}, 1, 10, "yearly",
         "statsmodels nile: yearly volume at Aswan, 1871-1970"),
    ]


def _statsforecast() -> list[RealSeries]:
    from statsforecast.utils import AirPassengers

    return [("airpassengers", {"airpassengers": np.asarray(AirPassengers, float)}, 12, 12,
             "monthly", "statsforecast AirPassengers: airline passengers, 1949-1960")]


def _pmdarima() -> list[RealSeries]:
    from pmdarima import datasets

    def series(loader: Callable) -> np.ndarray:
        return np.asarray(loader(as_series=True), float)

    half_hourly = series(datasets.load_taylor)
    close = datasets.load_msft()["Close"].to_numpy(float)
    return [
        ("wineind", {"wineind": series(datasets.load_wineind)}, 12, 12, "monthly",
         "pmdarima wineind: Australian wine sales, 1980-1994"),
        ("sunspots-monthly", {"sunspots-monthly": series(datasets.load_sunspots)[-600:]}, 12,
         12, "monthly", "pmdarima sunspots: monthly sunspot numbers, the last 600 months"),
        ("woolyrnq", {"woolyrnq": series(datasets.load_woolyrnq)}, 4, 8, "quarterly",
         "pmdarima woolyrnq: Australian wool production, 1965-1994"),
        ("ausbeer", {"ausbeer": series(datasets.load_ausbeer)}, 4, 8, "quarterly",
         "pmdarima ausbeer: Australian beer production, 1956-2008"),
        ("austres", {"austres": series(datasets.load_austres)}, 4, 8, "quarterly",
         "pmdarima austres: Australian residents, 1971-1993"),
        ("taylor", {"taylor": half_hourly.reshape(-1, 4).sum(axis=1)[-552:]}, 12, 12,
         "2-hourly", "pmdarima taylor: half-hourly electricity demand (England and Wales, "
                     "2000) summed to 2-hourly, the last 46 days"),
        ("msft", {"msft": close[-750:]}, 1, 10, "daily",
         "pmdarima msft: Microsoft's daily closing price, the last 750 trading days to 2017"),
        ("lynx", {"lynx": series(datasets.load_lynx)}, 10, 10, "yearly",
         "pmdarima lynx: Canadian lynx trappings, 1821-1934 (a ~10-year cycle)"),
        ("heartrate", {"heartrate": series(datasets.load_heartrate)}, 1, 10, "0.5 s",
         "pmdarima heartrate: a heart rate every half second, 150 readings"),
    ]


# Each dated entry's first value (of the part kept) and its frequency, from the source's own
# index: what bptt's calendar features read (benchmarks/accuracy.py --calendar). Left out:
# msft, whose trading days skip holidays (no pandas frequency follows them), and heartrate,
# whose half seconds have no date.
DATES = {
    "co2": ("1996-01-13", "W-SAT"),  # the first of the last 312 weeks
    "elnino": ("1950-01", "MS"),
    "macrodata": ("1959-01", "QS"),
    "sunspots": ("1700-01", "YS"),
    "nile": ("1871-01", "YS"),
    "airpassengers": ("1949-01", "MS"),
    "wineind": ("1980-01", "MS"),
    "sunspots-monthly": ("1934-01", "MS"),  # the first of the last 600 months
    "woolyrnq": ("1965-01", "QS"),
    "ausbeer": ("1956-01", "QS"),
    "austres": ("1971-04", "QS"),
    # half hours from Monday 2000-06-05 00:00; the last 552 of 1008 2-hour sums start 38 days on
    "taylor": ("2000-07-13T00:00", "2h"),
    "lynx": ("1821-01", "YS"),
}


def real_series(quick: bool = False) -> list[RealSeries]:
    """Every real entry (only nile in a quick run); a package that is not installed leaves
    its entries out, and the caller says so."""
    if quick:
        return [s for s in _statsmodels() if s[0] == "nile"]
    out = []
    for source in (_statsmodels, _statsforecast, _pmdarima):
        try:
            out += source()
        except ImportError:
            continue
    return out
