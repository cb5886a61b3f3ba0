"""An out-of-memory killer for the tests: SIGKILLs any process of the watched worker groups
whose resident memory passes a limit, as the kernel does to a process over its cgroup's
memory.max (a container's memory limit) and as systemd-oomd or earlyoom do on a host.

A Python process that only meets RLIMIT_AS gets a MemoryError it can catch, and lives; the
faults this stands for (the kernel's OOM killer, a segfault) give it no such chance. The memory
is really allocated and the process really dies by SIGKILL: only who decides, at which limit,
is the test's. Run it with a limit well under the machine's free memory, and the workers
under RLIMIT_AS as a second bound, so that a missed kill cannot hurt the machine.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
POLL_S = 0.01  # the resident set grows by at most a few tens of MB between two looks
SCAN_S = 0.25  # how often the watched groups' members are listed again


@dataclass(frozen=True)
class Kill:
    """One process this killer ended, and its resident memory then."""

    pid: int
    rss_bytes: int


class OomKiller(threading.Thread):
    """Watches the processes of the given process groups (each worker runs in a session of its
    own: its main process and its pool children) until stop()."""

    def __init__(self, limit_bytes: int):
        super().__init__(name="test-oom-killer", daemon=True)
        self.limit_bytes = limit_bytes
        self.groups: set[int] = set()
        self.kills: list[Kill] = []
        self._stop_event = threading.Event()

    def watch(self, pgid: int) -> None:
        """Also watch the process group `pgid` (a worker started with start_new_session)."""
        self.groups.add(pgid)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def run(self) -> None:
        members: list[int] = []
        next_scan = 0.0
        while not self._stop_event.wait(POLL_S):
            if time.monotonic() >= next_scan:  # a restarted pool child joins the group
                members, next_scan = self._members(), time.monotonic() + SCAN_S
            for pid in members:
                rss = _rss_bytes(pid)
                if rss > self.limit_bytes and pid not in {k.pid for k in self.kills}:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    self.kills.append(Kill(pid, rss))

    def _members(self) -> list[int]:
        """Every live process in the watched groups (read from /proc: field 5 of stat)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:  # ended meanwhile
                    continue
                # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ")"
                if int(stat.rpartition(")")[2].split()[2]) in self.groups:
                    found.append(int(entry.name))
        return found


def _rss_bytes(pid: int) -> int:
    """The resident memory of `pid` in bytes (0 if it has ended)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0
