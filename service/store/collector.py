"""Pausing Python's cyclic garbage collector around bulk work that allocates without cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector meanwhile. A large document or a CSV block is tens
    of thousands of lists, dicts and strings without cycles, freed by reference counting: the
    collections their allocation triggers would only walk them (and everything else alive) for
    nothing (a CSV block took up to six times as long). Safe with threads: whoever paused it
    resumes it; a collector another thread paused is left alone."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
