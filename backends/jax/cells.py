"""The time loop the notes' recurrent cells run in, in JAX (the cells: :mod:`~seqbench.backends.cell_equations`).

Same conventions as :mod:`seqbench.reference.scan`: ``x: (T, B, I)``, states
``(B, H)``, ``lengths: (B,)`` (a padded step keeps the state and emits zeros),
``reverse`` reads each sequence backwards over its own valid steps. Batches
are rows, so the notes' ``W h`` is ``mv(W, h) = h @ W.T``.

The input-side products ``W_*x x_t + b_*`` of all steps are one GEMM before
the scan; each step adds the recurrent product(s) and does the pointwise math
(see :mod:`~seqbench.backends.cell_equations`). Initial states are arrays here (the backend
turns ``None`` into zeros, so they get gradients too); every function is
pure, for ``jax.jit``/``jax.vjp``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ..cell_equations import Cell, cell_key, cells_for, inputs

# the notes' cells, see backends/cell_equations.py
CELLS = cells_for(jnp.tanh, jax.nn.sigmoid, jnp.concatenate, lambda a, n: jnp.split(a, n, axis=-1))
# Steps per iteration of the scan's loop. Unrolling 2 took about a tenth off the forward pass on a 2-core CPU
# (notes' GRU and LSTM, T=100 B=64 I=H=256, float32) and left forward+backward as it was, but every compile took
# ~1.5x as long (the conformance suite's stacked and bidirectional jax cases: 112 s -> 169 s): not unrolled.
UNROLL = 1


def cell_for(cell: str, variant: str = "notes") -> tuple[Cell, int]:
    """The :class:`~seqbench.backends.cell_equations.Cell` of ``cell`` (``variant`` picks the GRU) and its number
    of states."""
    return CELLS[cell_key(cell, variant)], 2 if cell == "lstm" else 1


def scan(cell: Cell, p, x, state0: tuple, lengths=None, reverse=False):
    """Run ``cell`` over ``x: (T, B, I)``; returns ``(y (T, B, H), state_T)``.

    The input-side terms ``xp_t`` of every step come first, in one GEMM.
    Each step: ``s_t = m_t ? step(xp_t, s_{t-1}) : s_{t-1}`` and ``y_t = m_t h_t``
    with ``m_t = t < lengths``. ``reverse`` runs the same masked loop from
    ``t = T-1`` down to 0: padded steps come first and keep ``state0``, then
    ``x[L_b-1], …, x[0]`` are read, so each sequence is reversed within its
    own length and ``y`` stays in the original time order. ``reverse`` may be
    a traced flag: the loop then runs over the time-flipped ``x`` and mask and
    flips ``y`` back, so both directions share one compiled program.
    """
    T = x.shape[0]
    valid = None if lengths is None else (jnp.arange(T)[:, None] < lengths)[..., None]  # (T, B, 1)

    def flip(a):
        return None if a is None else jnp.where(reverse, a[::-1], a)

    w = cell.weights(p)
    xp = inputs(w, flip(x))  # (T, B, G·H)

    def body(state, xp_m):
        xp_t, m_t = xp_m
        new = cell.step(w, xp_t, state)
        if m_t is None:
            return new, new[0]
        return tuple(jnp.where(m_t, n, s) for n, s in zip(new, state)), jnp.where(m_t, new[0], 0)

    state_T, y = lax.scan(body, tuple(state0), (xp, flip(valid)), unroll=UNROLL)
    return flip(y), state_T


def _run(cell, x, params, states, lengths, reverse, variant="notes"):
    y, state_T = scan(cell_for(cell, variant)[0], params, x, states, lengths, reverse)
    return (y, *state_T)


def rnn(x, params, h0, lengths=None, reverse=False):
    """``h_t = tanh(W_h h_{t-1} + W_x x_t + b)`` over a sequence: ``(y, h_T)``."""
    return _run("rnn", x, params, (h0,), lengths, reverse)


def lstm(x, params, h0, c0, lengths=None, reverse=False):
    """The LSTM over a sequence: ``(y, h_T, C_T)``."""
    return _run("lstm", x, params, (h0, c0), lengths, reverse)


def gru(x, params, h0, lengths=None, reverse=False, variant="notes"):
    """The GRU (``variant`` ``"notes"`` or ``"reset_after"``) over a sequence: ``(y, h_T)``."""
    return _run("gru", x, params, (h0,), lengths, reverse, variant)


def bidirectional(cell, x, params_fwd, params_bwd, h0, c0=None, lengths=None, variant="notes"):
    """``y_t = [h→_t ; h←_t]`` with ``h←`` read over each reversed sequence; states ``(2, B, H)``."""
    c, n = cell_for(cell, variant)
    states = (h0, c0)[:n]
    y_f, s_f = scan(c, params_fwd, x, tuple(s[0] for s in states), lengths)
    y_b, s_b = scan(c, params_bwd, x, tuple(s[1] for s in states), lengths, reverse=True)
    return (jnp.concatenate([y_f, y_b], axis=-1), *(jnp.stack(pair) for pair in zip(s_f, s_b)))


def stacked(cell, x, params, h0, c0=None, lengths=None, reverse=False, variant="notes"):
    """``h^(l)_t = cell(h^(l)_{t-1}, h^(l-1)_t)``, ``h^(0)_t = x_t``; states ``(L, B, H)``."""
    c, n = cell_for(cell, variant)
    states = (h0, c0)[:n]
    y, finals = x, []
    for layer, p in enumerate(params):  # over layers (static), never over time
        y, state_T = scan(c, p, y, tuple(s[layer] for s in states), lengths, reverse)
        finals.append(state_T)
    return (y, *(jnp.stack(per_layer) for per_layer in zip(*finals)))


#: Reference function name -> function.
FUNCTIONS = {fn.__name__: fn for fn in (rnn, lstm, gru, bidirectional, stacked)}
