"""The GRU cell, in two named variants.

``notes`` — the notes' equations as written (no biases, reset before the matmul):

    z_t = σ(W_zh h_{t-1} + W_zx x_t)
    r_t = σ(W_rh h_{t-1} + W_rx x_t)
    h~_t = tanh(W_hh (r_t ⊙ h_{t-1}) + W_hx x_t)
    h_t = (1 - z_t) h_{t-1} + z_t h~_t

``reset_after`` — what cuDNN, PyTorch ``nn.GRU`` and Keras (``reset_after=True``)
compute, written in the notes' ``z`` convention (their update gate is ``1 - z``):

    z_t = σ(W_zx x_t + b_zx + W_zh h_{t-1} + b_zh)
    r_t = σ(W_rx x_t + b_rx + W_rh h_{t-1} + b_rh)
    h~_t = tanh(W_hx x_t + b_hx + r_t ⊙ (W_hh h_{t-1} + b_hh))
    h_t = (1 - z_t) h_{t-1} + z_t h~_t

The two are different functions: a backend that computes one must never be
reported as computing the other.
"""

import numpy as np

from .primitives import mv, outer_sum, sigmoid
from .scan import Cell


def step_notes(p, x, state):
    """One step of the ``notes`` variant (equations in the module docstring)."""
    (h_prev,) = state
    z = sigmoid(mv(p["W_zh"], h_prev) + mv(p["W_zx"], x))
    r = sigmoid(mv(p["W_rh"], h_prev) + mv(p["W_rx"], x))
    h_tilde = np.tanh(mv(p["W_hh"], r * h_prev) + mv(p["W_hx"], x))
    h = (1 - z) * h_prev + z * h_tilde
    return (h,), (h_prev, x, z, r, h_tilde)


def step_notes_vjp(p, cache, d_state):
    """Backward of :func:`step_notes`, the equations read bottom-up."""
    h_prev, x, z, r, h_tilde = cache
    (dh,) = d_state
    dz = dh * (h_tilde - h_prev)
    dh_tilde = dh * z
    dh_prev = dh * (1 - z)
    da_h = dh_tilde * (1 - h_tilde**2)
    d_rh = da_h @ p["W_hh"]
    dr = d_rh * h_prev
    dh_prev += d_rh * r
    da_r = dr * r * (1 - r)
    da_z = dz * z * (1 - z)
    dh_prev += da_z @ p["W_zh"] + da_r @ p["W_rh"]
    dx = da_z @ p["W_zx"] + da_r @ p["W_rx"] + da_h @ p["W_hx"]
    grads = {
        "W_zh": outer_sum(da_z, h_prev),
        "W_zx": outer_sum(da_z, x),
        "W_rh": outer_sum(da_r, h_prev),
        "W_rx": outer_sum(da_r, x),
        "W_hh": outer_sum(da_h, r * h_prev),
        "W_hx": outer_sum(da_h, x),
    }
    return (dh_prev,), dx, grads


def step_reset_after(p, x, state):
    """One step of the ``reset_after`` variant (equations in the module docstring)."""
    (h_prev,) = state
    z = sigmoid(mv(p["W_zx"], x) + p["b_zx"] + mv(p["W_zh"], h_prev) + p["b_zh"])
    r = sigmoid(mv(p["W_rx"], x) + p["b_rx"] + mv(p["W_rh"], h_prev) + p["b_rh"])
    n = mv(p["W_hh"], h_prev) + p["b_hh"]
    h_tilde = np.tanh(mv(p["W_hx"], x) + p["b_hx"] + r * n)
    h = (1 - z) * h_prev + z * h_tilde
    return (h,), (h_prev, x, z, r, n, h_tilde)


def step_reset_after_vjp(p, cache, d_state):
    """Backward of :func:`step_reset_after`, the equations read bottom-up."""
    h_prev, x, z, r, n, h_tilde = cache
    (dh,) = d_state
    dz = dh * (h_tilde - h_prev)
    dh_tilde = dh * z
    dh_prev = dh * (1 - z)
    da_h = dh_tilde * (1 - h_tilde**2)
    dn = da_h * r
    dr = da_h * n
    da_r = dr * r * (1 - r)
    da_z = dz * z * (1 - z)
    dh_prev += dn @ p["W_hh"] + da_z @ p["W_zh"] + da_r @ p["W_rh"]
    dx = da_z @ p["W_zx"] + da_r @ p["W_rx"] + da_h @ p["W_hx"]
    grads = {
        "W_zh": outer_sum(da_z, h_prev), "W_zx": outer_sum(da_z, x),
        "b_zx": da_z.sum(0), "b_zh": da_z.sum(0),
        "W_rh": outer_sum(da_r, h_prev), "W_rx": outer_sum(da_r, x),
        "b_rx": da_r.sum(0), "b_rh": da_r.sum(0),
        "W_hh": outer_sum(dn, h_prev), "W_hx": outer_sum(da_h, x),
        "b_hx": da_h.sum(0), "b_hh": dn.sum(0),
    }
    return (dh_prev,), dx, grads


def notes_shapes(I, H):
    return {"W_zh": (H, H), "W_zx": (H, I), "W_rh": (H, H), "W_rx": (H, I), "W_hh": (H, H), "W_hx": (H, I)}


def reset_after_shapes(I, H):
    shapes = {}
    for g in ("z", "r", "h"):
        shapes.update({f"W_{g}h": (H, H), f"W_{g}x": (H, I), f"b_{g}x": (H,), f"b_{g}h": (H,)})
    return shapes


CELLS = {
    "notes": Cell("gru", step_notes, step_notes_vjp, notes_shapes, states=("h",)),
    "reset_after": Cell("gru", step_reset_after, step_reset_after_vjp, reset_after_shapes, states=("h",)),
}
