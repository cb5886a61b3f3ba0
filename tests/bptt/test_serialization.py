"""Weights on the wire: safetensors bytes, the model card, and loading into PyTorch."""

import dataclasses
import json
import struct

import numpy as np
import pytest

import bptt
from bptt import NetworkSpec, init_parameters, predict
from bptt.gradcheck import relative_error
from bptt.serialization import dump_model, from_safetensors, load_model, to_safetensors

from .torch_reference import torch

SPECS = [
    NetworkSpec(cell="lstm", input_size=2, hidden_size=8, num_layers=2, output_size=6),
    NetworkSpec(cell="gru", input_size=1, hidden_size=5, output_size=3),
    NetworkSpec(cell="rnn", nonlinearity="relu", input_size=3, hidden_size=4, num_layers=3,
                output_size=2),
    NetworkSpec(cell="gru", input_size=3, hidden_size=6, num_layers=2, output_size=4,
                head_inputs=2),
]


def _spec_id(spec):
    return spec.cell + (f"-head{spec.head_inputs}" if spec.head_inputs else "")


@pytest.mark.parametrize("spec", SPECS, ids=_spec_id)
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


@pytest.mark.parametrize("spec", SPECS, ids=_spec_id)
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
    head = torch.nn.Linear(card["hidden_size"] + card["head_inputs"], card["output_size"])
    rnn.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("head.")})
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    rng = np.random.default_rng(1)
    x = rng.normal(size=(24, 7, card["input_size"])).astype(np.float32)
    features = rng.normal(size=(7, card["head_inputs"])).astype(np.float32)
    with torch.no_grad():
        last = rnn(torch.tensor(x))[0][-1]
        theirs = head(torch.cat([last, torch.tensor(features)], 1)).numpy()
    ours, _ = predict(spec, params, x,
                      head_features=features if spec.head_inputs else None)
    assert relative_error(ours, theirs) < 1e-5


def test_a_card_without_head_inputs_reads_as_none():
    """Files written before head inputs existed: the same layout, head_inputs = 0."""
    spec = SPECS[0]
    tensors, metadata = from_safetensors(dump_model(spec, init_parameters(spec, 2)))
    card = json.loads(metadata["model_card"])
    del card["head_inputs"]
    old = to_safetensors(tensors, {**metadata, "model_card": json.dumps(card)})
    assert load_model(old)[0] == spec


def test_torch_reproduces_a_forecast_with_step_and_head_features_from_the_file(tmp_path):
    """A Model whose network reads 3 columns per step and 2 head features, saved: PyTorch
    given the file alone (its tensors and its card) computes bptt.forecast's means."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    series = {f"s{i}": 10 + np.sin(np.arange(60) / (2 + i)) * (i + 1) for i in range(3)}
    spec = bptt.TrainingSpec.from_dict({
        "horizon": 4, "seasonality": "none", "model": {"hidden_size": 5},
        "training": {"epochs": 1, "batch_size": 16, "ensemble": 1}})
    trained = bptt.fit(series, spec=spec).model
    network = dataclasses.replace(trained.network, cell="lstm", input_size=3, head_inputs=2)
    model = dataclasses.replace(
        trained, network=network, members=init_parameters(network, 6)[None], combination=None,
        input_features=[trained.input_features[0], "promo (0/1) at the step",
                        "sin(2 pi month / 12) at the step"],
        head_features=["store size, scaled", "promo (0/1) over the horizon, summed"])
    window = model.tails.shape[1]
    rng = np.random.default_rng(3)
    step_features = rng.normal(size=(3, window, 2))
    head_features = rng.normal(size=(3, 2))
    ours = bptt.forecast_arrays(model, step_features=step_features,
                                head_features=head_features)[2][:, :, 0]
    path = tmp_path / "model.safetensors"
    path.write_bytes(model.to_bytes())
    tensors = safetensors_torch.load_file(str(path))
    card = json.loads(safetensors_torch.safe_open(str(path), "pt").metadata()["model_card"])
    assert card["input_size"] == 3 and len(card["input_features"]) == 3
    assert card["head_inputs"] == 2 and card["head_features"] == model.head_features
    rnn = torch.nn.LSTM(card["input_size"], card["hidden_size"], card["num_layers"])
    head = torch.nn.Linear(card["hidden_size"] + card["head_inputs"], card["output_size"])
    rnn.load_state_dict({k: v for k, v in tensors.items() if k.startswith(("weight_", "bias_"))})
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    tails = tensors["series.tails"].numpy()  # the card's "input_features"[0], before centring
    levels = tails[:, -1:]
    x = np.concatenate([(tails - levels)[:, :, None], step_features], axis=2)  # (S, L, 3)
    with torch.no_grad():
        last = rnn(torch.tensor(x.transpose(1, 0, 2), dtype=torch.float32))[0][-1]
        out = head(torch.cat([last, torch.tensor(head_features, dtype=torch.float32)], 1))
    means = out.numpy().reshape(3, card["horizon"], card["outputs_per_step"])[:, :, 0]
    scalers = [s["scaler"] for s in card["series"]]
    theirs = (means + levels) * np.array([[s["scale"]] for s in scalers]) + np.array(
        [[s["center"]] for s in scalers])
    assert relative_error(ours, theirs) < 1e-5
    again = bptt.Model.from_bytes(path.read_bytes())
    assert again.network == network and again.head_features == model.head_features
    assert np.array_equal(bptt.forecast_arrays(again, step_features=step_features,
                                               head_features=head_features)[2][:, :, 0], ours)
    with pytest.raises(ValueError, match="step_features must have shape"):
        bptt.forecast_arrays(model, head_features=head_features)
    with pytest.raises(ValueError, match="head_features must have shape"):
        bptt.forecast_arrays(model, step_features=step_features, head_features=head_features[1:])


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


def test_torch_reproduces_a_covariate_forecast_from_the_file_and_its_card(tmp_path):
    """A model fitted with a historical, a future and a static covariate, saved: PyTorch builds
    the inputs as the card describes them (the stored windows of scaled covariates, the static
    columns, and the future one's raw values scaled by the card's per-series scaler, minus its
    value at the window's last step) and computes bptt.forecast's network means."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    rng = np.random.default_rng(5)
    n, horizon = 90, 4
    promo = {f"s{i}": (rng.random(n + horizon) < 0.3).astype(float) for i in range(3)}
    temp = {sid: 15 + 5 * np.sin(np.arange(n) / 9 + i) for i, sid in enumerate(promo)}
    series = {sid: 20 + 6 * p[:n] + 0.3 * temp[sid] + rng.normal(0, 0.5, n)
              for sid, p in promo.items()}
    covariates = {"temp": {"kind": "historical", "values": temp},
                  "promo": {"kind": "future", "values": {s: p[:n] for s, p in promo.items()}},
                  "store": {"kind": "static", "values": {"s0": "a", "s1": "b", "s2": "a"}}}
    spec = bptt.TrainingSpec.from_dict({
        "horizon": horizon, "seasonality": "none", "calendar": "off", "quantiles": [],
        "model": {"hidden_size": 6}, "training": {"epochs": 3, "ensemble": 1}})
    fitted = bptt.fit(series, spec=spec, covariates=covariates).model
    model = dataclasses.replace(fitted, combination=None)  # the network's own forecast
    planned = {"promo": {s: p[n:] for s, p in promo.items()}}
    ours = bptt.forecast_arrays(model, future_covariates=planned)[2][:, :, 0]
    path = tmp_path / "model.safetensors"
    path.write_bytes(model.to_bytes())
    tensors = {k: v.numpy().astype(np.float64)
               for k, v in safetensors_torch.load_file(str(path)).items()}
    card = json.loads(safetensors_torch.safe_open(str(path), "pt").metadata()["model_card"])
    assert card["input_features"][1:] == ["covariate temp, scaled per series",
                                          "covariate promo, scaled per series"]
    assert card["head_features"][:3] == ["static covariate store=a", "static covariate store=b",
                                         "static covariate store=<unknown>"]
    rnn = torch.nn.LSTM(card["input_size"], card["hidden_size"], card["num_layers"])
    head = torch.nn.Linear(card["hidden_size"] + card["head_inputs"], card["output_size"])
    with torch.no_grad():
        rnn.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in tensors.items()
                             if k.startswith(("weight_", "bias_"))})
        head.load_state_dict({k[5:]: torch.tensor(v, dtype=torch.float32)
                              for k, v in tensors.items() if k.startswith("head.")})
    tails, steps = tensors["series.tails"], tensors["covariates.tails"]  # (S, L), (S, L, 2)
    levels = tails[:, -1:]
    x = np.concatenate([(tails - levels)[:, :, None], steps], axis=2)
    ids = [s["id"] for s in card["series"]]
    promo_column = card["covariates"]["covariates"][:2].index({"name": "promo",
                                                               "kind": "future"})
    scalers = {sid: np.reshape(card["covariates"]["scalers"][sid], (-1, 2)) for sid in ids}
    ahead = np.stack([(planned["promo"][sid] - scalers[sid][promo_column, 0])
                      / scalers[sid][promo_column, 1] for sid in ids])
    ahead -= steps[:, -1:, promo_column]
    features = np.concatenate([tensors["covariates.static"], ahead], axis=1)
    with torch.no_grad():
        last = rnn(torch.tensor(x.transpose(1, 0, 2), dtype=torch.float32))[0][-1]
        out = head(torch.cat([last, torch.tensor(features, dtype=torch.float32)], 1))
    means = out.numpy().reshape(3, horizon, card["outputs_per_step"])[:, :, 0]
    target = [s["scaler"] for s in card["series"]]
    theirs = ((means + levels) * np.array([[s["scale"]] for s in target])
              + np.array([[s["center"]] for s in target]))
    assert relative_error(ours, theirs) < 1e-5
