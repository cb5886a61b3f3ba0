"""A job's plan: its spec with every open choice made, exactly as a worker trains it.

Resolved when the job is submitted (bptt.resolve_spec needs only the series' lengths, not their
windows), stored beside the request and shown in the job document; the worker trains with this
very spec, so the document cannot disagree with what ran, even if the engine's default rules
change while the job waits in the queue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import bptt
from service.settings import Settings


def for_workers(spec: bptt.TrainingSpec, settings: Settings) -> bptt.TrainingSpec:
    """The spec with the workers' engine thread count: a property of the deployment (the
    BPTT_TRAIN_THREADS setting), never of the request."""
    return dataclasses.replace(spec, training=dataclasses.replace(
        spec.training, threads=settings.train_threads))


def resolve(spec: bptt.TrainingSpec, lengths: Iterable[int], settings: Settings
            ) -> bptt.TrainingSpec:
    """The plan of a fresh job (no warm start) on series of these lengths."""
    return for_workers(bptt.resolve_spec(lengths, spec), settings)


def lengths(series: list[dict[str, Any]]) -> list[int]:
    """The lengths of series in the stored shape [{"id", "values"}]."""
    return [len(s["values"]) for s in series]

