"""Chaos soak: the service under load while its processes and servers are killed at random, then
a check that nothing was lost, duplicated or run twice at once.

Starts a stack in a temporary directory, runs clients that submit jobs and sweeps, cancel jobs,
ask for forecast batches, append observations to trained series and poll, and meanwhile injects
a fault every few seconds:

- production (PostgreSQL 15 + Redis, throwaway servers; the API under gunicorn; N workers):
  SIGKILL a worker (then restart it), SIGKILL a worker's pool process (Celery forks another),
  SIGKILL the API (then restart it), restart Redis, FLUSHALL Redis, pg_terminate_backend every
  connection of the service;
- embedded (SQLite data and broker): the same kills, and deleting the SQLite broker's messages
  (its FLUSHALL).

After the given minutes the faults stop, every process is brought back, the stack drains, and
benchmarks/_chaos_checks.py checks: every job, sweep and batch is terminal; every 202 became a
row; one metrics row per job, member and epoch; no two attempts of a job overlapped (the
attempts audit); every succeeded job's model loads; appended observations are all there once.
It prints the operations, the faults by kind, duplicates and lost, and exits 1 unless both are 0.

    python benchmarks/chaos.py --stack production --minutes 30 --workers 3
    python benchmarks/chaos.py --stack embedded --minutes 2

Needs PostgreSQL 15's server binaries and redis-server for the production stack (as the tests).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _chaos_checks import check
from _chaos_load import Load
from sqlalchemy import text

from service import serve
from service.settings import Settings
from service.store import db, queue, repository

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the throwaway servers of the tests
from tests.service import pg_server  # noqa: E402
from tests.workers import redis_server  # noqa: E402

RESTART_AFTER_S = (0.5, 3.0)  # a supervisor brings a killed process back after this long
DRAIN_S = 300  # the longest the stack may take to finish what was submitted, faults over


@dataclass
class Stack:
    """The running processes and servers, and how to restart each."""

    env: dict[str, str]
    logs: Path
    port: int
    workers: int
    redis: redis_server.RedisServer | None = None
    postgres: pg_server.PostgresServer | None = None
    api: subprocess.Popen | None = None
    worker_processes: list[subprocess.Popen] = field(default_factory=list)
    started: Counter = field(default_factory=Counter)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        self.started[name] += 1
        log = open(self.logs / f"{name}-{self.started[name]}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(command, env=self.env, start_new_session=True, stdout=log,
                                   stderr=subprocess.STDOUT)
        log.close()
        return process

    def start_api(self) -> None:
        self.api = self._spawn("api", serve.api_command("127.0.0.1", self.port,
                                                        control_socket=False))

    def start_worker(self, index: int) -> None:
        process = self._spawn(f"worker{index}", serve.worker_command(f"chaos{index}"))
        if index < len(self.worker_processes):
            self.worker_processes[index] = process
        else:
            self.worker_processes.append(process)

    def processes(self) -> list[subprocess.Popen]:
        return [p for p in (self.api, *self.worker_processes) if p is not None]

    def revive(self) -> list[str]:
        """Restart whatever is not running (crashed, or killed by a fault); their names."""
        revived = []
        if self.api is None or self.api.poll() is not None:
            self.start_api()
            revived.append("api")
        for index, process in enumerate(self.worker_processes):
            if process.poll() is not None:
                self.start_worker(index)
                revived.append(f"worker{index}")
        if self.redis is not None and not self.redis.ping():
            self.redis.start()
            revived.append("redis")
        return revived

    def stop(self) -> None:
        serve.stop_all(self.processes())
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def start_stack(kind: str, workers: int, data_dir: Path) -> Stack:
    """Servers, schema, the API and the workers, with settings tight enough to see recovery
    many times in a few minutes."""
    env = {**os.environ, "BPTT_DATA_DIR": str(data_dir),
           "BPTT_LEASE_SECONDS": "6", "BPTT_REAPER_INTERVAL_SECONDS": "2",
           "BPTT_REQUEUE_AFTER_SECONDS": "5",
           # Faults come every few seconds: let a job survive many lost workers before it is
           # given up on (the soak counts those failures; they are not lost jobs).
           "BPTT_MAX_ATTEMPTS": "12",
           "BPTT_SYNC_FORECAST_MAX_SERIES": "1",  # every forecast of two series is a batch
           "BPTT_MAX_QUEUED_JOBS_PER_TENANT": "1000",
           "BPTT_VISIBILITY_TIMEOUT_SECONDS": "30"}
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stack = Stack(env=env, logs=data_dir / "logs", port=port, workers=workers)
    if kind == "production":
        for reason in (pg_server.missing_reason(), redis_server.missing_reason()):
            if reason:
                raise SystemExit(f"production stack unavailable: {reason}")
        stack.postgres = pg_server.start()
        engine = db.make_engine(stack.postgres.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text('CREATE DATABASE "bptt"'))
        engine.dispose()
        stack.redis = redis_server.RedisServer(data_dir / "redis")
        (data_dir / "redis").mkdir()
        stack.redis.start()
        env.update(BPTT_DATABASE_URL=stack.postgres.url("bptt"), BPTT_BROKER_URL=stack.redis.url)
    settings = stack.settings
    db.upgrade(settings.database_url)
    queue.prepare_broker(settings.broker_url)
    stack.start_api()
    for index in range(workers):
        stack.start_worker(index)
    serve.wait_until_healthy(f"{stack.url}/healthz", stack.processes())
    return stack


def new_token(settings: Settings) -> str:
    sessions = db.session_factory(settings)
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name=f"chaos{time.time_ns()}")
        token = repository.create_token(session, tenant=tenant).token
    sessions.kw["bind"].dispose()
    return token


class Faults(threading.Thread):
    """Injects a random fault every `every` seconds on average until stop()."""

    def __init__(self, stack: Stack, every: float, rng: random.Random):
        super().__init__(name="chaos-faults", daemon=True)
        self.stack, self.every, self.rng = stack, every, rng
        self.done: Counter = Counter()
        self.failed: Counter = Counter()  # faults that could not be injected (and why)
        self.exited: Counter = Counter()  # processes found dead that no fault killed
        self._stop_event = threading.Event()
        self.kinds = {"SIGKILL a worker": self.kill_worker,
                      "SIGKILL a worker's pool process": self.kill_pool_process,
                      "SIGKILL the API": self.kill_api}
        if stack.redis is not None:
            self.kinds.update({"restart Redis": self.restart_redis,
                               "FLUSHALL Redis": self.flush_redis,
                               "pg_terminate_backend all": self.terminate_backends})
        else:
            self.kinds["delete the SQLite broker's messages"] = self.flush_sqlite_broker

    def run(self) -> None:
        while not self._stop_event.wait(self.rng.expovariate(1 / self.every)):
            kind = self.rng.choice(sorted(self.kinds))
            try:
                self.kinds[kind]()
                self.done[kind] += 1
            except Exception as exc:  # reported, and the soak goes on
                self.failed[f"{kind}: {type(exc).__name__}"] += 1
            self.exited.update(self.stack.revive())  # as a supervisor would

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=60)

    def _pause(self) -> None:
        self._stop_event.wait(self.rng.uniform(*RESTART_AFTER_S))

    def kill_worker(self) -> None:
        index = self.rng.randrange(len(self.stack.worker_processes))
        serve.signal_group(self.stack.worker_processes[index], signal.SIGKILL)
        self.stack.worker_processes[index].wait(timeout=30)
        self._pause()
        self.stack.start_worker(index)

    def kill_pool_process(self) -> None:
        main = self.rng.choice(self.stack.worker_processes)
        children = _children(main.pid)
        if not children:
            raise LookupError("no pool process (restarting)")
        os.kill(self.rng.choice(children), signal.SIGKILL)  # Celery forks a new one

    def kill_api(self) -> None:
        serve.signal_group(self.stack.api, signal.SIGKILL)
        self.stack.api.wait(timeout=30)
        self._pause()
        self.stack.start_api()

    def restart_redis(self) -> None:
        self.stack.redis.stop()
        self._pause()
        self.stack.redis.start()

    def flush_redis(self) -> None:
        if not self.stack.redis.command("FLUSHALL").startswith(b"+OK"):
            raise RuntimeError("FLUSHALL refused")

    def terminate_backends(self) -> None:
        engine = db.make_engine(self.stack.postgres.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = 'bptt' AND pid <> pg_backend_pid()"))
        finally:
            engine.dispose()

    def flush_sqlite_broker(self) -> None:
        broker = self.stack.settings.broker_url.removeprefix("sqla+")
        engine = db.make_engine(broker)
        try:
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM kombu_message"))
        finally:
            engine.dispose()


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", choices=("production", "embedded"), default="production")
    parser.add_argument("--minutes", type=float, default=2.0, help="how long faults go on")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--fault-every", type=float, default=5.0,
                        help="mean seconds between faults")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the data dir and its logs")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="bptt-chaos-"))
    began = time.monotonic()
    stack = start_stack(args.stack, args.workers, data_dir)
    try:
        load = Load(stack.url, new_token(stack.settings), args.clients, args.workers,
                    random.Random(rng.random()))
        faults = Faults(stack, args.fault_every, random.Random(rng.random()))
        load.start()
        faults.start()
        time.sleep(args.minutes * 60)
        faults.stop()
        faults.exited.update(stack.revive())
        serve.wait_until_healthy(f"{stack.url}/healthz", stack.processes())
        load.stop()
        drained = load.drain(stack.settings, DRAIN_S)
        result = check(stack.settings, stack.url, load)
        elapsed = time.monotonic() - began
        report(args, load, faults, result, drained, elapsed)
        ok = result.duplicates == 0 and result.lost == 0 and not result.problems
        if not ok or args.keep:
            print(f"data dir and logs kept in {data_dir}")
        return 0 if ok else 1
    finally:
        stack.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(data_dir, ignore_errors=True)


def report(args, load: Load, faults: Faults, result, drained: float, elapsed: float) -> None:
    """The figures as markdown tables."""
    stack_name = ("PostgreSQL 15 + Redis" if args.stack == "production"
                  else "SQLite data and broker")
    print(f"\nChaos soak, {args.stack} stack ({stack_name}, API under gunicorn, "
          f"{args.workers} worker processes, {args.clients} clients): faults for "
          f"{args.minutes:g} min, one every {args.fault_every:g} s on average (seed {args.seed}); "
          f"drained in {drained:.0f} s; {elapsed / 60:.1f} min in all\n")
    print("| operation | sent | 2xx | 409 | 429 | other 4xx | 5xx | no answer |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sorted(load.outcomes):
        o = load.outcomes[name]
        other_4xx = sum(n for k, n in o.items() if isinstance(k, int) and 400 <= k < 500
                        and k not in (409, 429))
        print(f"| {name} | {sum(o.values())} | {sum(n for k, n in o.items() if k == '2xx')} "
              f"| {o[409]} | {o[429]} | {other_4xx} | {o['5xx']} | {o['no answer']} |")
    print("\n| fault | injected |")
    print("|---|---|")
    for kind in sorted(faults.kinds):
        print(f"| {kind} | {faults.done[kind]} |")
    for kind, n in sorted(faults.failed.items()):
        print(f"| not injected ({kind}) | {n} |")
    print("\n| check | result |")
    print("|---|---|")
    for line in result.lines:
        print(f"| {line[0]} | {line[1]} |")
    exited = ", ".join(f"{name} {n}" for name, n in sorted(faults.exited.items()))
    print(f"| processes that exited on their own | {exited or 'none'} |")
    print(f"\nduplicates {result.duplicates}, lost {result.lost}")
    for problem in result.problems[:20]:
        print(f"PROBLEM: {problem}")


if __name__ == "__main__":
    sys.exit(main())
