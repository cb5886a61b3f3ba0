"""Pieces shared by the cell kernels."""

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def sigmoid(x, one):
    """Logistic function. `one` carries the kernel's dtype so float32 stays float32."""
    return one / (one + np.exp(-x))


@njit(cache=True)
def weight_gradients(x, h0, hs, dgates_i, dgates_h, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh,
                     need_dx):
    """Form the parameter gradients of all steps as single GEMMs, after the time loop."""
    T, B, I = x.shape
    GH = dgates_i.shape[2]
    H = h0.shape[1]
    di = dgates_i.reshape(T * B, GH)
    dh = dgates_h.reshape(T * B, GH)
    tmp_ih = np.empty_like(dw_ih)
    np.dot(di.T, x.reshape(T * B, I), tmp_ih)  # (GH, I)
    dw_ih += tmp_ih
    tmp_hh = np.empty_like(dw_hh)
    np.dot(dgates_h[0].T, h0, tmp_hh)  # step 0 reads the initial state
    dw_hh += tmp_hh
    if T > 1:
        np.dot(dh[B:].T, hs[: T - 1].reshape((T - 1) * B, H), tmp_hh)  # (GH, H)
        dw_hh += tmp_hh
    for r in range(T * B):
        for k in range(GH):
            db_ih[k] += di[r, k]
            db_hh[k] += dh[r, k]
    if need_dx:
        np.dot(di, w_ih, dx.reshape(T * B, I))  # (T*B, GH) @ (GH, I)
