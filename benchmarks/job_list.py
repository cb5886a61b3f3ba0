"""Latency of the runs table's queries: GET /v1/jobs in every sort and with filters, and the
status poll GET /v1/jobs/<id>, for a tenant with many jobs that each have many epochs.

In-process (Flask's test client: no sockets, no gunicorn), on a migrated SQLite database in a
temporary directory, or on the PostgreSQL database given with --database-url (a scratch
database: the benchmark adds a tenant and its jobs). Jobs and their metrics rows (with a
48-step gradient flow and an insight record each, as workers write them) are inserted
directly. Prints one Markdown table: median and p90 milliseconds per request over --repeat
requests, a page of 20 jobs each.

    python benchmarks/job_list.py                      # 1,000 jobs x 200 epochs (about 1 min)
    python benchmarks/job_list.py --jobs 200 --epochs 50 --repeat 20   # a smoke run
    python benchmarks/job_list.py --database-url postgresql://user:pass@host/scratch
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from service.api.extensions import services
from service.app import create_app
from service.settings import Settings
from service.store import repository
from service.store.codec import compress_json
from service.store.db import upgrade
from service.store.job_listing import SORTS
from service.store.tables import Dataset, EpochMetric, Job, new_id, utcnow

CELLS = ("lstm", "gru", "rnn")
STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "cancelled", "running")


def populate(sessions, *, tenant_id: int, jobs: int, epochs: int, seed: int = 0) -> list[str]:
    """`jobs` jobs of the tenant, each with a dataset row and `epochs` metrics rows."""
    rng = random.Random(seed)
    ids = []
    flow = [round(rng.random(), 6) for _ in range(48)]
    insight = {"memory_horizon": 12, "memory_threshold": 0.01,
               "spectral_radius": [{"i": 0.9, "f": 0.8, "g": 0.7, "o": 0.6}],
               "gate_saturation": [{"i": 0.01, "f": 0.02, "g": 0.0, "o": 0.03}],
               "truncation_cosine": None, "suggested_max_norm": 0.4}
    for start in range(0, jobs, 100):
        with sessions.begin() as session:
            rows, datasets, metrics = [], [], []
            for k in range(start, min(jobs, start + 100)):
                job_id = new_id()
                ids.append(job_id)
                now = utcnow()
                spec = {"horizon": rng.choice([6, 12, 24]),
                        "model": {"cell": rng.choice(CELLS), "hidden_size": rng.choice([16, 32,
                                                                                        64]),
                                  "num_layers": rng.choice([1, 2])}}
                status = rng.choice(STATUSES)
                rows.append({"id": job_id, "tenant_id": tenant_id, "spec": spec,
                             "resolved_spec": spec, "status": status, "created_at": now,
                             "started_at": now, "epochs_done": epochs, "epochs_total": epochs,
                             "finished_at": None if status == "running" else now,
                             "score": rng.random() if status == "succeeded" else None,
                             "name": f"run {k}" if k % 3 else None,
                             "labels": {"team": rng.choice(["north", "south", "east"])}})
                datasets.append({"job_id": job_id, "series_zlib": compress_json([]),
                                 "num_series": rng.randint(1, 500), "num_points": 1000,
                                 "created_at": now})
                metrics += [{"job_id": job_id, "epoch": e, "attempt": 1,
                             "train_loss": rng.random(), "val_loss": rng.random(),
                             "grad_norm": 1.0, "max_grad_norm": 2.0, "clip_fraction": 0.1,
                             "learning_rate": 0.003, "seconds": 0.1, "grad_flow": flow,
                             "insight": insight, "recorded_at": now}
                            for e in range(1, epochs + 1)]
            session.execute(insert(Job), rows)
            session.execute(insert(Dataset), datasets)
            session.execute(insert(EpochMetric), metrics)
    return ids


def timed(client, path: str, headers: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median and p90 milliseconds of `repeat` GETs of `path`."""
    times = []
    for _ in range(repeat):
        begin = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append(1000 * (time.perf_counter() - begin))
        assert response.status_code == 200, response.get_json()
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {"BPTT_DATA_DIR": scratch}
        if args.database_url:
            env["BPTT_DATABASE_URL"] = args.database_url
        settings = Settings.from_env(env)
        upgrade(settings.database_url)
        app = create_app(settings)
        logging.disable(logging.INFO)  # no access-log line per request among the table's rows
        sessions = services(app).sessions
        with sessions.begin() as session:
            tenant = repository.create_tenant(session, name=f"bench{time.time_ns()}")
            token = repository.create_token(session, tenant=tenant).token
            tenant_id = tenant.id
        begin = time.perf_counter()
        ids = populate(sessions, tenant_id=tenant_id, jobs=args.jobs, epochs=args.epochs)
        filled = time.perf_counter() - begin
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        paths = [("status poll", f"/v1/jobs/{ids[len(ids) // 2]}")]
        paths += [(f"sort={s}", f"/v1/jobs?sort={s}") for s in ("-created", *SORTS)]
        paths += [("label=team:north", "/v1/jobs?label=team:north"),
                  ("cell=gru&status=succeeded", "/v1/jobs?cell=gru&status=succeeded"),
                  ("sort=val_loss, 3rd page", None)]
        database = "PostgreSQL" if args.database_url else "SQLite"
        print(f"{args.jobs:,} jobs x {args.epochs} epochs on {database} (filled in {filled:.0f}"
              f" s); {platform.processor() or platform.machine()}, Python "
              f"{sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}\n")
        print("| request (20 jobs a page) | median ms | p90 ms |")
        print("|---|---|---|")
        for name, path in paths:
            if path is None:  # a page deep in a computed sort: the cursor's keyset predicate
                cursor = None
                for _ in range(2):
                    page = client.get("/v1/jobs?sort=val_loss" + (f"&cursor={cursor}" if cursor
                                                                 else ""), headers=headers)
                    cursor = page.get_json()["next_cursor"]
                path = f"/v1/jobs?sort=val_loss&cursor={cursor}"
            median, p90 = timed(client, path, headers, args.repeat)
            print(f"| {name} | {median:.2f} | {p90:.2f} |")
        services(app).engine.dispose()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
