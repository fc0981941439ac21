"""The notes' recurrent cells, one line per equation, written once for every array framework.

A cell is split where its work splits. Every gate's pre-activation is a sum
``W_*h h_{t-1} + W_*x x_t + b_*``; the input-side terms do not depend on the
state, so they are computed for all ``T`` steps before the time loop, in one
GEMM over the ``T·B`` rows (the gates' ``W_*x`` stacked), and each step only
adds the recurrent product(s) and does the pointwise math:

    w  = cell.weights(p)       the gates' matrices stacked, once per sequence
    xp = inputs(w, x)          (T, B, G·H): W_*x x_t + b_* of every gate and step
    for t:  state = cell.step(w, xp[t], state)

Each step takes the framework's math ``m`` (``m.tanh``, ``m.sigmoid``,
``m.cat``, ``m.gates``), the stacked weights ``w``, ``xp_t: (B, G·H)`` and the state tuple,
and returns the new state tuple (``(h,)``, or ``(h, C)`` for the LSTM).
Batches are rows, so the notes' ``W h`` is ``mv(W, h) = h @ W.T``. The
framework backends bind ``m`` with :func:`cells_for` and run the steps in
their own time loops; the NumPy reference keeps its own copy, one line per
equation with every product inside the step, beside its hand-written
backward passes.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Callable, NamedTuple


def mv(W, v):
    """``W v`` for every row ``v`` of a batch: ``(..., n) -> (..., m)`` for ``W: (m, n)``."""
    return v @ W.T


def inputs(w, x):
    """``W_*x x_t + b_*`` of every gate and every step at once: ``x: (T, B, I) -> (T, B, G·H)``, one GEMM."""
    xp = mv(w["W_x"], x)
    return xp if w["b"] is None else xp + w["b"]


# --- RNN ----------------------------------------------------------------------------


def rnn_weights(m, p):
    """``W_x``, ``b`` and ``W_h`` as they are (one gate)."""
    return {"W_x": p["W_x"], "b": p["b"], "W_h": p["W_h"]}


def rnn_step(m, w, xp, state):
    """``h_t = tanh(W_h h_{t-1} + W_x x_t + b)``, ``xp = W_x x_t + b``."""
    (h_prev,) = state
    h = m.tanh(mv(w["W_h"], h_prev) + xp)
    return (h,)


# --- LSTM ---------------------------------------------------------------------------


def lstm_weights(m, p):
    """The four gates' matrices stacked in the order ``f, i, o, C̃``: ``W_x (4H, I)``, ``b (4H,)``, ``W_h (4H, H)``."""
    order = ("f", "i", "o", "C")
    return {
        "W_x": m.cat([p[f"W_{g}x"] for g in order]),
        "b": m.cat([p[f"b_{g}"] for g in order]),
        "W_h": m.cat([p[f"W_{g}h"] for g in order]),
    }


def lstm_step(m, w, xp, state):
    """The notes' six LSTM equations::

        f_t = σ(W_fh h_{t-1} + W_fx x_t + b_f)
        i_t = σ(W_ih h_{t-1} + W_ix x_t + b_i)
        o_t = σ(W_oh h_{t-1} + W_ox x_t + b_o)
        C̃_t = tanh(W_Ch h_{t-1} + W_Cx x_t + b_C)
        C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
        h_t = o_t ⊙ tanh(C_t)

    with ``xp`` holding ``W_*x x_t + b_*`` of ``f, i, o, C̃``, one GEMM for the four ``W_*h h_{t-1}``
    and one add for the four sums.
    """
    h_prev, C_prev = state
    f_a, i_a, o_a, C_a = m.gates(mv(w["W_h"], h_prev) + xp, 4)  # W_*h h_{t-1} + W_*x x_t + b_*: (B, H) each
    f = m.sigmoid(f_a)
    i = m.sigmoid(i_a)
    o = m.sigmoid(o_a)
    C_tilde = m.tanh(C_a)
    C = f * C_prev + i * C_tilde
    h = o * m.tanh(C)
    return (h, C)


# --- GRU, the notes' ----------------------------------------------------------------


def gru_weights(m, p):
    """``W_x = [W_zx; W_rx; W_hx]``, ``W_h = [W_zh; W_rh]`` (one GEMM for ``z`` and ``r``) and ``W_hh`` apart:
    it multiplies ``r ⊙ h_{t-1}``, known only after ``r``. No biases."""
    return {
        "W_x": m.cat([p["W_zx"], p["W_rx"], p["W_hx"]]),
        "b": None,
        "W_h": m.cat([p["W_zh"], p["W_rh"]]),
        "W_hh": p["W_hh"],
    }


def gru_step(m, w, xp, state):
    """The notes' GRU (no biases, reset applied to ``h_{t-1}`` before the matmul)::

        z_t = σ(W_zh h_{t-1} + W_zx x_t)
        r_t = σ(W_rh h_{t-1} + W_rx x_t)
        h̃_t = tanh(W_hh (r_t ⊙ h_{t-1}) + W_hx x_t)
        h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t

    with ``xp`` holding ``W_zx x_t, W_rx x_t, W_hx x_t``, one GEMM for ``W_zh h_{t-1}, W_rh h_{t-1}``.
    """
    (h_prev,) = state
    H = h_prev.shape[-1]
    z_a, r_a = m.gates(mv(w["W_h"], h_prev) + xp[..., :2 * H], 2)  # W_*h h_{t-1} + W_*x x_t of z, r
    z = m.sigmoid(z_a)
    r = m.sigmoid(r_a)
    h_tilde = m.tanh(mv(w["W_hh"], r * h_prev) + xp[..., 2 * H:])
    h = (1 - z) * h_prev + z * h_tilde
    return (h,)


# --- GRU, variant reset_after (cuDNN/PyTorch) -------------------------------------------


def gru_reset_after_weights(m, p):
    """``W_x = [W_zx; W_rx; W_hx]``, ``b = [b_zx; b_rx; b_hx]``, and the same for the ``W_*h``, ``b_*h``
    (``r`` applies after the matmul, so one GEMM covers all three ``W_*h h_{t-1}``)."""
    order = ("z", "r", "h")
    return {
        "W_x": m.cat([p[f"W_{g}x"] for g in order]),
        "b": m.cat([p[f"b_{g}x"] for g in order]),
        "W_h": m.cat([p[f"W_{g}h"] for g in order]),
        "b_h": m.cat([p[f"b_{g}h"] for g in order]),
    }


def gru_reset_after_step(m, w, xp, state):
    """GRU variant ``reset_after`` (cuDNN/PyTorch), in the notes' ``z`` convention::

        z_t = σ(W_zx x_t + b_zx + W_zh h_{t-1} + b_zh)
        r_t = σ(W_rx x_t + b_rx + W_rh h_{t-1} + b_rh)
        h̃_t = tanh(W_hx x_t + b_hx + r_t ⊙ (W_hh h_{t-1} + b_hh))
        h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t

    with ``xp`` holding ``W_*x x_t + b_*x`` of ``z, r, h̃``.
    """
    (h_prev,) = state
    zh, rh, hh = m.gates(mv(w["W_h"], h_prev) + w["b_h"], 3)
    zx, rx, hx = m.gates(xp, 3)
    z = m.sigmoid(zx + zh)
    r = m.sigmoid(rx + rh)
    h_tilde = m.tanh(hx + r * hh)
    h = (1 - z) * h_prev + z * h_tilde
    return (h,)


class Cell(NamedTuple):
    """A cell bound to one framework: ``weights(p) -> w`` (once per sequence), ``step(w, xp_t, state) -> state``."""

    weights: Callable
    step: Callable


_CELLS = {
    ("rnn", "notes"): (rnn_weights, rnn_step),
    ("lstm", "notes"): (lstm_weights, lstm_step),
    ("gru", "notes"): (gru_weights, gru_step),
    ("gru", "reset_after"): (gru_reset_after_weights, gru_reset_after_step),
}


def cell_key(cell: str, variant: str = "notes") -> tuple[str, str]:
    """The key of ``cell`` in :func:`cells_for`'s dict (``variant`` only distinguishes GRUs)."""
    return (cell, variant if cell == "gru" else "notes")


def cells_for(tanh, sigmoid, cat, gates) -> dict:
    """The four cells bound to one framework's math, keyed ``(cell, variant)``.

    ``cat(matrices)`` joins matrices along their first axis; ``gates(a, n)``
    splits stacked pre-activations ``a: (..., n·H)`` into the ``n`` gates'
    ``(..., H)``, in stacking order (one op, so one node for autograd).
    """
    m = SimpleNamespace(tanh=tanh, sigmoid=sigmoid, cat=cat, gates=gates)
    return {key: Cell(partial(weights, m), partial(step, m)) for key, (weights, step) in _CELLS.items()}
