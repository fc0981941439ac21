"""The vanilla RNN cell of the notes: ``h_t = tanh(W_h h_{t-1} + W_x x_t + b)``."""

import numpy as np

from .primitives import mv, outer_sum
from .scan import Cell


def step(p, x, state):
    """One step: ``h_t = tanh(W_h h_{t-1} + W_x x_t + b)``; ``x: (B, I)``, ``h: (B, H)``."""
    (h_prev,) = state
    h = np.tanh(mv(p["W_h"], h_prev) + mv(p["W_x"], x) + p["b"])
    return (h,), (h_prev, x, h)


def step_vjp(p, cache, d_state):
    """Backward of :func:`step`, line by line: ``da = dh (1 - h²)``."""
    h_prev, x, h = cache
    (dh,) = d_state
    da = dh * (1 - h**2)
    grads = {"W_h": outer_sum(da, h_prev), "W_x": outer_sum(da, x), "b": da.sum(0)}
    return (da @ p["W_h"],), da @ p["W_x"], grads


def param_shapes(I, H):
    return {"W_h": (H, H), "W_x": (H, I), "b": (H,)}


CELL = Cell("rnn", step, step_vjp, param_shapes, states=("h",))
