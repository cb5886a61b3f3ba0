"""Trained models kept loaded in the process, by sha256, least recently used out first."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import bptt

DEFAULT_SIZE = 8  # small models (kilobytes to a few megabytes); a handful covers a busy tenant


class ModelCache:
    """A thread-safe LRU of bptt.Model objects keyed by the sha256 of their bytes."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._models: OrderedDict[str, bptt.Model] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha256: str, load_bytes: Callable[[], bytes]) -> bptt.Model:
        """The model with digest `sha256`, loaded with `load_bytes` when not cached."""
        with self._lock:
            model = self._models.get(sha256)
            if model is not None:
                self._models.move_to_end(sha256)
                return model
        # Parse outside the lock: two threads may both load a new model once, which is cheaper
        # than making every forecast wait behind one parse. The key is the content's digest,
        # so a cached model can never be another job's (or tenant's) weights.
        model = bptt.Model.from_bytes(load_bytes())
        with self._lock:
            self._models[sha256] = model
            self._models.move_to_end(sha256)
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return model

    def __len__(self) -> int:
        return len(self._models)
