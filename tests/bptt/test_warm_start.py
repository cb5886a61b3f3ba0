"""Continue training: a fit that starts from an earlier model's weights."""

import numpy as np
import pytest

import bptt
from bptt import TrainingSpec


def _seasonal(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return {f"s{i}": 5 + 2 * np.sin(2 * np.pi * t / 12 + i) + rng.normal(0, 0.1, n)
            for i in range(4)}


def _spec(epochs: int, **model) -> TrainingSpec:
    return TrainingSpec.from_dict({
        "horizon": 6, "season_length": 12, "seasonality": "none",  # the network's own work
        "model": {"cell": "gru", "hidden_size": 16, **model}, "window": {"input_size": 24},
        "training": {"epochs": epochs, "batch_size": 16, "ensemble": 2,
                     "early_stopping_patience": None, "schedule": "constant"}})


def test_warm_start_converges_faster_than_from_scratch():
    first = bptt.fit(_seasonal(120, 0), spec=_spec(40))
    extended = _seasonal(160, 1)  # more (and newer) data of the same kind
    warm = bptt.fit(extended, spec=_spec(10), warm_start=first.model)
    cold = bptt.fit(extended, spec=_spec(10))
    warm_val = [m.val_loss for m in warm.history if m.member == 0]
    cold_val = [m.val_loss for m in cold.history if m.member == 0]
    # from the first epoch on, and still after ten: a head start that scratch does not catch up
    assert warm_val[0] < 0.5 * cold_val[0]
    assert min(warm_val) < min(cold_val)
    # the epochs scratch needs to reach what the warm start had after one
    assert all(v > warm_val[0] for v in cold_val[:5])


def test_warm_start_without_a_spec_continues_with_the_models_own():
    first = bptt.fit(_seasonal(120, 0), spec=_spec(3))
    again = bptt.fit(_seasonal(130, 2), warm_start=first.model)
    assert again.model.network == first.model.network
    assert again.model.spec.window.input_size == 24


def test_open_sizes_come_from_the_model_and_members_start_from_its_weights():
    first = bptt.fit(_seasonal(120, 0), spec=_spec(3))
    open_spec = TrainingSpec.from_dict({"horizon": 6, "model": {"cell": "gru"},
                                        "training": {"epochs": 1, "ensemble": 3,
                                                     "learning_rate": 1e-12}})
    again = bptt.fit(_seasonal(120, 0), spec=open_spec, warm_start=first.model)
    assert again.model.network.hidden_size == 16
    # a vanishing learning rate: each member is still (almost) the member it started from
    for k in range(3):
        start = first.model.members[k % 2]
        assert np.allclose(again.model.members[k], start, atol=1e-6)


@pytest.mark.parametrize("change", [{"hidden_size": 8}, {"cell": "lstm"}, {"num_layers": 2}])
def test_a_network_of_another_shape_is_refused_naming_warm_start(change):
    first = bptt.fit(_seasonal(120, 0), spec=_spec(1))
    with pytest.raises(bptt.SpecError) as info:
        bptt.fit(_seasonal(120, 0), spec=_spec(1, **change), warm_start=first.model)
    assert info.value.errors[0]["loc"] == ["warm_start"]
    assert next(iter(change)) in info.value.errors[0]["msg"]


def test_a_warm_start_continues_a_budget_in_updates():
    spec = TrainingSpec.from_dict({
        "horizon": 6, "season_length": 12, "model": {"cell": "gru", "hidden_size": 8},
        "training": {"max_steps": 12, "eval_every": 5, "ensemble": 1,
                     "early_stopping_patience": None}})
    first = bptt.fit(_seasonal(120, 0), spec=spec)
    again = bptt.fit(_seasonal(130, 2), warm_start=first.model)  # the model's own budget
    assert again.model.spec.training == first.model.spec.training
    assert [m.steps for m in again.history] == [5, 10, 12]
    assert not np.array_equal(again.model.members, first.model.members)
