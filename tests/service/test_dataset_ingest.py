"""Uploaded datasets in the store: the spool, sort, grid and pack of rows in any order (small
blocks, so that every path runs), the array codec, and reading series back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.settings import Settings
from service.store import dataset_ingest, dataset_rows
from service.store.codec import (
    compress_floats,
    compress_ints,
    decompress_floats,
    decompress_ints,
)
from service.store.dataset_ingest import (
    INTEGER,
    POINT,
    DatasetBuilder,
    DatasetError,
    Limits,
    SeriesTable,
    length_histogram,
)
from service.store.db import session_factory, upgrade
from service.store.repository import create_tenant

LIMITS = Limits(series=10_000, points=10_000_000, series_length=100_000)


def rows_of(series: dict[str, np.ndarray], order: str, rng: np.random.Generator):
    """(table, points in the order asked): "grouped" (series after series, sorted),
    "grouped-unsorted" (series after series, shuffled within), "interleaved" (all shuffled).
    Every other series has no row for its gaps (a ds missing on the grid) rather than a row
    without a value."""
    table = SeriesTable()
    points = []
    for s, (name, values) in enumerate(series.items()):
        table.ids.append(name)
        table.lines.append(0)
        table.starts.append(None)
        table.freqs.append(None)
        table.kinds.append(INTEGER)
        keys = np.arange(values.size) * 3 + 7  # steps of 3 on a grid from 7
        block = np.empty(values.size, POINT)
        block["series"], block["key"], block["value"] = s, keys, values
        if s % 2:
            block = block[~np.isnan(values)]
        if order == "grouped-unsorted":
            block = block[rng.permutation(block.size)]
        points.append(block)
    points = np.concatenate(points)
    if order == "interleaved":
        points = points[rng.permutation(points.size)]
    points["line"] = np.arange(points.size) + 2
    return table, points


def random_series(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    out = {}
    for i in range(count):
        values = np.round(rng.normal(100, 10, rng.integers(1, 300)), 2)
        values[rng.random(values.size) < 0.05] = np.nan
        values[0] = values[-1] = 1.0  # observed at both ends: the grid spans the whole series
        out[f"s{i}"] = values
    return out


@pytest.fixture
def sessions(tmp_path: Path):
    settings = Settings.from_env({"BPTT_DATA_DIR": str(tmp_path / "data")})
    upgrade(settings.database_url)
    factory = session_factory(settings)
    yield factory
    factory.kw["bind"].dispose()


@pytest.mark.parametrize("order", ["grouped", "grouped-unsorted", "interleaved"])
def test_rows_in_any_order_are_stored_sorted_in_small_blocks_and_chunks(
        order: str, sessions, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks of ~500 points and chunks of ~700: dozens of groups, split files and chunks.
    monkeypatch.setattr(dataset_ingest, "SORT_BLOCK_POINTS", 500)
    monkeypatch.setattr(dataset_ingest, "CHUNK_POINTS", 700)
    rng = np.random.default_rng(1)
    series = random_series(rng, 120)
    table, points = rows_of(series, order, rng)
    with DatasetBuilder(LIMITS) as builder:
        for start in range(0, points.size, 333):  # blocks that cut through series
            builder.add(points[start:start + 333])
        prepared = builder.finish(table)
        assert len(prepared.chunks) > 10
        with sessions() as session:
            tenant = create_tenant(session, name="t")
            stored = dataset_ingest.store(session, builder, prepared, tenant_id=tenant.id,
                                          name="x", format="csv", upload_bytes=1, text_bytes=1)
            session.commit()
            dataset_id = stored.id
    with sessions() as session:
        index = dataset_rows.load_index(session, dataset_id)
        assert index.ids == list(series)
        back = dataset_rows.read_series(session, index)
        picked = dataset_rows.read_series(session, index, [119, 3, 64])
    for item, (name, values) in zip(back, series.items(), strict=True):
        assert item["id"] == name
        np.testing.assert_array_equal(item["values"], values)
    assert [p["id"] for p in picked] == ["s119", "s3", "s64"]
    np.testing.assert_array_equal(picked[1]["values"], series["s3"])
    assert stored.num_points == sum(v.size for v in series.values())
    assert stored.num_gaps == sum(int(np.isnan(v).sum()) for v in series.values())
    assert stored.missing_timestamps == sum(int(np.isnan(v).sum())
                                            for i, v in enumerate(series.values()) if i % 2)
    assert stored.frequency is None and stored.freq_inferred is None  # integer ds
    assert set(index.freqs) == {"3"} and index.starts[0] == "7"


def test_a_ds_given_twice_names_both_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset_ingest, "SORT_BLOCK_POINTS", 50)
    rng = np.random.default_rng(2)
    table, points = rows_of(random_series(rng, 30), "interleaved", rng)
    twice = points[points["series"] == 7][0].copy()
    twice["line"] = points.size + 2
    with DatasetBuilder(LIMITS) as builder, pytest.raises(DatasetError) as info:
        builder.add(np.concatenate([points, [twice]]))
        builder.finish(table)
    first = int(points[(points["series"] == 7) & (points["key"] == twice["key"])]["line"][0])
    assert info.value.errors == [{
        "loc": ["body", f"line {points.size + 2}", "ds"],
        "msg": f"series 's7' has ds {twice['key']} twice (lines {first} and {points.size + 2})"}]


def test_a_series_without_an_observed_value_or_too_long_is_refused() -> None:
    table = SeriesTable(ids=["a", "b"], lines=[2, 3], starts=[None, None], freqs=[None, None],
                        kinds=[INTEGER, INTEGER])
    block = np.zeros(5, POINT)
    block["series"] = [0, 0, 1, 1, 1]
    block["key"] = [0, 1, 0, 1, 2]
    block["value"] = [np.nan, np.nan, 1, 2, 3]
    with DatasetBuilder(Limits(series=10, points=100, series_length=2)) as builder:
        builder.add(block)
        with pytest.raises(DatasetError) as info:
            builder.finish(table)
    assert info.value.errors == [
        {"loc": ["body", "line 3"], "msg": "series 'b' has 3 points; at most 2 per series"},
        {"loc": ["body", "line 2"], "msg": "series 'a' has no observed value"}]


def test_the_spool_is_removed(tmp_path: Path) -> None:
    with DatasetBuilder(LIMITS, directory=str(tmp_path)) as builder:
        builder.add(np.zeros(3, POINT))
        assert list(tmp_path.iterdir())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("values", [
    np.round(np.random.default_rng(0).normal(100, 5, 5000), 3),  # decimals: scaled integers
    np.random.default_rng(0).normal(100, 5, 5000),  # full precision: float64 bytes
    np.array([np.nan, 1e300, -0.5, 2.0**60, 1e-300, np.nan]),
    np.array([], dtype=float),
])
def test_float_arrays_come_back_bit_for_bit(values: np.ndarray) -> None:
    values = values.copy()
    if values.size > 10:
        values[::17] = np.nan
    packed = compress_floats(values)
    np.testing.assert_array_equal(decompress_floats(packed), values)
    if values.size > 10:
        assert len(packed) < values.nbytes  # it compresses


def test_decimal_values_compress_to_about_a_third_and_integers_round_trip() -> None:
    t = np.arange(100_000)
    values = np.round(100 + 10 * np.sin(t / 2) + np.random.default_rng(0).normal(0, 1, t.size),
                      2)
    assert len(compress_floats(values)) < 0.35 * values.nbytes
    lengths = np.array([60, 600, 2**40])
    np.testing.assert_array_equal(decompress_ints(compress_ints(lengths)), lengths)


def test_the_length_histogram_has_ten_bins_at_most_covering_every_length() -> None:
    lengths = np.random.default_rng(0).integers(60, 601, 48_000)
    bins = length_histogram(lengths)
    assert len(bins) == 10
    assert bins[0]["min"] == lengths.min() and bins[-1]["max"] == lengths.max()
    assert sum(b["series"] for b in bins) == 48_000
    assert all(a["max"] + 1 == b["min"] for a, b in zip(bins, bins[1:], strict=False))
    assert length_histogram(np.array([5, 5, 6])) == [{"min": 5, "max": 5, "series": 2},
                                                      {"min": 6, "max": 6, "series": 1}]
