"""Weights on the wire: safetensors files with PyTorch parameter names and a JSON model card.

The safetensors format (8-byte little-endian header length, a JSON header of dtype/shape/offsets,
then raw little-endian bytes) is written and read here with numpy alone, so the engine needs no
extra dependency and nothing is ever unpickled. The model card sits in the header's
`__metadata__` under "model_card" and says how to rebuild the network, in PyTorch too:

    rnn = torch.nn.LSTM(input_size, hidden_size, num_layers)   # or GRU / RNN(nonlinearity=…)
    head = torch.nn.Linear(hidden_size + head_inputs, output_size)
    rnn.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("head.")})
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    y = head(rnn(x)[0][-1])            # x time-major (T, B, input_size); head_inputs = 0
    y = head(torch.cat([rnn(x)[0][-1], features], 1))   # head_inputs > 0: features (B, E)

The card's "input_features" and "head_features" (bptt.Model's card) say what each column of x
and of the head features is, in order. Files written before head inputs existed have no
"head_inputs" in their card and read as head_inputs = 0: their layout is the same.
"""

import json
import struct

import numpy as np

from .network import NetworkSpec

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "U8": np.uint8}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
MAX_HEADER_BYTES = 100_000_000  # the reference implementation's own limit
CARD_FORMAT = "bptt-model/1"


def to_safetensors(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """Serialise named arrays (and string metadata) to safetensors bytes."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        if array.dtype not in _NAMES:
            raise ValueError(f"{name}: dtype {array.dtype} is not supported")
        blob = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned, as the reference writer does
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def from_safetensors(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse safetensors bytes into (named arrays, metadata), validating every offset."""
    if len(data) < 8:
        raise ValueError("not a safetensors file: too short")
    (size,) = struct.unpack("<Q", data[:8])
    if size > MAX_HEADER_BYTES or 8 + size > len(data):
        raise ValueError("not a safetensors file: bad header length")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a safetensors file: {exc}") from None
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file: header is not an object")
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + size :]
    tensors, spans = {}, []
    for name, info in header.items():
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{name}: malformed tensor entry") from None
        if any(d < 0 for d in shape) or not 0 <= begin <= end <= len(body):
            raise ValueError(f"{name}: offsets out of range")
        if (end - begin) != int(np.prod(shape)) * dtype.itemsize:
            raise ValueError(f"{name}: size does not match its shape")
        raw = np.frombuffer(body[begin:end], dtype).reshape(shape)
        tensors[name] = raw.astype(dtype.newbyteorder("="))  # a native, writable copy
        spans.append((begin, end))
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
        raise ValueError("tensors overlap")
    return tensors, {str(k): str(v) for k, v in metadata.items()}


def model_card(spec: NetworkSpec, **extra) -> dict:
    """The card that describes a network: everything needed to rebuild and use it."""
    card = {
        "format": CARD_FORMAT,
        "cell": spec.cell,
        "nonlinearity": spec.nonlinearity,
        "input_size": spec.input_size,
        "hidden_size": spec.hidden_size,
        "num_layers": spec.num_layers,
        "output_size": spec.output_size,
        "head_inputs": spec.head_inputs,
        "dropout": spec.dropout,
        "time_major": True,
        "head": "head.weight/head.bias: Linear(hidden_size + head_inputs, output_size) on "
                "concat(the top layer's last hidden state, the head features); head.weight[:, "
                ":hidden_size] reads the hidden state, head.weight[:, hidden_size:] the "
                "head_inputs head features in order; output index = horizon_step * "
                "outputs_per_step + output",
    }
    card.update(extra)
    return card


def dump_model(spec: NetworkSpec, params: np.ndarray, **card_extra) -> bytes:
    """Safetensors bytes of a network's weights (PyTorch names) with its model card."""
    tensors = spec.layout.views(params)
    card = model_card(spec, **card_extra)
    return to_safetensors(tensors, {"model_card": json.dumps(card), "format": "pt"})


def load_model(data: bytes, dtype=np.float32) -> tuple[NetworkSpec, np.ndarray, dict]:
    """Rebuild (spec, flat params, card) from dump_model's bytes."""
    tensors, metadata = from_safetensors(data)
    try:
        card = json.loads(metadata["model_card"])
    except (KeyError, json.JSONDecodeError):
        raise ValueError("the file has no bptt model card") from None
    if card.get("format") != CARD_FORMAT:
        raise ValueError(f"unknown model card format {card.get('format')!r}")
    spec = NetworkSpec(**{k: card[k] for k in ("cell", "nonlinearity", "input_size",
                                              "hidden_size", "num_layers", "output_size",
                                              "dropout")},
                       head_inputs=card.get("head_inputs", 0))  # older files: none
    return spec, spec.layout.flatten(tensors, dtype), card
