"""`bptt up`'s supervisor on real child processes: what it says when one exits, its restart rule,
and the log lines it copies to the terminal. (tests/e2e/test_up.py runs it with the real API and
workers.)"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from service import supervisor

DEADLINE_S = 60


def python_child(name: str, code: str, tmp_path: Path) -> supervisor.Child:
    return supervisor.Child(name, [sys.executable, "-c", code], dict(os.environ),
                            tmp_path / "logs" / f"{name}.log")


def error_line(message: str) -> str:
    return json.dumps({"level": "ERROR", "logger": "x", "message": message})


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Terminal:
    """Collects what the supervisor says, as click.echo would print it."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, bool]] = []

    def __call__(self, text: str, err: bool = False, nl: bool = True) -> None:
        self.lines.append((text, err))

    def errors(self) -> list[str]:
        return [text for text, err in self.lines if err]


def test_a_child_that_keeps_failing_is_given_up_with_its_last_error(tmp_path):
    code = (f"print({error_line('Unrecoverable error: the broker is gone')!r}, flush=True); "
            "import sys; sys.exit(3)")
    terminal = Terminal()
    supervised = supervisor.Supervisor([python_child("worker1", code, tmp_path)], terminal,
                                       first_restart_delay_s=0.01)
    ready = []
    assert supervised.keep_running(None, lambda: ready.append(True)) == 1
    exits = [line for line in terminal.errors() if line.startswith("worker1 exited")]
    assert len(exits) == supervisor.MAX_FAST_FAILURES  # restarted each time until the rule
    assert all("exited with code 3; last error: Unrecoverable error: the broker is gone" in line
               for line in exits)
    assert "restarting in" in exits[0] and "giving up" in exits[-1]
    # the child's own error line reached the terminal too, once per run
    echoed = [line for line in terminal.errors() if line.startswith("worker1: ERROR")]
    assert len(echoed) == supervisor.MAX_FAST_FAILURES


def test_a_killed_child_is_restarted_and_said_so(tmp_path):
    code = "import time; print('started', flush=True); time.sleep(600)"
    terminal = Terminal()
    child = python_child("worker1", code, tmp_path)
    supervised = supervisor.Supervisor([child], terminal, first_restart_delay_s=0.01)
    ready = threading.Event()
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(
        supervised.keep_running(None, ready.set)))
    runner.start()
    try:
        assert ready.wait(DEADLINE_S)
        wait_for(lambda: child.log_path.read_text().count("started") == 1, "it to run")
        first = child.process
        os.kill(first.pid, signal.SIGKILL)
        wait_for(lambda: child.process is not first and child.process.poll() is None,
                 "a new process")
        wait_for(lambda: child.log_path.read_text().count("started") == 2, "it to run again")
    finally:
        supervised.stopping.set()
        runner.join(DEADLINE_S)
    assert outcome == [0]  # stopped on request, not given up
    assert child.process.poll() is not None  # and stopped with it
    [line] = [line for line in terminal.errors() if line.startswith("worker1")]
    assert line.startswith("worker1 was killed by SIGKILL (exit code -9); no error in its log")
    assert str(child.log_path) in line and "restarting in" in line


def test_only_warnings_and_errors_reach_the_terminal_unless_verbose(tmp_path):
    lines = [json.dumps({"level": "INFO", "logger": "service.access", "message": "GET /x 200"}),
             json.dumps({"level": "WARNING", "logger": "w", "message": "broker unavailable"}),
             "[2026-12-03 09:25:26 +0000] [10515] [INFO] Booting worker with pid: 10518",
             "[2026-12-03 09:25:26 +0000] [10515] [ERROR] Worker failed to boot."]
    code = f"print({chr(10).join(lines)!r}, flush=True); import time; time.sleep(600)"
    for verbose in (False, True):
        terminal = Terminal()
        child = python_child(f"api{int(verbose)}", code, tmp_path)
        supervised = supervisor.Supervisor([child], terminal, verbose=verbose)

        def stop_once_echoed(child=child, supervised=supervised):
            wait_for(lambda: child.log_path.exists()
                     and child.log_path.read_text().count("\n") == 4, "the child's lines")
            supervised.stopping.set()

        assert supervised.keep_running(None, stop_once_echoed) == 0
        shown = terminal.errors()
        if verbose:
            assert shown == [f"{child.name}: {line}" for line in lines]
        else:
            assert shown == [f"{child.name}: WARNING broker unavailable",
                             f"{child.name}: ERROR {lines[3]}"]
