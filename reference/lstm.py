"""The LSTM cell of the notes.

    f_t = σ(W_fh h_{t-1} + W_fx x_t + b_f)
    i_t = σ(W_ih h_{t-1} + W_ix x_t + b_i)
    o_t = σ(W_oh h_{t-1} + W_ox x_t + b_o)
    C~_t = tanh(W_Ch h_{t-1} + W_Cx x_t + b_C)
    C_t = f_t C_{t-1} + i_t C~_t
    h_t = o_t tanh(C_t)
"""

import numpy as np

from .primitives import mv, outer_sum, sigmoid
from .scan import Cell

GATES = ("f", "i", "o", "C")


def step(p, x, state):
    """One step of the six equations above; ``x: (B, I)``, ``h, C: (B, H)``."""
    h_prev, C_prev = state
    f = sigmoid(mv(p["W_fh"], h_prev) + mv(p["W_fx"], x) + p["b_f"])
    i = sigmoid(mv(p["W_ih"], h_prev) + mv(p["W_ix"], x) + p["b_i"])
    o = sigmoid(mv(p["W_oh"], h_prev) + mv(p["W_ox"], x) + p["b_o"])
    C_tilde = np.tanh(mv(p["W_Ch"], h_prev) + mv(p["W_Cx"], x) + p["b_C"])
    C = f * C_prev + i * C_tilde
    tanh_C = np.tanh(C)
    h = o * tanh_C
    return (h, C), (h_prev, C_prev, x, f, i, o, C_tilde, tanh_C)


def step_vjp(p, cache, d_state):
    """Backward of :func:`step`, the equations read bottom-up."""
    h_prev, C_prev, x, f, i, o, C_tilde, tanh_C = cache
    dh, dC = d_state
    do = dh * tanh_C
    dC = dC + dh * o * (1 - tanh_C**2)
    df = dC * C_prev
    di = dC * C_tilde
    dC_tilde = dC * i
    dC_prev = dC * f
    da = {
        "f": df * f * (1 - f),
        "i": di * i * (1 - i),
        "o": do * o * (1 - o),
        "C": dC_tilde * (1 - C_tilde**2),
    }
    grads = {}
    dh_prev = np.zeros_like(h_prev)
    dx = np.zeros_like(x)
    for g in GATES:
        grads[f"W_{g}h"] = outer_sum(da[g], h_prev)
        grads[f"W_{g}x"] = outer_sum(da[g], x)
        grads[f"b_{g}"] = da[g].sum(0)
        dh_prev += da[g] @ p[f"W_{g}h"]
        dx += da[g] @ p[f"W_{g}x"]
    return (dh_prev, dC_prev), dx, grads


def param_shapes(I, H):
    shapes = {}
    for g in GATES:
        shapes.update({f"W_{g}h": (H, H), f"W_{g}x": (H, I), f"b_{g}": (H,)})
    return shapes


CELL = Cell("lstm", step, step_vjp, param_shapes, states=("h", "C"))
