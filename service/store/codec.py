"""Values stored compressed: JSON (datasets, forecast requests and results) and numeric arrays
(uploaded datasets). Never pickle."""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np

# zlib's default; level 9 costs several times the CPU for a few percent on numeric JSON.
COMPRESSION_LEVEL = 6
FLOATS = np.dtype("<f8")  # little-endian on every machine: the bytes mean the same anywhere
INTS = np.dtype("<i8")
# Arrays: level 1 compresses shuffled numbers within 1 % of level 6, in half the time.
ARRAY_LEVEL = 1
MAX_DECIMALS = 9  # beyond this, values are stored as float64 bytes
_DECIMAL, _FLOAT = b"D", b"F"  # the first byte says which encoding follows


def compress_json(value: Any) -> bytes:
    """`value` as compact, strict JSON (no NaN or Infinity), zlib-compressed."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return zlib.compress(text.encode("utf-8"), COMPRESSION_LEVEL)


def decompress_json(data: bytes) -> Any:
    """The value that compress_json stored."""
    return json.loads(zlib.decompress(data).decode("utf-8"))


def compress_floats(values: np.ndarray) -> bytes:
    """float64 values (NaN for a gap) compressed losslessly.

    Values read from text mostly have few decimals (123.4, 0.125): those are stored as the
    integers value·10^k with the smallest k that gives every value back exactly (IEEE division
    is correctly rounded, so int/10^k is the very double that float("123.4") gave), which
    compresses to about a third of the raw float64 size; others as the float64 bytes. Either
    way the bytes are shuffled first (all first bytes, then all second bytes, ..., as Blosc
    and HDF5's shuffle filter do), so that zlib finds the runs of equal high bytes.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    gaps = np.isnan(values)
    known = np.where(gaps, 0.0, values)
    for digits in range(MAX_DECIMALS + 1):
        with np.errstate(over="ignore", invalid="ignore"):  # 1e300·10^k: not decimal, skip
            scaled = np.round(known * 10.0**digits)
        if (np.abs(scaled).max(initial=0.0) < 2.0**53
                and np.array_equal(scaled / 10.0**digits, known)):
            mask = zlib.compress(np.packbits(gaps).tobytes(), ARRAY_LEVEL)
            ints = _shuffled(scaled.astype(INTS))
            return (_DECIMAL + bytes([digits]) + len(mask).to_bytes(4, "little") + mask
                    + zlib.compress(ints, ARRAY_LEVEL))
    return _FLOAT + zlib.compress(_shuffled(values.astype(FLOATS)), ARRAY_LEVEL)


def decompress_floats(data: bytes) -> np.ndarray:
    """The float64 array that compress_floats stored."""
    if data[:1] == _FLOAT:
        return _unshuffled(zlib.decompress(data[1:]), FLOATS).astype(np.float64)
    if data[:1] != _DECIMAL:
        raise ValueError("not an array stored by compress_floats")
    digits = data[1]
    size = int.from_bytes(data[2:6], "little")
    mask, ints = data[6:6 + size], data[6 + size:]
    values = _unshuffled(zlib.decompress(ints), INTS) / 10.0**digits
    gaps = np.unpackbits(np.frombuffer(zlib.decompress(mask), np.uint8), count=values.size)
    values[gaps.astype(bool)] = np.nan
    return values


def _shuffled(values: np.ndarray) -> bytes:
    """The bytes of an 8-byte array, byte 0 of every value first, then byte 1, ..."""
    return values.view(np.uint8).reshape(-1, 8).T.tobytes()


def _unshuffled(data: bytes, dtype: np.dtype) -> np.ndarray:
    """The array _shuffled wrote."""
    return np.frombuffer(data, np.uint8).reshape(8, -1).T.copy().view(dtype).reshape(-1)


def compress_ints(values: np.ndarray) -> bytes:
    """Integers (lengths, counts) as zlib-compressed little-endian int64."""
    return zlib.compress(np.ascontiguousarray(values, dtype=INTS).tobytes(), ARRAY_LEVEL)


def decompress_ints(data: bytes) -> np.ndarray:
    """The int64 array that compress_ints stored."""
    return np.frombuffer(zlib.decompress(data), dtype=INTS).astype(np.int64)
