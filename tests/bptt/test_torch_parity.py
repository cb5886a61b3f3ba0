"""Forward outputs, gradients, clipping and optimizer steps against PyTorch autograd."""

import numpy as np
import pytest

from bptt import NetworkSpec, init_parameters, loss_and_gradients, make_loss, predict
from bptt.clipping import ClipSpec, clip_gradients
from bptt.gradcheck import relative_error
from bptt.optimizers import make_optimizer
from bptt.schedules import make_schedule
from bptt.training_step import train_step

from .cases import ALL, FIRST_OUTPUT, HEAD_CASES, build, build_with_head, case_id
from .torch_reference import head_input, loss_and_grads, modules, torch

TOLERANCE = {np.float64: 1e-8, np.float32: 1e-4}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ALL, ids=case_id)
def test_loss_and_gradients_match_autograd(case, dtype):
    spec, params, x, y, loss = build(case, dtype=dtype)
    ours = loss_and_gradients(spec, params, x, y, loss, first_output=FIRST_OUTPUT,
                              truncate=case[2])
    ref_loss, ref_grads = loss_and_grads(spec, params, x, y, loss, FIRST_OUTPUT, case[2])
    tol = TOLERANCE[dtype]
    assert ours.grad.dtype == dtype
    assert ours.loss == pytest.approx(ref_loss, rel=tol)
    for name, grad in spec.layout.views(ours.grad).items():
        assert relative_error(grad, ref_grads[name]) < tol, name


@pytest.mark.parametrize("per_step", [True, False], ids=["features_per_step", "features_shared"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", HEAD_CASES, ids=case_id)
def test_several_inputs_and_head_features_match_autograd(case, dtype, per_step):
    """input_size 3 and head_inputs 2 against nn.RNN/LSTM/GRU + nn.Linear on
    torch.cat([h_t, features], 1)."""
    spec, params, x, y, loss, features = build_with_head(case, dtype=dtype, per_step=per_step)
    ours = loss_and_gradients(spec, params, x, y, loss, first_output=FIRST_OUTPUT,
                              truncate=case[2], head_features=features)
    ref_loss, ref_grads = loss_and_grads(spec, params, x, y, loss, FIRST_OUTPUT, case[2],
                                         head_features=features)
    tol = TOLERANCE[dtype]
    assert ours.loss == pytest.approx(ref_loss, rel=tol)
    for name, grad in spec.layout.views(ours.grad).items():
        assert relative_error(grad, ref_grads[name]) < tol, name


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("head_inputs", [0, 4])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_forecasts_match_torch_modules(cell, head_inputs, dtype):
    spec = NetworkSpec(cell=cell, input_size=3, hidden_size=16, num_layers=2, output_size=12,
                       head_inputs=head_inputs)
    params = init_parameters(spec, 4, dtype)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 50, 3)).astype(dtype)
    features = rng.normal(size=(50, head_inputs)).astype(dtype) if head_inputs else None
    # chunks must not change anything
    ours, states = predict(spec, params, x, batch_chunk=16, head_features=features)
    rnn, head = modules(spec, params)
    with torch.no_grad():
        out, final = rnn(torch.tensor(x))
        ref = head(head_input(out[-1], None if features is None else torch.tensor(features)))
        ref = ref.numpy()
    assert relative_error(ours, ref) < TOLERANCE[dtype]
    final_h = final[0] if cell == "lstm" else final
    for k, state in enumerate(states):
        assert relative_error(state.h, final_h[k].numpy()) < TOLERANCE[dtype]


def test_gradient_flow_matches_autograd_through_an_unrolled_cell():
    spec = NetworkSpec(cell="lstm", input_size=2, hidden_size=5, output_size=3)
    params = init_parameters(spec, 1, np.float64)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 4, 2)), rng.normal(size=(1, 4, 3))
    ours = loss_and_gradients(spec, params, x, y, make_loss("mse")).grad_flow[0]
    rnn, head = modules(spec, params)
    cell = torch.nn.LSTMCell(2, 5).double()
    cell.load_state_dict({k[:-3]: v for k, v in rnn.state_dict().items()})  # drop "_l0"
    h = c = torch.zeros(4, 5, dtype=torch.float64)
    hidden = []
    for t in range(12):
        h, c = cell(torch.tensor(x[t]), (h, c))
        h.retain_grad()
        hidden.append(h)
    torch.nn.functional.mse_loss(head(h), torch.tensor(y[0])).backward()
    reference = np.array([hs.grad.abs().mean().item() for hs in hidden])
    assert relative_error(ours, reference) < 1e-10


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cell,inputs,head_inputs", [("gru", 1, 0), ("rnn", 3, 2), ("lstm", 3, 2),
                                                     ("gru", 3, 2)])
def test_clipped_adam_steps_match_torch(cell, inputs, head_inputs, dtype):
    spec = NetworkSpec(cell=cell, input_size=inputs, hidden_size=8, num_layers=2, output_size=4,
                       head_inputs=head_inputs)
    params = init_parameters(spec, 5, dtype)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 6, inputs)).astype(dtype)
    y = (3 * rng.normal(size=(1, 6, 4))).astype(dtype)
    features = rng.normal(size=(6, head_inputs)).astype(dtype) if head_inputs else None
    tfeatures = None if features is None else torch.tensor(features)
    loss, clip = make_loss("mse"), ClipSpec(max_norm=0.05)
    optimizer = make_optimizer("adam")
    state = optimizer.init_state(params)
    rnn, head = modules(spec, params)
    tparams = list(rnn.parameters()) + list(head.parameters())
    topt = torch.optim.Adam(tparams, lr=0.01)
    for _ in range(3):
        grads = loss_and_gradients(spec, params, x, y, loss, head_features=features)
        norm, clipped = clip_gradients(grads.grad, clip)
        optimizer.step(params, grads.grad, state, lr=0.01)
        topt.zero_grad()
        pred = head(head_input(rnn(torch.tensor(x))[0][-1], tfeatures))
        torch.nn.functional.mse_loss(pred, torch.tensor(y[0])).backward()
        tnorm = torch.nn.utils.clip_grad_norm_(tparams, clip.max_norm)
        topt.step()
        assert clipped and norm == pytest.approx(tnorm.item(), rel=TOLERANCE[dtype])
    weights = {**dict(rnn.named_parameters()),
               **{f"head.{k}": v for k, v in head.named_parameters()}}
    for name, value in spec.layout.views(params).items():
        assert relative_error(value, weights[name].detach().numpy()) < TOLERANCE[dtype], name


@pytest.mark.parametrize("clip", [ClipSpec(max_norm=0.05), ClipSpec(max_value=0.01), None],
                         ids=["norm", "value", "none"])
@pytest.mark.parametrize("case", [c for c in HEAD_CASES if c[2] is not None and c[1] == 2],
                         ids=case_id)
def test_truncated_clipped_train_step_with_head_features_matches_torch(case, clip):
    """train_step (truncated BPTT, clipping, an SGD update) on 3 inputs and 2 head features
    against autograd's truncated gradient, clipped by torch.nn.utils and applied by hand. In
    float64: the update is recovered as (before - after) / lr, which float32 rounding would
    swamp (float32 gradients are compared directly above)."""
    dtype = np.float64
    spec, params, x, y, loss, features = build_with_head(case, dtype=dtype)
    _, ref_grads = loss_and_grads(spec, params, x, y, loss, FIRST_OUTPUT, case[2],
                                  head_features=features)
    tensors = {n: torch.tensor(g.copy()) for n, g in ref_grads.items()}
    for t in tensors.values():
        t.grad = t.clone()
    if clip is not None and clip.max_norm is not None:
        torch.nn.utils.clip_grad_norm_(list(tensors.values()), clip.max_norm)
    if clip is not None and clip.max_value is not None:
        torch.nn.utils.clip_grad_value_(list(tensors.values()), clip.max_value)
    before = params.copy()
    sgd = make_optimizer("sgd")
    report = train_step(spec, params, x, y, loss=loss, optimizer=sgd,
                        optimizer_state=sgd.init_state(params), lr=0.1, clip=clip,
                        truncate=case[2], first_output=FIRST_OUTPUT, head_features=features)
    assert report.clipped == (clip is not None)
    steps = spec.layout.views((before - params) / 0.1)  # the gradients applied
    for name, applied in steps.items():
        assert relative_error(applied, tensors[name].grad.numpy()) < TOLERANCE[dtype], name


def test_clip_by_value_matches_torch():
    grad = np.random.default_rng(0).normal(size=100)
    ref = torch.tensor(grad.copy(), requires_grad=True)
    ref.grad = torch.tensor(grad.copy())
    norm, clipped = clip_gradients(grad, ClipSpec(max_value=0.5))
    torch.nn.utils.clip_grad_value_([ref], 0.5)
    assert clipped and norm > 0
    assert np.array_equal(grad, ref.grad.numpy())


OPTIMIZERS = [
    ("sgd", {}, torch.optim.SGD, {}),
    ("momentum", {"weight_decay": 0.01}, torch.optim.SGD, {"momentum": 0.9, "weight_decay": 0.01}),
    ("nesterov", {}, torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    ("rmsprop", {"weight_decay": 0.01}, torch.optim.RMSprop, {"weight_decay": 0.01}),
    ("adam", {"weight_decay": 0.01}, torch.optim.Adam, {"weight_decay": 0.01}),
    ("adamw", {}, torch.optim.AdamW, {}),
]


@pytest.mark.parametrize("name,options,reference,ref_options", OPTIMIZERS,
                         ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_updates_match_torch(name, options, reference, ref_options):
    rng = np.random.default_rng(1)
    params = rng.normal(size=50)
    optimizer = make_optimizer(name, **options)
    state = optimizer.init_state(params)
    tparam = torch.tensor(params.copy(), requires_grad=True)
    topt = reference([tparam], lr=0.05, **ref_options)
    for _ in range(5):
        grad = rng.normal(size=50)
        optimizer.step(params, grad, state, lr=0.05)
        tparam.grad = torch.tensor(grad)
        topt.step()
    assert relative_error(params, tparam.detach().numpy()) < 1e-12


def test_schedules_match_torch():
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7] * 2
    cases = [
        ("step", {"step_size": 3, "gamma": 0.5}, torch.optim.lr_scheduler.StepLR,
         {"step_size": 3, "gamma": 0.5}),
        ("cosine", {"t_max": 10, "eta_min": 0.001}, torch.optim.lr_scheduler.CosineAnnealingLR,
         {"T_max": 10, "eta_min": 0.001}),
        ("plateau", {"factor": 0.5, "patience": 2, "cooldown": 1},
         torch.optim.lr_scheduler.ReduceLROnPlateau, {"factor": 0.5, "patience": 2, "cooldown": 1}),
    ]
    for name, options, reference, ref_options in cases:
        ours = make_schedule(name, 0.1, **options)
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        ref = reference(topt, **ref_options)
        for epoch, metric in enumerate(metrics[:10] if name == "cosine" else metrics):
            lr = ours.next(metric)
            topt.step()
            ref.step(metric) if name == "plateau" else ref.step()
            assert lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12), (name, epoch)
