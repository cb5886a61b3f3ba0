"""`bptt up`'s process supervisor: starts the API and the workers, tells when they are ready,
restarts one that exits unexpectedly, and says why it did.

Every child writes its output to its own file under <data dir>/logs (the API's access lines
included); the supervisor reads those files to quote a child's last error when it exits, and to
copy to the terminal the lines worth a user's attention (warnings and errors; every line with
`--verbose`).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from service import serve
from workers import READY_FILE_ENV, READY_WHEN

POLL_S = 0.2
# Restart rule: a child that exits unexpectedly is started again after a delay that doubles with
# each failure in a row (1, 2, 4, 8 s ..., at most 30 s). A run that lasted STABLE_RUN_S resets
# the count, so a worker killed now and then (OOM, a stray SIGKILL) always comes back, while a
# child that cannot run at all (a bad setting, a broken install) is given up after
# MAX_FAST_FAILURES runs in a row each shorter than STABLE_RUN_S (about 15 s of trying): then
# everything stops and `bptt up` exits 1, rather than looping forever behind a healthy-looking
# URL.
FIRST_RESTART_DELAY_S, MAX_RESTART_DELAY_S = 1.0, 30.0
STABLE_RUN_S = 60.0
MAX_FAST_FAILURES = 5
TAIL_BYTES = 64 * 1024  # how far back from a log's end to look for the last error
ERROR_QUOTE_CHARS = 300  # an exception's repr can run to pages (SQL, parameters)
ECHO_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})
ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})
# A line that is not ours (JSON) but says something failed: gunicorn's "[ERROR]", the last line
# of a Python traceback ("sqlalchemy.exc.IntegrityError: ..."), Celery's early print-outs.
_TEXT_ERROR = re.compile(r"\[(ERROR|CRITICAL)\]|^([A-Za-z_][\w.]*\.)?[A-Z]\w*(Error|Exception)\b")
_TEXT_WARNING = re.compile(r"\[WARNING\]|\b[A-Z]\w*Warning: ")  # gunicorn's; Python's warnings
WARM_TIMEOUT_S = 900  # a cold compile takes 50-120 s on 2 cores; a bound, not an estimate

Say = Callable[..., None]  # click.echo's signature: say(text, err=False, nl=True)


@dataclass
class Child:
    """One supervised process: how to start it, where its output goes, how it has fared."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    ready_file: Path | None = None  # workers: ready once it names every item of READY_WHEN
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    log_start: int = 0  # where this run's output begins in log_path
    echoed_to: int = 0  # how far log_path has been copied to the terminal
    fast_failures: int = 0
    restart_at: float | None = None  # set while waiting to be started again

    def start(self) -> None:
        """Start (or restart) the process, its output appended to log_path."""
        env = dict(self.env)
        if self.ready_file is not None:
            self.ready_file.parent.mkdir(parents=True, exist_ok=True)
            self.ready_file.unlink(missing_ok=True)
            env[READY_FILE_ENV] = str(self.ready_file)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.log_start = log.tell()
            # Own session: a Ctrl-C at the terminal reaches only the supervisor, which stops
            # the children in order; and the group takes the child's own children with it.
            self.process = subprocess.Popen(self.command, env=env, start_new_session=True,
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)
        self.started_at = time.monotonic()
        self.restart_at = None

    def ready(self) -> bool:
        """Whether a worker has said it is consuming and its kernels are loaded."""
        if self.ready_file is None:
            return True
        try:
            said = set(self.ready_file.read_text().split())
        except OSError:
            return False
        return READY_WHEN <= said

    def last_error(self) -> str | None:
        """The last error line this run wrote, if any (a JSON line's message, else the line)."""
        last = None
        start = max(self.log_start, _size(self.log_path) - TAIL_BYTES)
        for line in read_lines(self.log_path, start)[0]:
            level, message = classify(line)
            if level in ERROR_LEVELS:
                last = message
        return last


@dataclass
class Supervisor:
    """Runs the children until Ctrl-C/SIGTERM or until one keeps failing."""

    children: list[Child]
    say: Say
    verbose: bool = False
    first_restart_delay_s: float = FIRST_RESTART_DELAY_S  # the restart rule's unit of time
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self, warm_env: dict[str, str], ready_url: str,
            on_progress: Callable[[int, int, float], None], on_ready: Callable[[], None]) -> int:
        """Warm the kernels, then keep_running. Logs of an earlier run are kept one generation."""
        self._handle_stop_signals()
        for path in [self._warmup_log, *(c.log_path for c in self.children)]:
            rotate_log(path)
        if not self._warm_kernels(warm_env, on_progress):
            return 0 if self.stopping.is_set() else 1
        return self.keep_running(ready_url, on_ready)

    def keep_running(self, ready_url: str | None, on_ready: Callable[[], None]) -> int:
        """Start every child, call on_ready once all are ready (and ready_url answers 200), then
        restart any that exits, until `stopping` is set (0) or start-up fails or a child is
        given up (1). Every child is stopped on the way out."""
        try:
            for child in self.children:
                child.start()
            if not self._wait_until_ready(ready_url):
                return 0 if self.stopping.is_set() else 1
            self._echo_logs()  # what the children said while starting comes before the URL
            on_ready()
            while not self.stopping.is_set():
                if not self._tend():
                    return 1
                self.stopping.wait(POLL_S)
            return 0
        finally:
            self._echo_logs()
            serve.stop_all([c.process for c in self.children if c.process is not None])

    @property
    def _warmup_log(self) -> Path:
        return self.children[0].log_path.with_name("warmup.log")

    def _handle_stop_signals(self) -> None:
        def request_stop(signum, frame) -> None:
            self.stopping.set()

        # SIGHUP too: the children have sessions of their own, so a closed terminal reaches
        # only this process, and they would otherwise live on without it.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, request_stop)

    def _warm_kernels(self, env: dict[str, str],
                      on_progress: Callable[[int, int, float], None]) -> bool:
        """Compile (or load) every kernel in a child before any worker starts; False if that
        failed (said why) or Ctrl-C came first."""
        log_path = self._warmup_log
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(serve.WARM_KERNELS_COMMAND, env=env, text=True,
                                       start_new_session=True, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=log)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
        reader.start()  # progress lines, read aside so that this loop can tick every second
        started = time.monotonic()

        def progress() -> tuple[int, int]:
            return tuple(int(n) for n in lines[-1].split()) if lines else (0, 0)

        try:
            while reader.is_alive() or process.poll() is None:
                if self.stopping.is_set():
                    return False
                if time.monotonic() - started > WARM_TIMEOUT_S:
                    self.say(f"compiling the kernels took over {WARM_TIMEOUT_S} s: giving up",
                             err=True)
                    return False
                done, total = progress()
                if done < total:  # all done is said once, below, when the child has exited
                    on_progress(done, total, time.monotonic() - started)
                if reader.is_alive():
                    reader.join(timeout=1.0)
                else:  # output closed: the child is exiting
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=1.0)
            done, total = progress()
            if process.returncode != 0 or not total or done < total:
                warm = Child("kernel compilation", [], {}, log_path)
                self.say(exit_line(warm, process.returncode, "stopping"), err=True)
                return False
            on_progress(total, total, time.monotonic() - started)
            return True
        finally:
            if process.poll() is None:
                serve.signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)

    def _wait_until_ready(self, url: str | None) -> bool:
        """Until the API answers url and every worker is ready (restarting any that exit)."""
        deadline = time.monotonic() + serve.STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and not self.stopping.is_set():
            if not self._tend():
                return False
            if (all(c.ready() for c in self.children if c.process is not None)
                    and all(c.restart_at is None for c in self.children)
                    and (url is None or serve.answers_ok(url))):
                return True
            self.stopping.wait(POLL_S)
        if not self.stopping.is_set():
            waiting = [c for c in self.children if c.restart_at is not None or not c.ready()]
            names = ", ".join(c.name for c in waiting) or "the API"
            self.say(f"not ready after {serve.STARTUP_TIMEOUT_S} s: {names} (their logs are in "
                     f"{self.children[0].log_path.parent})", err=True)
        return False

    def _tend(self) -> bool:
        """Copy new log lines, restart children due for it, notice children that exited.
        False once a child has failed too often (said so)."""
        self._echo_logs()
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.start()
                continue
            code = child.process.poll()
            if code is None:
                continue
            # Its own children (a Celery worker's pool process) may outlive it: stop them now,
            # so that an orphan does not keep training while its replacement starts.
            serve.signal_group(child.process, signal.SIGKILL)
            self._echo_logs()
            ran_s = now - child.started_at
            child.fast_failures = child.fast_failures + 1 if ran_s < STABLE_RUN_S else 1
            if child.fast_failures >= MAX_FAST_FAILURES:
                self.say(exit_line(child, code, f"{child.fast_failures} failures within "
                                                f"{STABLE_RUN_S:.0f} s of starting in a row: "
                                                "giving up and stopping everything"), err=True)
                return False
            delay = min(MAX_RESTART_DELAY_S,
                        self.first_restart_delay_s * 2 ** (child.fast_failures - 1))
            child.restart_at = now + delay
            self.say(exit_line(child, code, f"restarting in {delay:.3g} s"), err=True)
        return True

    def _echo_logs(self) -> None:
        """Copy the children's new log lines worth showing to the terminal (all if verbose)."""
        for child in self.children:
            if _size(child.log_path) <= child.echoed_to:
                continue
            lines, child.echoed_to = read_lines(child.log_path, child.echoed_to)
            for line in lines:
                level, message = classify(line)
                if self.verbose:
                    self.say(f"{child.name}: {line}", err=True)
                elif level in ECHO_LEVELS:
                    self.say(f"{child.name}: {level} {message}", err=True)


def exit_line(child: Child, code: int, then: str) -> str:
    """One line: which child, how it ended, its last error, what happens next."""
    if code < 0:
        how = f"was killed by {signal.Signals(-code).name} (exit code {code})"
    else:
        how = f"exited with code {code}"
    error = child.last_error()
    said = f"last error: {error[:ERROR_QUOTE_CHARS]}" if error else "no error in its log"
    return f"{child.name} {how}; {said} ({child.log_path}); {then}"


def classify(line: str) -> tuple[str | None, str]:
    """(level, message) of a log line: our JSON lines carry both; for others, a guess."""
    if line.startswith("{"):
        try:
            entry = json.loads(line)
            return str(entry.get("level")), str(entry.get("message", "")).splitlines()[0]
        except (ValueError, AttributeError, IndexError):
            pass
    if _TEXT_ERROR.search(line):
        return "ERROR", line.strip()
    if _TEXT_WARNING.search(line):
        return "WARNING", line.strip()
    return None, line


def read_lines(path: Path, offset: int) -> tuple[list[str], int]:
    """The complete lines of path from byte offset on, and the offset after the last of them
    (a line still being written waits for the next call)."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            data = log.read()
    except OSError:
        return [], offset
    complete = data[:data.rfind(b"\n") + 1]
    lines = complete.decode(errors="replace").splitlines()
    return [line for line in lines if line.strip()], offset + len(complete)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def rotate_log(path: Path) -> None:
    """Keep the previous run's log as path.1 (one generation), so each start begins afresh."""
    if path.exists():
        path.replace(path.with_name(path.name + ".1"))
