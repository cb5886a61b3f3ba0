"""Latency of the HTTP API under gunicorn: job status polls and batch forecasts.

Serves the app exactly as `bptt up` does (service.serve.api_command: gunicorn, gthread, 2
processes × 2 threads by default), on a temporary data dir with a migrated SQLite database, or on
the PostgreSQL database given with --database-url (a scratch database: the benchmark adds a
tenant, a token and a job to it). Prints two Markdown tables:

1. `GET /v1/jobs/<id>` status polls at 1, 8 and 32 concurrent clients: each client is a thread
   with its own keep-alive `http.client` connection, polling for a fixed duration; p50, p99 and
   requests/s. Target: p99 < 20 ms at 32 clients.
2. `POST /v1/forecasts` for 1, 100 and 10,000 series of a GRU (hidden 64, horizon 24, quantiles
   0.1/0.5/0.9) trained here with bptt.fit on small synthetic series and stored as a succeeded
   job's model. BPTT_SYNC_FORECAST_MAX_SERIES is raised so that even 10,000 series are answered
   in the request. End-to-end latency (client clock: send the pre-encoded body, read the whole
   answer) beside server time: the service logs every request's `duration_ms` (from the first
   before_request to after_request, so parsing, validation, the forecast and JSON encoding, but
   not socket I/O), matched here by X-Request-ID. Target: 10,000 series < 1 s of server time.
   The status polls get the same server-side column.
3. Where the server time of the 10,000-series request goes: the route's own functions (parse,
   validate, forecast, encode) timed one by one in-process, without HTTP.

Below the poll table, a floor row: the same gunicorn settings serving a Flask app that answers
every poll with the same bytes and does nothing else (benchmarks/_floor_app.py: no token
check, no database, no log line), polled the same way at 32 clients. What the service adds to a
poll is the difference; a floor above the target means no status route can meet it here.

    python benchmarks/api.py                      # 5 s per concurrency level (about 35 s)
    python benchmarks/api.py --quick              # a smoke run (about 15 s)
    python benchmarks/api.py --database-url postgresql://user:pass@host/scratch

Client and server share the machine (the clients are Python threads), so the poll figures are
a floor for what the server alone would do. Numbers depend on the machine: rerun it rather than
trust a copy.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import bptt
from service import serve
from service.api import validation
from service.api.bodies import parse_json
from service.settings import Settings
from service.store import repository
from service.store.db import session_factory, upgrade
from service.store.forecast_batches import run_forecast
from service.store.tables import Job, TrainedModel, utcnow

HOST = "127.0.0.1"
PROCESSES, THREADS = serve.API_PROCESSES, serve.API_THREADS  # as `bptt up` runs it
CONCURRENCY = (1, 8, 32)
SERIES_COUNTS = (1, 100, 10_000)
HORIZON, HIDDEN, INPUT_WINDOW = 24, 64, 48
FORECAST_LENGTH = 72  # values per forecast series: the window and a day of history before it
POLL_TARGET_P99_MS = 20.0
FORECAST_TARGET_S = 1.0
SPEC = {"horizon": HORIZON, "quantiles": [0.1, 0.5, 0.9],
        "model": {"cell": "gru", "hidden_size": HIDDEN},
        "window": {"input_size": INPUT_WINDOW},
        "training": {"epochs": 2, "ensemble": 1, "seed": 0}}


@dataclass(frozen=True)
class Served:
    """A running API and what the benchmark needs to call it."""

    port: int
    token: str
    job_id: str
    log_path: Path
    model: bptt.Model


@dataclass
class PollRow:
    clients: int
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    per_second: float
    id_prefix: str  # of the X-Request-IDs it sent
    server_ms: list[float] = field(default_factory=list)


@dataclass
class ForecastRow:
    series: int
    body_mb: float
    answer_mb: float
    end_to_end_s: list[float]
    request_ids: list[str]
    server_s: list[float] = field(default_factory=list)


def synthetic_series(count: int, length: int, seed: int) -> list[dict]:
    """Daily-seasonal (24-step) series with noise and per-series levels."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    level = rng.uniform(5, 50, size=(count, 1))
    phase = rng.integers(0, 24, size=(count, 1))
    values = level * (1 + 0.3 * np.sin(2 * np.pi * (t + phase) / 24))
    values += rng.normal(0, 0.05, size=(count, length)) * level
    return [{"id": f"series-{i}", "values": np.round(row, 3).tolist()}
            for i, row in enumerate(values)]


def train_model(epochs: int) -> tuple[bptt.FitResult, list[dict]]:
    """The benchmark's GRU, trained quickly in-process."""
    series = synthetic_series(16, 200, seed=0)
    spec = {**SPEC, "training": {**SPEC["training"], "epochs": epochs}}
    return bptt.fit(series, spec=bptt.TrainingSpec.from_dict(spec)), series


def store_job(settings: Settings, result: bptt.FitResult, series: list[dict]) -> tuple[str, str]:
    """A tenant, its token, and a succeeded job holding `result`'s model: (token, job id)."""
    sessions = session_factory(settings)
    weights = result.model.to_bytes()
    try:
        with sessions.begin() as session:
            tenant = repository.create_tenant(session, name=f"bench-{uuid.uuid4().hex[:8]}")
            token = repository.create_token(session, tenant=tenant).token
            job = repository.create_job(
                session, tenant_id=tenant.id, spec=result.model.spec.to_dict(), series=series,
                num_points=sum(len(s["values"]) for s in series),
                epochs_total=len(result.history))
            for m in result.history:  # as a worker records them: the polls read the latest
                repository.upsert_epoch_metrics(
                    session, job_id=job.id, epoch=m.epoch, attempt=1, train_loss=m.train_loss,
                    val_loss=m.val_loss, grad_norm=m.grad_norm, max_grad_norm=m.max_grad_norm,
                    clip_fraction=m.clip_fraction, learning_rate=m.learning_rate,
                    seconds=m.seconds, grad_flow=list(m.grad_flow or []))
            now = utcnow()
            stored = session.get(Job, job.id)
            assert stored is not None
            stored.status, stored.attempts = "succeeded", 1
            stored.started_at = stored.finished_at = now
            stored.epochs_done, stored.best_epoch = len(result.history), result.best_epochs[0]
            session.add(TrainedModel(job_id=job.id, weights=weights,
                                     sha256=hashlib.sha256(weights).hexdigest(),
                                     model_card=result.model.card()))
            return token, job.id
    finally:
        sessions.kw["bind"].dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def children_write_to(path: Path) -> Iterator[None]:
    """Children started inside inherit stdout and stderr pointing at `path` (the service's JSON
    log lines, with each request's duration, go to stderr)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


@contextlib.contextmanager
def serving(data_dir: Path, database_url: str | None, epochs: int,
            max_series: int) -> Iterator[Served]:
    """Migrate, store the trained job, start gunicorn; stop it on exit."""
    env = {**os.environ, "BPTT_DATA_DIR": str(data_dir), "BPTT_LOG_LEVEL": "INFO",
           "BPTT_SYNC_FORECAST_MAX_SERIES": str(max_series)}
    if database_url:
        env["BPTT_DATABASE_URL"] = database_url
    settings = Settings.from_env(env)
    upgrade(settings.database_url)
    began = time.perf_counter()
    result, series = train_model(epochs)
    print(f"Trained the GRU in {time.perf_counter() - began:.1f} s "
          f"({len(result.history)} epochs on {len(series)} series).", file=sys.stderr)
    token, job_id = store_job(settings, result, series)
    port, log_path = free_port(), data_dir / "api.log"
    with children_write_to(log_path):
        process = serve.start(serve.api_command(HOST, port, PROCESSES, THREADS), env)
    try:
        serve.wait_until_healthy(f"http://{HOST}:{port}/healthz", [process])
        yield Served(port, token, job_id, log_path, result.model)
    finally:
        serve.stop_all([process])


@contextlib.contextmanager
def serving_floor(data_dir: Path, served: Served) -> Iterator[Served]:
    """benchmarks/_floor_app.py under the same gunicorn settings, answering with the status
    document `served` gives for its job."""
    client = Client(served)
    try:
        status, body = client.request("GET", f"/v1/jobs/{served.job_id}")
    finally:
        client.close()
    if status != 200:
        raise RuntimeError(f"status poll: HTTP {status}")
    body_path = data_dir / "floor-body.json"
    body_path.write_bytes(body)
    port = free_port()
    command = serve.api_command(HOST, port, PROCESSES, THREADS)
    command[command.index("service.serve:api_app()")] = "_floor_app:create()"
    env = {**os.environ, "BPTT_FLOOR_BODY": str(body_path)}
    process = serve.start([*command, "--chdir", str(Path(__file__).parent)], env, quiet=True)
    try:
        serve.wait_until_healthy(f"http://{HOST}:{port}/healthz", [process])
        yield Served(port, served.token, served.job_id, served.log_path, served.model)
    finally:
        serve.stop_all([process])


class Client:
    """One keep-alive connection, authenticated."""

    def __init__(self, served: Served) -> None:
        self.connection = http.client.HTTPConnection(HOST, served.port, timeout=120)
        self.headers = {"Authorization": f"Bearer {served.token}"}

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers={**self.headers,
                                                                  **(headers or {})})
        answer = self.connection.getresponse()
        return answer.status, answer.read()  # read it all, so the connection can be reused

    def close(self) -> None:
        self.connection.close()


def poll_status(served: Served, clients: int, seconds: float) -> PollRow:
    """`clients` threads polling GET /v1/jobs/<id> for `seconds` each."""
    path = f"/v1/jobs/{served.job_id}"
    prefix = f"poll-{clients}-"
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)

    def run(index: int) -> None:
        client = Client(served)
        try:
            client.request("GET", path)  # connect before the clock starts
            start.wait()
            deadline = time.perf_counter() + seconds
            mine = latencies[index]
            while (began := time.perf_counter()) < deadline:
                request_id = f"{prefix}{index}-{len(mine)}"
                status, _ = client.request("GET", path, headers={"X-Request-ID": request_id})
                mine.append(time.perf_counter() - began)
                if status != 200:
                    errors[index] += 1
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = np.array([x for mine in latencies for x in mine]) * 1000
    return PollRow(clients, len(every), sum(errors), float(np.percentile(every, 50)),
                   float(np.percentile(every, 99)), len(every) / elapsed, prefix)


def forecast(served: Served, count: int, runs: int) -> ForecastRow:
    """`runs` sequential forecasts of `count` new series on one connection."""
    body = json.dumps({"job_id": served.job_id,
                       "series": synthetic_series(count, FORECAST_LENGTH, seed=count)}).encode()
    client = Client(served)
    headers = {"Content-Type": "application/json"}
    ids, end_to_end, answer_bytes = [], [], 0
    try:
        for _ in range(runs):
            request_id = f"bench-forecast-{count}-{uuid.uuid4().hex[:12]}"
            began = time.perf_counter()
            status, answer = client.request("POST", "/v1/forecasts", body,
                                            {**headers, "X-Request-ID": request_id})
            end_to_end.append(time.perf_counter() - began)
            if status != 200:
                raise RuntimeError(f"{count} series: HTTP {status}: {answer[:300]!r}")
            ids.append(request_id)
            answer_bytes = len(answer)
    finally:
        client.close()
    return ForecastRow(count, len(body) / 1e6, answer_bytes / 1e6, end_to_end, ids)


def server_durations(log_path: Path, last_id: str) -> dict[str, float]:
    """The service's own duration (ms) of every request, by request id, from its JSON access
    log lines; waits (a little) for the line of `last_id`, the last request sent."""
    found: dict[str, float] = {}
    for _ in range(50):
        with open(log_path, encoding="utf-8", errors="replace") as log:
            for line in log:
                if '"duration_ms"' not in line:
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # gunicorn's own lines, or a line still being written
                if entry.get("duration_ms") is not None:
                    found[str(entry.get("request_id"))] = float(entry["duration_ms"])
        if last_id in found:
            break
        time.sleep(0.1)
    return found


def attach_server_times(log_path: Path, polls: list[PollRow],
                        forecasts: list[ForecastRow]) -> None:
    """Fill in each row's server-side durations from the service's log."""
    found = server_durations(log_path, forecasts[-1].request_ids[-1])
    for poll in polls:
        poll.server_ms = [ms for rid, ms in found.items() if rid.startswith(poll.id_prefix)]
    for row in forecasts:
        row.server_s = [found[rid] / 1000 for rid in row.request_ids if rid in found]


def stage_breakdown(model: bptt.Model, count: int) -> list[tuple[str, float]]:
    """Seconds per stage of one `count`-series forecast request, run in-process through the
    same functions the route calls (no HTTP, no Flask, one run)."""
    settings = Settings()
    raw = json.dumps({"job_id": "job", "series": synthetic_series(count, FORECAST_LENGTH,
                                                                  seed=count)}).encode()
    stages: list[tuple[str, float]] = []

    def timed(name: str, work: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        value = work()
        stages.append((name, time.perf_counter() - began))
        return value

    data = timed("parse JSON (bodies.parse_json)", lambda: parse_json(raw))
    wanted = timed("validate types and limits (pydantic)",
                   lambda: validation.forecast_request(data, settings))
    # engine_check=False, as the route checks a request it answers at once (the forecast's own
    # parser checks the series then).
    timed("check against the model", lambda: validation.check_forecast_against_model(
        model, wanted, engine_check=False))
    series = timed("series back to dicts", lambda: [
        {"id": s.id, "values": s.values} for s in wanted.series or ()])
    threads = settings.forecast_threads
    document = timed(f"forecast (run_forecast: bptt arrays, {threads} threads)",
                     lambda: run_forecast(model, series, None, None, threads))
    timed("encode JSON (json_response's bytes)", document.json_bytes)
    return stages


def warm_up(served: Served) -> None:
    """Load the model and the forecast kernels in every gunicorn process before measuring."""
    body = json.dumps({"job_id": served.job_id,
                       "series": synthetic_series(2, FORECAST_LENGTH, seed=1)}).encode()

    def run() -> None:
        client = Client(served)
        try:
            for _ in range(3):
                client.request("GET", f"/v1/jobs/{served.job_id}")
                client.request("POST", "/v1/forecasts", body,
                               {"Content-Type": "application/json"})
        finally:
            client.close()

    threads = [threading.Thread(target=run) for _ in range(PROCESSES * THREADS * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def poll_table(rows: list[PollRow], floor: PollRow | None = None) -> list[str]:
    lines = ["| clients | requests | errors | p50 ms | p99 ms | requests/s | server p50 ms | "
             f"server p99 ms | p99 < {POLL_TARGET_P99_MS:g} ms |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in rows:
        verdict = ("yes" if r.p99_ms < POLL_TARGET_P99_MS else "**no**") if r.clients == 32 else ""
        server = np.array(r.server_ms) if r.server_ms else np.array([np.nan])
        lines.append(f"| {r.clients} | {r.requests} | {r.errors} | {r.p50_ms:.2f} | "
                     f"{r.p99_ms:.2f} | {r.per_second:.0f} | {np.percentile(server, 50):.2f} | "
                     f"{np.percentile(server, 99):.2f} | {verdict} |")
    if floor is not None:
        lines.append(f"| {floor.clients}, floor | {floor.requests} | {floor.errors} | "
                     f"{floor.p50_ms:.2f} | {floor.p99_ms:.2f} | {floor.per_second:.0f} | | | |")
    return lines


def forecast_table(rows: list[ForecastRow]) -> list[str]:
    lines = ["| series | body MB | answer MB | runs | end-to-end median s | end-to-end min s | "
             f"server median s | server min s | server < {FORECAST_TARGET_S:g} s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in rows:
        server_median = statistics.median(r.server_s) if r.server_s else float("nan")
        server_min = min(r.server_s) if r.server_s else float("nan")
        verdict = ""
        if r.series == 10_000:
            verdict = "yes" if server_median < FORECAST_TARGET_S else "**no**"
        lines.append(f"| {r.series:,} | {r.body_mb:.2f} | {r.answer_mb:.2f} | "
                     f"{len(r.end_to_end_s)} | "
                     f"{statistics.median(r.end_to_end_s):.4f} | {min(r.end_to_end_s):.4f} | "
                     f"{server_median:.4f} | {server_min:.4f} | {verdict} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: short polls, fewer forecast runs, 1 training epoch")
    parser.add_argument("--database-url",
                        help="a scratch PostgreSQL database (default: SQLite in a temp dir)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="polling time per concurrency level (default 5, quick 1.5)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (1.5 if args.quick else 5.0)
    runs = {1: 5, 100: 3, 10_000: 1} if args.quick else {1: 30, 100: 10, 10_000: 5}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bptt-bench-api-") as tmp:
        with serving(Path(tmp), args.database_url, epochs=1 if args.quick else 2,
                     max_series=max(SERIES_COUNTS)) as served:
            warm_up(served)
            polls = [poll_status(served, clients, seconds) for clients in CONCURRENCY]
            with serving_floor(Path(tmp), served) as floor_served:
                poll_status(floor_served, max(CONCURRENCY), 1.0)  # warm its processes
                floor = poll_status(floor_served, max(CONCURRENCY), seconds)
            forecasts = [forecast(served, count, runs[count]) for count in SERIES_COUNTS]
            attach_server_times(served.log_path, polls, forecasts)
        stages = stage_breakdown(served.model, max(SERIES_COUNTS))
    database = "PostgreSQL" if args.database_url else "SQLite (WAL)"
    print(f"## HTTP API latency: gunicorn gthread, {PROCESSES} processes × {THREADS} threads, "
          f"{database}\n")
    print(f"Machine: {os.cpu_count()} CPUs, {platform.python_implementation()} "
          f"{platform.python_version()}, {platform.machine()}; clients run on the same "
          "machine.\n")
    print(f"### Status polls: GET /v1/jobs/<id>, keep-alive, {seconds:g} s per level\n")
    print("\n".join(poll_table(polls, floor)))
    print("\nFloor: the same gunicorn settings serving fixed bytes for every poll "
          "(benchmarks/_floor_app.py: no token check, no database, no log line).")
    print(f"\n### Batch forecasts: POST /v1/forecasts, GRU hidden {HIDDEN}, horizon {HORIZON}, "
          f"3 quantiles, {FORECAST_LENGTH} values per series\n")
    print("\n".join(forecast_table(forecasts)))
    print("\nServer time: the service's own duration_ms per request (its access log line, "
          "matched by X-Request-ID): parsing, validation, forecast and JSON encoding, without "
          "socket I/O. End-to-end adds sending the body and reading the answer over loopback.")
    print(f"\n### Where the server time of {max(SERIES_COUNTS):,} series goes (in-process, one "
          "run, the route's own functions)\n")
    print("| stage | s |\n|---|---:|")
    for name, seconds_taken in stages:
        print(f"| {name} | {seconds_taken:.3f} |")
    print(f"| total | {sum(t for _, t in stages):.3f} |")
    print(f"\nTotal wall time: {time.perf_counter() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
