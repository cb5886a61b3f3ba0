"""A forecast-batch worker that stalls right after its claim: `python -m tests.workers.stalled_batch
BATCH_ID` answers the batch with the service's own code, but stops itself (SIGSTOP) the moment its
claim has committed; the test resumes it with SIGCONT. Prints what answer_batch returned.

Why at that point, and by itself: a stall is only the fault it stands for (a worker hung past
its lease, a host cut off) if the stalled process holds no database lock. Stopped from outside at
a random moment, it could be halfway through a heartbeat's UPDATE and keep SQLite's write lock,
and then nobody could write at all, which is another fault. Here the claim is committed, no
transaction is open and the heartbeat has not started yet. The settings come from BPTT_*.
"""

from __future__ import annotations

import os
import signal
import sys

from service.settings import Settings
from service.store import forecast_batches
from service.store.db import session_factory


def main(batch_id: str) -> None:
    read_request = forecast_batches.decompress_json

    def stall_then_read(data: bytes):  # answer_batch's first step after the claim's commit
        os.kill(os.getpid(), signal.SIGSTOP)
        return read_request(data)

    forecast_batches.decompress_json = stall_then_read
    settings = Settings.from_env()
    print(forecast_batches.answer_batch(session_factory(settings), settings, batch_id),
          flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
