"""Write examples/promo_sales.csv and examples/promo_future.csv: three shops' daily sales with a
promotion column, synthetic, for README's covariate example.

Made once with a fixed seed and committed, as examples/make_store_sales.py. Each shop has its
own level, a weekly pattern (busy weekends) and its own promotion calendar: runs of 2-5 days,
about one day in seven, that lift the day's sales by the shop's own factor (1.3-1.7). Nothing
in the sales alone says when the next promotion comes, so a forecaster given the planned
promotions (`promo`, a future-known covariate) can do what one without them cannot.

promo_sales.csv: `unique_id,ds,y,promo` for 2024-01-01 to 2024-12-31 (366 days);
promo_future.csv: `unique_id,ds,promo` for the 14 days after, the promotions already planned.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np

FIRST = date(2024, 1, 1)
DAYS, HORIZON = 366, 14
WEEK = np.array([0.92, 0.88, 0.90, 0.95, 1.05, 1.25, 1.05])  # Monday first: busy weekends
SHOPS = {"shop-a": (120.0, 1.5), "shop-b": (80.0, 1.3), "shop-c": (45.0, 1.7)}  # level, lift


def promotions(rng: np.random.Generator, days: int) -> np.ndarray:
    """0/1 per day: runs of 2-5 promotion days, about one day in seven."""
    promo = np.zeros(days, dtype=int)
    day = int(rng.integers(0, 10))
    while day < days:
        length = int(rng.integers(2, 6))
        promo[day:day + length] = 1
        day += length + int(rng.integers(12, 30))
    return promo


def main() -> None:
    rng = np.random.default_rng(11)
    here = Path(__file__).parent
    with (here / "promo_sales.csv").open("w", newline="") as sales, \
            (here / "promo_future.csv").open("w", newline="") as future:
        sales_rows, future_rows = csv.writer(sales, lineterminator="\n"), \
            csv.writer(future, lineterminator="\n")
        sales_rows.writerow(["unique_id", "ds", "y", "promo"])
        future_rows.writerow(["unique_id", "ds", "promo"])
        for shop, (level, lift) in SHOPS.items():
            promo = promotions(rng, DAYS + HORIZON)
            for t in range(DAYS + HORIZON):
                day = FIRST + timedelta(days=t)
                if t >= DAYS:
                    future_rows.writerow([shop, day.isoformat(), promo[t]])
                    continue
                trend = 1 + 0.0004 * t
                value = level * trend * WEEK[day.weekday()] * (lift if promo[t] else 1.0)
                value *= 1 + 0.05 * rng.standard_normal()
                sales_rows.writerow([shop, day.isoformat(), round(float(value), 1), promo[t]])


if __name__ == "__main__":
    main()
