"""Covariates declared, checked and encoded: what the network is given, and the errors a user
gets, each naming the field."""

import json

import numpy as np
import pytest

from bptt.covariates import (
    UNKNOWN,
    Encoder,
    declare,
    declare_horizon,
    encode,
    encode_horizon,
    fit_encoder,
)
from bptt.data import DataError

LENGTHS = {"a": 4, "b": 3}
RAW = {
    "promo": {"kind": "future", "values": {"a": [0, 1, 0, 1], "b": [1, 1, 0]}},
    "temp": {"kind": "historical", "values": {"a": [10.0, None, 14.0, 16.0], "b": [5, 6, 7]}},
    "size": {"kind": "static", "values": {"a": 100, "b": 300}},
    "region": {"kind": "static", "values": {"a": "north", "b": "south"}},
}


def fitted():
    declared = declare(RAW, LENGTHS)
    return declared, fit_encoder(declared, list(LENGTHS))


def test_dynamic_covariates_are_scaled_per_series_with_gaps_filled():
    declared, encoder = fitted()
    encoded = encode(encoder, declared, LENGTHS)
    assert encoder.dynamic == ["promo", "temp"]
    a = encoded.steps[0]
    assert a.shape == (4, 2)
    temp = np.array([10.0, 12.0, 14.0, 16.0])  # the gap filled between its neighbours
    observed = np.array([10.0, 14.0, 16.0])  # the scaler sees observed values only
    np.testing.assert_allclose(a[:, 1], (temp - observed.mean()) / observed.std())
    np.testing.assert_allclose(a[:, 0], [-1, 1, -1, 1])
    b = encoded.steps[1]
    assert b.shape == (3, 2)
    np.testing.assert_allclose(b[:, 1], (np.array([5, 6, 7]) - 6) / np.std([5, 6, 7]))


def test_static_numbers_standardised_across_series_categories_one_hot_with_unknown():
    declared, encoder = fitted()
    encoded = encode(encoder, declared, LENGTHS)
    assert encoder.static_names() == ["size", "region=north", "region=south",
                                      f"region={UNKNOWN}"]
    np.testing.assert_allclose(encoded.static, [[-1, 1, 0, 0], [1, 0, 1, 0]])


def test_a_series_met_at_forecast_time_gets_its_own_scalers_and_unknown_category():
    declared, encoder = fitted()
    new = {"promo": {"kind": "future", "values": {"c": [0, 2]}},
           "temp": {"kind": "historical", "values": {"c": [1, 3]}},
           "size": {"kind": "static", "values": {"c": 200}},
           "region": {"kind": "static", "values": {"c": "east"}}}
    encoded = encode(encoder, declare(new, {"c": 2}), {"c": 2})
    np.testing.assert_allclose(encoded.steps[0], [[-1, -1], [1, 1]])
    np.testing.assert_allclose(encoded.static, [[0, 0, 0, 1]])


def test_a_known_series_keeps_its_training_scalers():
    declared, encoder = fitted()
    later = {**RAW, "temp": {"kind": "historical", "values": {"a": [100, 100], "b": [0, 0]}},
             "promo": {"kind": "future", "values": {"a": [1, 1], "b": [0, 0]}}}
    encoded = encode(encoder, declare(later, {"a": 2, "b": 2}), {"a": 2, "b": 2})
    center, scale = encoder.scalers["a"][1]
    np.testing.assert_allclose(encoded.steps[0][:, 1], (100 - center) / scale)


def test_horizon_values_are_scaled_by_the_series_scalers_and_centred_on_the_origin():
    declared, encoder = fitted()
    encoded = encode(encoder, declared, LENGTHS)
    values = declare_horizon({"promo": {"a": [1, 0], "b": [0, 0, 7]}}, encoder.future,
                             ["a", "b"], horizon=2)
    origin = np.stack([steps[-1] for steps in encoded.steps])  # the last step's (promo, temp)
    scaled = encode_horizon(encoder, encoded.scalers, values, ["a", "b"], origin)
    assert scaled.shape == (2, 2, 1)
    # a: promo 0, 1, 0, 1 scales to -1, 1, -1, 1; the horizon's 1, 0 to 1, -1, less the last 1
    np.testing.assert_allclose(scaled[0, :, 0], [0, -2])
    center, scale = encoder.scalers["b"][0]  # b: promo 1, 1, 0 ends off, and stays off
    np.testing.assert_allclose(scaled[1, :, 0], [0, 0])
    np.testing.assert_allclose(origin[1, 0], (0 - center) / scale)


def test_a_trending_driver_reads_the_same_at_the_head_wherever_its_level_is():
    # The head reads a future covariate's change since the origin: a driver that has trended
    # far beyond its training range reads as its steps do, not as a level never seen.
    declared = declare({"income": {"kind": "future", "values": {"a": np.arange(100.0)}}},
                       {"a": 100})
    encoder = fit_encoder(declared, ["a"])
    encoded = encode(encoder, declared, {"a": 100})
    origin = encoded.steps[0][-1:]
    near = encode_horizon(encoder, encoded.scalers, {"income": np.array([[100.0, 101.0]])},
                          ["a"], origin)
    far = encode_horizon(encoder, encoded.scalers, {"income": np.array([[1000.0, 1001.0]])},
                         ["a"], origin + 900 / encoder.scalers["a"][0, 1])
    np.testing.assert_allclose(near, far)
    np.testing.assert_allclose(near[0, :, 0] * encoder.scalers["a"][0, 1], [1, 2])


@pytest.mark.parametrize("raw, loc", [
    ({"promo": {"a": [1, 0]}}, ["future_covariates", "promo", "b"]),
    ({"promo": {"a": [1], "b": [0, 0]}}, ["future_covariates", "promo", "a"]),
    ({"promo": {"a": [1, None], "b": [0, 0]}}, ["future_covariates", "promo", "a"]),
    ({"promo": {"a": ["x", 1], "b": [0, 0]}}, ["future_covariates", "promo", "a"]),
    ({}, ["future_covariates", "promo"]),
    ({"promo": {"a": [1, 0], "b": [0, 0]}, "temp": {"a": [1, 1]}},
     ["future_covariates", "temp"]),
])
def test_a_missing_or_short_horizon_is_refused_naming_it(raw, loc):
    with pytest.raises(DataError) as caught:
        declare_horizon(raw, ["promo"], ["a", "b"], horizon=2)
    assert caught.value.loc == loc


def _with(name, **change):
    return {**RAW, name: {**RAW[name], **change}}


@pytest.mark.parametrize("raw, loc", [
    (_with("promo", kind="weekly"), ["covariates", "promo", "kind"]),
    (_with("promo", values={"a": [0, 1, 0, 1]}), ["covariates", "promo", "values", "b"]),
    (_with("promo", values={"a": [0, 1, 0], "b": [1, 1, 0]}),
     ["covariates", "promo", "values", "a"]),
    (_with("temp", values={"a": [1, "hot", 2, 3], "b": [5, 6, 7]}),
     ["covariates", "temp", "values", "a"]),
    (_with("size", values={"a": 1, "b": "big"}), ["covariates", "size", "values"]),
    (_with("size", values={"a": True, "b": 2}), ["covariates", "size", "values", "a"]),
    (_with("size", values={"a": 1, "b": 2, "z": 3}), ["covariates", "size", "values", "z"]),
    (_with("size", values=[1, 2]), ["covariates", "size", "values"]),
    ({"size": 3}, ["covariates", "size"]),
])
def test_bad_covariates_are_refused_naming_the_field(raw, loc):
    with pytest.raises(DataError) as caught:
        declare(raw, LENGTHS)
    assert caught.value.loc == loc


def test_a_covariate_the_model_knows_must_be_given_as_the_model_took_it():
    declared, encoder = fitted()
    without = {k: v for k, v in RAW.items() if k != "temp"}
    with pytest.raises(DataError) as caught:
        encode(encoder, declare(without, LENGTHS), LENGTHS)
    assert caught.value.loc == ["covariates", "temp"]
    as_number = _with("region", values={"a": 1, "b": 2})
    with pytest.raises(DataError) as caught:
        encode(encoder, declare(as_number, LENGTHS), LENGTHS)
    assert caught.value.loc == ["covariates", "region"]


def test_the_encoder_survives_the_model_card_as_json():
    declared, encoder = fitted()
    back = Encoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    before, after = encode(encoder, declared, LENGTHS), encode(back, declared, LENGTHS)
    for x, y in zip(before.steps, after.steps, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(before.static, after.static)
    assert back.static_names() == encoder.static_names()


def test_no_covariates_encode_to_empty_columns():
    encoder = fit_encoder(declare(None, LENGTHS), list(LENGTHS))
    encoded = encode(encoder, [], LENGTHS)
    assert [s.shape for s in encoded.steps] == [(4, 0), (3, 0)]
    assert encoded.static.shape == (2, 0)
