"""The ensemble's median (Model.predict_scaled) is np.median's, to the bit, NaN included."""

import numpy as np
import pytest

from bptt.model import members_median


@pytest.mark.parametrize("count", [2, 3, 4, 5, 7, 9])
def test_members_median_is_numpys_median(count):
    rng = np.random.default_rng(count)
    for trial in range(60):
        outputs = [rng.normal(size=(40, 6)).astype(np.float32) for _ in range(count)]
        for out in outputs[1:]:  # ties between members
            same = rng.random(out.shape) < 0.3
            out[same] = outputs[0][same]
        if trial % 3 == 0:  # a member that gave NaN somewhere
            for out in outputs:
                out[rng.random(out.shape) < 0.05] = np.nan
        with np.errstate(invalid="ignore"):
            expected = np.median(outputs, axis=0)
        got = members_median(outputs)
        assert got.dtype == expected.dtype
        assert np.array_equal(got, expected, equal_nan=True)


def test_members_median_leaves_the_outputs_alone():
    outputs = [np.array([[3.0, 1.0]], np.float32), np.array([[1.0, 2.0]], np.float32),
               np.array([[2.0, 3.0]], np.float32)]
    copies = [out.copy() for out in outputs]
    assert members_median(outputs).tolist() == [[2.0, 2.0]]
    assert all(np.array_equal(a, b) for a, b in zip(outputs, copies, strict=True))
