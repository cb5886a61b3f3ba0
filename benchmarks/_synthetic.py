"""The synthetic series of benchmarks/accuracy.py, each with its oracle, and the Dataset that
holds series fitted together.

Four groups (numpy, fixed seed): trend plus season, AR(2), a random walk of rare level shifts,
and a multiplicative season on a rising trend. Every series comes with its oracle: the
process's own forecast (see Oracle).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import fftconvolve

# A synthetic series comes with its oracle: oracle(n, h) is the process's own forecast of the h
# points after the first n: each point's conditional median given the series' first n values,
# computed with the process's true parameters. That is the forecast with the lowest expected
# absolute error, so the lowest expected MASE, that any method seeing the same data can reach.
# It is not a method (it knows the parameters and the kind of process); it shows where a
# series' held-out points favour seasonal naive whatever a forecaster does.
Oracle = Callable[[int, int], np.ndarray]


@dataclass
class Dataset:
    """Series that share a season length and horizon, fitted together by one bptt model."""

    name: str
    kind: str  # "synthetic" or "real"
    series: dict[str, np.ndarray]
    m: int
    h: int
    oracles: dict[str, Oracle] = field(default_factory=dict)  # synthetic series only
    freq: str = ""  # of a real dataset
    # (first value's timestamp, pandas-style frequency) of a dated real dataset, for bptt's
    # calendar features; None: undated
    dates: tuple[str, str] | None = None
    source: str = ""  # where a real dataset comes from


# ---------------------------------------------------------------- synthetic data


def trend_season(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Oracle]:
    """Linear trend plus a sine of period 12 plus Gaussian noise."""
    t = np.arange(n)
    level, slope = rng.uniform(20, 100), rng.uniform(-0.1, 0.3)
    amplitude, phase = rng.uniform(2, 10), rng.uniform(0, 2 * np.pi)

    def signal(t: np.ndarray) -> np.ndarray:
        return level + slope * t + amplitude * np.sin(2 * np.pi * t / 12 + phase)

    values = signal(t) + rng.normal(0, rng.uniform(0.5, 2), n)
    return values, lambda origin, h: signal(np.arange(origin, origin + h))


def ar2(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Oracle]:
    """A stationary AR(2) process around a positive mean (after a burn-in)."""
    phi1 = rng.uniform(0.2, 1.3)
    phi2 = rng.uniform(-0.8, min(0.5, 0.95 - phi1))  # inside the stationary triangle
    burn = 200
    x = np.zeros(n + burn)
    noise = rng.normal(0, 1, n + burn)
    for i in range(2, n + burn):
        x[i] = phi1 * x[i - 1] + phi2 * x[i - 2] + noise[i]
    mean, x = rng.uniform(10, 50), x[burn:]

    def oracle(origin: int, h: int) -> np.ndarray:
        path = [x[origin - 2], x[origin - 1]]
        for _ in range(h):
            path.append(phi1 * path[-1] + phi2 * path[-2])
        return mean + np.array(path[2:])

    return mean + x, oracle


JUMP_RATE, JUMP_SD, NOISE_SD = 0.02, 5.0, 1.0  # of the level-shift process


def level_shifts(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Oracle]:
    """A random walk of rare jumps (2 % of steps) plus Gaussian noise."""
    jumps = rng.normal(0, JUMP_SD, n) * (rng.random(n) < JUMP_RATE)
    values = 50 + np.cumsum(jumps) + rng.normal(0, NOISE_SD, n)
    return values, lambda origin, h: level_shift_forecast(values[:origin], h)


def level_shift_forecast(past: np.ndarray, h: int, step: float = 0.05) -> np.ndarray:
    """The level-shift process's conditional medians of the h values after `past`: the exact
    Bayes filter of its level on a grid (the level is hidden: a value far from the last ones
    may be noise or a jump), then the predictive distribution h steps on."""
    pad = 6 * JUMP_SD
    grid = np.arange(past.min() - pad, past.max() + pad, step)
    offsets = np.arange(-pad, pad + step / 2, step)
    jump = np.exp(-0.5 * (offsets / JUMP_SD) ** 2)
    noise = np.exp(-0.5 * (offsets / NOISE_SD) ** 2)
    jump, noise = jump / jump.sum(), noise / noise.sum()

    def move(p: np.ndarray) -> np.ndarray:  # one step of the level: stay, or jump
        p = (1 - JUMP_RATE) * p + JUMP_RATE * fftconvolve(p, jump, mode="same")
        return np.clip(p, 0, None)

    p = np.ones_like(grid)
    for i, y in enumerate(past):
        if i:
            p = move(p)
        p = p * np.exp(-0.5 * ((y - grid) / NOISE_SD) ** 2)
        p /= p.sum()
    medians = []
    for _ in range(h):
        p = move(p)
        value = np.cumsum(fftconvolve(p, noise, mode="same"))
        medians.append(grid[np.searchsorted(value, value[-1] / 2)])
    return np.array(medians)


def multiplicative(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Oracle]:
    """A rising trend times a period-12 season whose amplitude grows with it, times noise."""
    base, slope = rng.uniform(50, 200), rng.uniform(0.2, 1.0)
    amplitude, phase = rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)

    def signal(t: np.ndarray) -> np.ndarray:
        return (base + slope * t) * (1 + amplitude * np.sin(2 * np.pi * t / 12 + phase))

    values = signal(np.arange(n)) * (1 + rng.normal(0, 0.03, n))
    return values, lambda origin, h: signal(np.arange(origin, origin + h))


SYNTHETIC: dict[str, tuple[Callable[[np.random.Generator, int], tuple[np.ndarray, Oracle]],
                           int, int]] = {
    "trend+season": (trend_season, 12, 12),
    "ar2": (ar2, 1, 8),
    "level shifts": (level_shifts, 1, 8),
    "mult. season": (multiplicative, 12, 12),
}


def synthetic(seed: int, per_group: int, lengths: tuple[int, int],
              groups: list[str]) -> list[Dataset]:
    """Synthetic groups of `per_group` series of random lengths in [lengths[0], lengths[1]]."""
    rng = np.random.default_rng(seed)
    out = []
    for group in groups:
        make, m, h = SYNTHETIC[group]
        made = {f"{group}-{i}": make(rng, int(rng.integers(lengths[0], lengths[1] + 1)))
                for i in range(per_group)}
        series = {name: values for name, (values, _) in made.items()}
        oracles = {name: oracle for name, (_, oracle) in made.items()}
        out.append(Dataset(group, "synthetic", series, m, h, oracles))
    return out


def full_synthetic(seed: int) -> list[Dataset]:
    """The full run's synthetic series: every group, 8 series of 100 to 300 points."""
    return synthetic(seed, 8, (100, 300), list(SYNTHETIC))
