"""JSON stored compressed: datasets, forecast requests and results (never pickle)."""

from __future__ import annotations

import json
import zlib
from typing import Any

# zlib's default; level 9 costs several times the CPU for a few percent on numeric JSON.
COMPRESSION_LEVEL = 6


def compress_json(value: Any) -> bytes:
    """`value` as compact, strict JSON (no NaN or Infinity), zlib-compressed."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return zlib.compress(text.encode("utf-8"), COMPRESSION_LEVEL)


def decompress_json(data: bytes) -> Any:
    """The value that compress_json stored."""
    return json.loads(zlib.decompress(data).decode("utf-8"))
