"""The notes' recurrent cells, one line per equation, written once for every array framework.

Each step takes the framework's math ``m`` (``m.tanh``, ``m.sigmoid``), the
parameters ``p`` under the notes' names, ``x_t: (B, I)`` and the state tuple,
and returns the new state tuple (``(h,)``, or ``(h, C)`` for the LSTM).
Batches are rows, so the notes' ``W h`` is ``mv(W, h) = h @ W.T``. The
framework backends bind ``m`` with :func:`steps_for` and run the steps in
their own time loops; the NumPy reference keeps its own copy beside its
hand-written backward passes.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace


def mv(W, v):
    """``W v`` for every row ``v`` of a batch: ``(B, n) -> (B, m)`` for ``W: (m, n)``."""
    return v @ W.T


def rnn_step(m, p, x, state):
    """``h_t = tanh(W_h h_{t-1} + W_x x_t + b)``."""
    (h_prev,) = state
    h = m.tanh(mv(p["W_h"], h_prev) + mv(p["W_x"], x) + p["b"])
    return (h,)


def lstm_step(m, p, x, state):
    """The notes' six LSTM equations."""
    h_prev, C_prev = state
    f = m.sigmoid(mv(p["W_fh"], h_prev) + mv(p["W_fx"], x) + p["b_f"])
    i = m.sigmoid(mv(p["W_ih"], h_prev) + mv(p["W_ix"], x) + p["b_i"])
    o = m.sigmoid(mv(p["W_oh"], h_prev) + mv(p["W_ox"], x) + p["b_o"])
    C_tilde = m.tanh(mv(p["W_Ch"], h_prev) + mv(p["W_Cx"], x) + p["b_C"])
    C = f * C_prev + i * C_tilde
    h = o * m.tanh(C)
    return (h, C)


def gru_step(m, p, x, state):
    """The notes' GRU (no biases, reset applied to ``h_{t-1}`` before the matmul)."""
    (h_prev,) = state
    z = m.sigmoid(mv(p["W_zh"], h_prev) + mv(p["W_zx"], x))
    r = m.sigmoid(mv(p["W_rh"], h_prev) + mv(p["W_rx"], x))
    h_tilde = m.tanh(mv(p["W_hh"], r * h_prev) + mv(p["W_hx"], x))
    h = (1 - z) * h_prev + z * h_tilde
    return (h,)


def gru_reset_after_step(m, p, x, state):
    """GRU variant ``reset_after`` (cuDNN/PyTorch), in the notes' ``z`` convention."""
    (h_prev,) = state
    z = m.sigmoid(mv(p["W_zx"], x) + p["b_zx"] + mv(p["W_zh"], h_prev) + p["b_zh"])
    r = m.sigmoid(mv(p["W_rx"], x) + p["b_rx"] + mv(p["W_rh"], h_prev) + p["b_rh"])
    h_tilde = m.tanh(mv(p["W_hx"], x) + p["b_hx"] + r * (mv(p["W_hh"], h_prev) + p["b_hh"]))
    h = (1 - z) * h_prev + z * h_tilde
    return (h,)


_STEPS = {
    ("rnn", "notes"): rnn_step,
    ("lstm", "notes"): lstm_step,
    ("gru", "notes"): gru_step,
    ("gru", "reset_after"): gru_reset_after_step,
}


def steps_for(tanh, sigmoid) -> dict:
    """The four step functions ``step(p, x_t, state)`` bound to one framework's math,
    keyed ``(cell, variant)``."""
    m = SimpleNamespace(tanh=tanh, sigmoid=sigmoid)
    return {key: partial(step, m) for key, step in _STEPS.items()}
