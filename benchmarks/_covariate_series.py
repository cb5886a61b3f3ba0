"""The covariate group of benchmarks/accuracy.py: series whose future depends on a driver that is
known for the forecast's steps, where a forecaster given the driver should beat one without it.

Three synthetic datasets (numpy, fixed seed), daily, 8 series each, weekly season, 2 years:

- promo: a promotion indicator (runs of 3-7 days, about one day in six, each series its own
  calendar of them) multiplies sales by 1.3-1.8, the series' own lift;
- holiday: a holiday indicator shared by all series (fixed dates every year plus moving ones)
  cuts the day's level by 40-70 % and lifts the day before by 10-30 %;
- temperature: a temperature-like driver (a yearly sine plus AR(1) weather, its own per
  series) drives load through a U-shaped response (heating below 16 degrees, cooling above 20).

And one real dataset with a known driver that ships inside an installable package:

- macro_consumption: statsmodels macrodata's US real personal consumption, quarterly 1959-2009,
  with real disposable income as its driver (the example of the regression chapter of
  Hyndman and Athanasopoulos' Forecasting: Principles and Practice, there as growth rates).

Every driver is "future": its values over the held-out steps are given to the forecaster (an
oracle driver, as in any benchmark of regressors: AutoARIMA's X_df gets the same).
Each entry: (name, {series id: values}, {covariate: {series id: values}}, m, h, freq, source),
the covariates as long as their series.
"""

import numpy as np

CovariateSeries = tuple[str, dict[str, np.ndarray], dict[str, dict[str, np.ndarray]], int, int,
                        str, str]
DAYS, SERIES, H = 730, 8, 14


def promo(rng: np.random.Generator) -> CovariateSeries:
    values, indicator = {}, {}
    for i in range(SERIES):
        sid = f"promo-{i}"
        on = _runs(rng, DAYS, share=1 / 6, shortest=3, longest=7)
        lift = rng.uniform(1.3, 1.8)
        values[sid] = _weekly_base(rng) * np.where(on, lift, 1.0) * _noise(rng)
        indicator[sid] = on.astype(float)
    return ("promo", values, {"promo": indicator}, 7, H, "D",
            "synthetic: a promotion indicator multiplies sales by the series' own lift")


def holiday(rng: np.random.Generator) -> CovariateSeries:
    fixed = [0, 120, 185, 358, 359]  # days of the year, every year
    moving = rng.choice(DAYS, size=8, replace=False)  # the same days for every series
    days = np.zeros(DAYS, bool)
    days[[d + 365 * y for d in fixed for y in (0, 1) if d + 365 * y < DAYS]] = True
    days[moving] = True
    eve = np.roll(days, -1) & ~days
    values, indicator = {}, {}
    for i in range(SERIES):
        sid = f"holiday-{i}"
        effect = np.where(days, 1 - rng.uniform(0.4, 0.7), 1.0)
        effect = effect * np.where(eve, 1 + rng.uniform(0.1, 0.3), 1.0)
        values[sid] = _weekly_base(rng) * effect * _noise(rng)
        indicator[sid] = days.astype(float)
    return ("holiday", values, {"holiday": indicator}, 7, H, "D",
            "synthetic: a shared holiday calendar cuts the day's level and lifts the day before")


def temperature(rng: np.random.Generator) -> CovariateSeries:
    t = np.arange(DAYS)
    values, driver = {}, {}
    for i in range(SERIES):
        sid = f"temperature-{i}"
        weather = np.zeros(DAYS)
        shocks = rng.normal(0, 2.5, DAYS)
        for k in range(1, DAYS):
            weather[k] = 0.8 * weather[k - 1] + shocks[k]
        temp = rng.uniform(8, 16) + 10 * np.sin(2 * np.pi * (t - 100) / 365.25) + weather
        heating, cooling = np.maximum(16 - temp, 0), np.maximum(temp - 20, 0)
        response = 1 + 0.02 * heating ** 1.5 + 0.03 * cooling ** 1.5
        values[sid] = _weekly_base(rng) * response * _noise(rng)
        driver[sid] = temp
    return ("temperature", values, {"temperature": driver}, 7, H, "D",
            "synthetic: load with a U-shaped response to a temperature-like driver")


def macro_consumption() -> CovariateSeries:
    from statsmodels.datasets import macrodata

    table = macrodata.load_pandas().data
    return ("macro_consumption", {"realcons": table["realcons"].to_numpy(float)},
            {"realdpi": {"realcons": table["realdpi"].to_numpy(float)}}, 4, 8, "QS",
            "statsmodels macrodata: US real consumption driven by real disposable income, "
            "1959-2009")


def covariate_series(seed: int = 0, count: int | None = None) -> list[CovariateSeries]:
    """The group: the synthetic datasets from `seed`, then the real one (`count`: only the
    first `count` series of each synthetic dataset, the same as in the full group)."""
    rng = np.random.default_rng(seed)
    out = [promo(rng), holiday(rng), temperature(rng), macro_consumption()]
    if count is None:
        return out
    return [(name, dict(list(series.items())[:count]),
             {c: dict(list(by.items())[:count]) for c, by in drivers.items()}, *rest)
            for name, series, drivers, *rest in out]


def _weekly_base(rng: np.random.Generator) -> np.ndarray:
    """A level with a slow trend and a weekly pattern (weekends differ), all positive."""
    t = np.arange(DAYS)
    week = 1 + rng.uniform(0.1, 0.4) * np.where(t % 7 >= 5, -1, 0.3)
    return rng.uniform(50, 200) * (1 + rng.uniform(-0.1, 0.3) * t / DAYS) * week


def _noise(rng: np.random.Generator) -> np.ndarray:
    return np.exp(rng.normal(0, rng.uniform(0.03, 0.08), DAYS))


def _runs(rng: np.random.Generator, n: int, share: float, shortest: int, longest: int
          ) -> np.ndarray:
    """A boolean calendar of runs of `shortest`..`longest` days covering about `share` of n."""
    on = np.zeros(n, bool)
    mean_run = (shortest + longest) / 2
    for start in rng.choice(n, size=int(n * share / mean_run), replace=False):
        on[start:start + rng.integers(shortest, longest + 1)] = True
    return on
