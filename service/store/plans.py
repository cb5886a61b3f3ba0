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


def with_series_freq(spec: bptt.TrainingSpec, series: list[dict[str, Any]]
                     ) -> bptt.TrainingSpec:
    """The spec with `freq` set from the series when the request left it open and every series
    has the same calendar frequency (given with it, or inferred from a CSV's ds): so the season
    and the forecasts' dates follow from the data. An integer step is no calendar."""
    if spec.freq is not None:
        return spec
    found = {s.get("freq") for s in series}
    freq = found.pop() if len(found) == 1 else None
    if freq is None or freq.isdigit():
        return spec
    return dataclasses.replace(spec, freq=freq)


def with_calendar(plan: bptt.TrainingSpec, dates: list[dict[str, Any]]) -> bptt.TrainingSpec:
    """The plan with its calendar choice made from the series' dates ([{"start", "freq"}],
    bptt.resolve_calendar): "auto" becomes the encoding used, or "off", so that the job's
    spec says what its model reads and the worker trains exactly that. Raises bptt.SpecError
    for an encoding the dates cannot carry."""
    used, _ = bptt.resolve_calendar(plan, dates)
    return dataclasses.replace(plan, calendar=used)


def lengths(series: list[dict[str, Any]]) -> list[int]:
    """The lengths of series in the stored shape [{"id", "values"}]."""
    return [len(s["values"]) for s in series]

