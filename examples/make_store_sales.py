"""Write examples/store_sales.csv: two stores' monthly sales (thousands), synthetic.

Made once with a fixed seed and committed, so that README's examples run on data that looks like
a shop's: a trend, a December peak and a January dip, noise in proportion to the level, a store
that opened later (series of different lengths) and a month whose figure was lost (a gap, an
empty y). Run it again only to change the example; README's commands read the CSV.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

# Multiplicative month effects, January first: the post-holiday dip, a spring and summer lift,
# the December peak.
SEASON = np.array([0.82, 0.85, 0.97, 1.00, 1.03, 1.06, 1.08, 1.05, 0.98, 1.00, 1.08, 1.38])


def monthly(rng: np.random.Generator, first: tuple[int, int], months: int, level: float,
            growth: float) -> list[tuple[str, float]]:
    """(YYYY-MM, sales) for `months` months from `first`: trend x season x 4 % noise."""
    year, month = first
    rows = []
    for t in range(months):
        index = month - 1 + t
        label = f"{year + index // 12:04d}-{index % 12 + 1:02d}"
        value = (level + growth * t) * SEASON[index % 12] * (1 + 0.04 * rng.standard_normal())
        rows.append((label, round(float(value), 1)))
    return rows


def main() -> None:
    rng = np.random.default_rng(7)
    stores = {"store-1": monthly(rng, (2015, 1), 120, level=118.0, growth=0.55),
              "store-2": monthly(rng, (2017, 4), 93, level=64.0, growth=0.35)}
    lost = "2021-02"  # store-2's figure for this month never reached the file: a gap
    path = Path(__file__).with_name("store_sales.csv")
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["unique_id", "ds", "y"])
        for store, rows in stores.items():
            for ds, y in rows:
                writer.writerow([store, ds, "" if (store, ds) == ("store-2", lost) else y])


if __name__ == "__main__":
    main()
