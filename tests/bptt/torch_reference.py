"""The same networks, losses and truncation built from PyTorch, as an independent reference."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64}


def modules(spec, params):
    """(rnn, head) torch modules holding our flat parameters, loaded by name. The head is
    Linear(H + head_inputs, O): it reads torch.cat([h_T, head_features], 1) (see `head_input`)."""
    dtype = TORCH_DTYPES[params.dtype.type]
    kinds = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
    extra = {"nonlinearity": spec.nonlinearity} if spec.cell == "rnn" else {}
    rnn = kinds[spec.cell](spec.input_size, spec.hidden_size, spec.num_layers, **extra).to(dtype)
    head = torch.nn.Linear(spec.hidden_size + spec.head_inputs, spec.output_size).to(dtype)
    views = spec.layout.views(params)
    tensors = {k: torch.tensor(v) for k, v in views.items()}
    rnn.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("head.")})
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    return rnn, head


def elementwise(loss, pred, target):
    """Per-element loss (N, horizon, Q) of a bptt loss object, in torch."""
    name = type(loss).__name__
    if name == "MeanAndQuantiles":  # each part a mean over its own outputs
        q = len(loss.quantiles)
        p = pred.reshape(*target.shape, 1 + q)
        mean = F.mse_loss(p[..., 0], target, reduction="none")[..., None] * (1 + q)
        quant = elementwise(type("Pinball", (), {"quantiles": loss.quantiles})(),
                            p[..., 1:].reshape(*target.shape[:-1], -1), target) * (1 + q) / q
        return torch.cat([mean, quant], dim=-1)
    if name == "Pinball":
        q = torch.tensor(loss.quantiles, dtype=pred.dtype)
        r = target[..., None] - pred.reshape(*target.shape, len(q))
        return torch.maximum(q * r, (q - 1) * r)
    if name == "MSE":
        out = F.mse_loss(pred, target, reduction="none")
    elif name == "MAE":
        out = F.l1_loss(pred, target, reduction="none")
    else:
        out = F.huber_loss(pred, target, reduction="none", delta=loss.delta)
    return out[..., None]


def head_input(top, features):
    """What the head reads: the hidden states top (..., H), with head features (..., E) after
    them when the network has head inputs (features None: it has none)."""
    return top if features is None else torch.cat([top, features], dim=-1)


def loss_and_grads(spec, params, x, y, loss, first_output, truncate, head_features=None):
    """Mean loss and {name: grad} by autograd, truncating by detaching each window's start state.
    head_features: (B, E) for every output step or (K, B, E) per output step, or None."""
    rnn, head = modules(spec, params)
    steps = x.shape[0]
    k1, k2 = truncate or (steps, steps)
    known = torch.tensor(np.isfinite(y))
    target = torch.tensor(np.nan_to_num(y))
    count = int(known.sum()) * loss.outputs_per_target
    inputs = torch.tensor(x)
    features = None
    if head_features is not None:
        features = torch.tensor(np.broadcast_to(head_features, (*y.shape[:2], spec.head_inputs)))
    total = 0.0
    for seg_start in range(0, steps, k1):
        seg_end = min(seg_start + k1, steps)
        win_start = max(0, seg_end - k2)
        out_start = max(seg_start, first_output)
        if out_start >= seg_end:
            continue
        state = None
        if win_start > 0:
            with torch.no_grad():
                state = rnn(inputs[:win_start])[1]
        top = rnn(inputs[win_start:seg_end], state)[0]
        rows = slice(out_start - first_output, seg_end - first_output)
        pred = head(head_input(top[out_start - win_start :],
                               None if features is None else features[rows]))  # (K, B, O)
        values = elementwise(loss, pred, target[rows]) * known[rows][..., None]
        segment = values.sum()
        (segment / count).backward()
        total += segment.item()
    grads = {name: p.grad.numpy() for name, p in rnn.named_parameters()}
    grads.update({f"head.{name}": p.grad.numpy() for name, p in head.named_parameters()})
    return total / count, grads
