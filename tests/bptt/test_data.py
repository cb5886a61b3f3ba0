"""Series parsing, gaps, per-series scaling and the train/validation windows."""

import numpy as np
import pytest

from bptt.data import (
    DataError,
    as_series,
    expanding_mean,
    fit_scaler,
    index_windows,
    interpolate_gaps,
    make_windows,
    split_counts,
)


def test_accepted_shapes_and_gaps():
    a = as_series({"x": [1, None, 3]})
    b = as_series([{"id": "x", "values": [1, float("nan"), 3]}])
    c = as_series([[1, None, 3]])
    for (name, values), expected in zip((a[0], b[0], c[0]), ("x", "x", "0"), strict=True):
        assert name == expected and np.isnan(values[1])
    assert np.array_equal(interpolate_gaps(np.array([np.nan, 1, np.nan, 3, np.nan])),
                          [1, 1, 2, 3, 3])


@pytest.mark.parametrize("series,loc", [
    ([], ["series"]),
    ([[]], ["series", 0, "values"]),
    ([[1, "a"]], ["series", 0, "values"]),
    ([[1, float("inf")]], ["series", 0, "values"]),
    ([[None, None]], ["series", 0, "values"]),
    ([{"id": "a", "values": [1]}, {"id": "a", "values": [2]}], ["series", 1, "id"]),
    ([{"id": "a"}], ["series", 0, "values"]),
])
def test_unusable_series_are_refused_by_location(series, loc):
    with pytest.raises(DataError) as info:
        as_series(series)
    assert info.value.loc == loc


@pytest.mark.parametrize("kind", ["standard", "robust", "minmax", "none"])
def test_scalers_invert_and_survive_constants(kind):
    values = np.array([3.0, 5.0, np.nan, 11.0, 7.0])
    scaler = fit_scaler(kind, values)
    assert np.allclose(scaler.inverse(scaler.transform(values)), values, equal_nan=True)
    flat = fit_scaler(kind, np.full(5, 4.0))
    assert np.isfinite(flat.transform(np.full(5, 4.0))).all()


def test_validation_windows_are_the_latest_and_never_training_targets():
    values = np.arange(60, dtype=float)
    train, val = make_windows([values], input_size=10, horizon=5, validation_fraction=0.1)
    count = 60 - 15 + 1
    assert len(val) == 5 and len(train) == count - 5 - 4  # h - 1 windows in between dropped
    # centred on each window's last input: the targets are 1..5 steps of +1
    assert np.allclose(train.y, np.arange(1, 6)) and np.allclose(val.x[:, -1, 0], 0)
    # window i reads values[i:i+10] and targets values[i+10:i+15]
    last_train_target = (len(train) - 1) + 10 + 4
    first_val_target = (count - len(val)) + 10
    assert last_train_target == first_val_target - 1


def test_numbers_of_any_numeric_type_but_never_bools_or_strings():
    assert as_series([list(np.arange(3.0, dtype=np.float32))])[0][1].tolist() == [0, 1, 2]
    assert as_series([np.arange(3)])[0][1].dtype == np.float64
    for bad in ([True, 1.0], ["1.5", 2.0], np.array(["a"])):
        with pytest.raises(DataError):
            as_series([bad])


def _sliding_windows(scaled, input_size, horizon, fraction):
    """The window matrices as make_windows built them before batches were gathered by index:
    sliding_window_view over each series, split, centred, concatenated."""
    parts = {"train": [], "val": []}
    for index, values in enumerate(scaled):
        count = values.size - input_size - horizon + 1
        filled = interpolate_gaps(values)
        inputs = np.lib.stride_tricks.sliding_window_view(filled, input_size)[:count]
        targets = np.lib.stride_tricks.sliding_window_view(values[input_size:], horizon)[:count]
        level = inputs[:, -1:]
        mean = expanding_mean(values)[input_size - 1:][:count]
        n_train, n_val = split_counts(count, horizon, fraction)
        for part, rows in (("train", slice(0, n_train)), ("val", slice(count - n_val, count))):
            parts[part].append(((inputs[rows] - level[rows])[:, :, None].astype(np.float32),
                                (targets[rows] - level[rows]).astype(np.float32),
                                np.full(rows.stop - rows.start, index), level[rows, 0],
                                mean[rows]))
    return [tuple(np.concatenate(a) for a in zip(*parts[p], strict=True))
            for p in ("train", "val")]


def test_windows_gathered_by_index_are_the_sliding_windows(monkeypatch):
    monkeypatch.setattr("bptt.data.GATHER_CHUNK", 5)  # all() in several chunks
    rng = np.random.default_rng(3)
    scaled = [rng.normal(size=n) for n in (40, 23, 61)]
    scaled[0][[2, 3, 30]] = np.nan  # gaps: filled in the inputs, kept in the targets
    scaled[2][-4] = np.nan
    train, val = index_windows(scaled, 7, 3, 0.2)
    for index, expected in zip((train, val), _sliding_windows(scaled, 7, 3, 0.2), strict=True):
        rows = rng.permutation(len(index))  # any order, any batch
        built = index.gather(rows)
        for got, want in zip((built.x, built.y, built.series, built.level, built.mean),
                             expected, strict=True):
            assert got.dtype == want.dtype
            assert np.array_equal(got, want[rows], equal_nan=True)
    whole, _ = make_windows(scaled, 7, 3, 0.2)  # built whole, chunk by chunk
    for got, want in zip((whole.x, whole.y, whole.series, whole.level, whole.mean),
                         _sliding_windows(scaled, 7, 3, 0.2)[0], strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)
    # in chunks: the same windows
    chunks = list(val.chunks(size=4))
    assert np.array_equal(np.concatenate([c.x for c in chunks]), val.all().x)
