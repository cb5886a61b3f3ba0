"""Weights on the wire: safetensors bytes, the model card, and loading into PyTorch."""

import json
import struct

import numpy as np
import pytest

from bptt import NetworkSpec, init_parameters, predict
from bptt.gradcheck import relative_error
from bptt.serialization import dump_model, from_safetensors, load_model, to_safetensors

from .torch_reference import torch

SPECS = [
    NetworkSpec(cell="lstm", input_size=2, hidden_size=8, num_layers=2, output_size=6),
    NetworkSpec(cell="gru", input_size=1, hidden_size=5, output_size=3),
    NetworkSpec(cell="rnn", nonlinearity="relu", input_size=3, hidden_size=4, num_layers=3,
                output_size=2),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.cell)
def test_round_trip_keeps_spec_weights_and_card(spec):
    params = init_parameters(spec, 3)
    data = dump_model(spec, params, horizon=3, scaler={"kind": "standard"})
    spec2, params2, card = load_model(data)
    assert spec2 == spec
    assert np.array_equal(params2, params)
    assert card["horizon"] == 3 and card["scaler"] == {"kind": "standard"}


def test_reference_library_reads_our_bytes_and_we_read_its():
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float64)}
    theirs = safetensors_numpy.load(to_safetensors(tensors, {"k": "v"}))
    assert all(np.array_equal(theirs[k], v) for k, v in tensors.items())
    ours, metadata = from_safetensors(safetensors_numpy.save(tensors, metadata={"k": "v"}))
    assert all(np.array_equal(ours[k], v) for k, v in tensors.items())
    assert metadata == {"k": "v"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.cell)
def test_torch_loads_the_file_and_forecasts_the_same(spec, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    params = init_parameters(spec, 9)
    path = tmp_path / "model.safetensors"
    path.write_bytes(dump_model(spec, params))
    tensors = safetensors_torch.load_file(str(path))
    card = json.loads(safetensors_torch.safe_open(str(path), "pt").metadata()["model_card"])
    kinds = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
    extra = {"nonlinearity": card["nonlinearity"]} if card["cell"] == "rnn" else {}
    rnn = kinds[card["cell"]](card["input_size"], card["hidden_size"], card["num_layers"], **extra)
    head = torch.nn.Linear(card["hidden_size"], card["output_size"])
    rnn.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("head.")})
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    x = np.random.default_rng(1).normal(size=(24, 7, spec.input_size)).astype(np.float32)
    with torch.no_grad():
        theirs = head(rnn(torch.tensor(x))[0][-1]).numpy()
    ours, _ = predict(spec, params, x)
    assert relative_error(ours, theirs) < 1e-5


def _header(data: bytes) -> dict:
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + size])


def _tensor(dtype: str, size: int, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": [size], "data_offsets": [begin, end]}


def _with_header(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


@pytest.mark.parametrize("corrupt", [
    lambda d: d[:5],
    lambda d: struct.pack("<Q", 10**12) + d[8:],
    lambda d: struct.pack("<Q", 4) + b"[1,]" + d[12:],
    lambda d: _with_header({"w": _tensor("F32", 4, 0, 99)}, b"\0" * 16),
    lambda d: _with_header({"w": _tensor("F32", 5, 0, 16)}, b"\0" * 16),
    lambda d: _with_header({"w": _tensor("PICKLE", 1, 0, 1)}, b"\0"),
    lambda d: _with_header({"a": _tensor("U8", 4, 0, 4), "b": _tensor("U8", 4, 2, 6)}, b"\0" * 8),
], ids=["short", "huge-header", "bad-json", "past-end", "wrong-size", "bad-dtype", "overlap"])
def test_malformed_files_are_rejected(corrupt):
    data = to_safetensors({"w": np.zeros(4, np.float32)})
    assert _header(data)["w"]["shape"] == [4]
    with pytest.raises(ValueError):
        from_safetensors(corrupt(data))


def test_a_file_without_our_card_is_rejected():
    with pytest.raises(ValueError, match="model card"):
        load_model(to_safetensors({"w": np.zeros(4, np.float32)}))
