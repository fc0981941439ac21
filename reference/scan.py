"""The time loop every recurrent cell runs in, and its backward (BPTT).

Conventions of the whole reference, stated once:

* sequences are time-major: ``x: (T, B, I)``; states ``h, C: (B, H)``;
  outputs ``y: (T, B, H)``;
* ``lengths: (B,)`` makes a ragged batch: step ``t`` of sequence ``b`` is valid
  iff ``t < lengths[b]``. A padded step keeps the state and emits zeros in
  ``y``; a length-0 sequence returns its initial state;
* ``reverse=True`` reads each sequence backwards over its own valid steps
  (``x[L_b-1], ..., x[0]``) and returns ``y`` in the original time order.

A cell is a pair of step functions: ``step(p, x_t, state) -> (state_t, cache)``
and ``step_vjp(p, cache, d_state_t) -> (d_state_{t-1}, dx_t, d_params)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Cell:
    name: str
    step: Callable
    step_vjp: Callable
    param_shapes: Callable  # (I, H) -> {name: shape}
    states: tuple  # state names; the first is h, the output


def reverse_within_lengths(a: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Reverse ``a: (T, B, ...)`` in time, each sequence over its first ``lengths[b]`` steps.

    Padded steps stay where they are. The map is its own inverse, so it also
    carries gradients back.
    """
    if lengths is None:
        return a[::-1]
    t = np.arange(a.shape[0])[:, None]  # (T, 1)
    index = np.where(t < lengths, lengths - 1 - t, t)  # (T, B)
    return np.take_along_axis(a, index.reshape(index.shape + (1,) * (a.ndim - 2)), axis=0)


def valid_mask(steps: int, lengths: np.ndarray | None, batch: int, dtype) -> np.ndarray:
    """``m[t, b] = 1`` where step ``t`` of sequence ``b`` is valid: ``(T, B, 1)``."""
    if lengths is None:
        return np.ones((steps, batch, 1), dtype=dtype)
    return (np.arange(steps)[:, None] < lengths)[..., None].astype(dtype)


@dataclass
class Tape:
    """What the forward pass keeps for the backward pass."""

    caches: list
    mask: np.ndarray  # (T, B, 1)


def scan(cell: Cell, p: dict, x: np.ndarray, state0: tuple, lengths=None, reverse=False):
    """Run ``cell`` over ``x: (T, B, I)`` from ``state0``; returns ``(y, state_T, tape)``.

    For each step: ``s_t = m_t ⊙ cell(x_t, s_{t-1}) + (1 - m_t) ⊙ s_{t-1}`` and
    ``y_t = m_t ⊙ h_t``, with ``m_t`` the valid-step mask.
    """
    if reverse:
        x = reverse_within_lengths(x, lengths)
    T, B = x.shape[:2]
    m = valid_mask(T, lengths, B, x.dtype)
    state, ys, caches = tuple(state0), [], []
    for t in range(T):
        new, cache = cell.step(p, x[t], state)
        state = tuple(m[t] * n + (1 - m[t]) * s for n, s in zip(new, state))
        ys.append(m[t] * new[0])
        caches.append(cache)
    y = np.stack(ys)  # (T, B, H)
    if reverse:
        y = reverse_within_lengths(y, lengths)
    return y, state, Tape(caches, m)


def scan_vjp(cell: Cell, p: dict, x: np.ndarray, tape: Tape, dy, d_state_T, lengths=None, reverse=False):
    """Backpropagation through time for :func:`scan`.

    Given ``dy = dL/dy (T, B, H)`` and ``d_state_T = dL/ds_T``, returns
    ``(dx, d_state0, d_params, dh)`` where ``dh[t] = dL/dh_t (T, B, H)`` is the
    gradient reaching the hidden state of step ``t`` (zero on padded steps),
    the quantity of the vanishing/exploding-gradient diagnostic.
    """
    if reverse:
        dy = reverse_within_lengths(dy, lengths)
    m = tape.mask
    T = len(tape.caches)
    ds = list(d_state_T)
    dx = np.zeros_like(x)
    dh = np.zeros_like(dy)
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    for t in reversed(range(T)):
        d_new = [m[t] * d for d in ds]
        d_new[0] = d_new[0] + m[t] * dy[t]
        dh[t] = d_new[0]
        d_prev, dx[t], g = cell.step_vjp(p, tape.caches[t], tuple(d_new))
        ds = [(1 - m[t]) * d + dp for d, dp in zip(ds, d_prev)]
        for k in grads:
            grads[k] += g[k]
    if reverse:
        dx = reverse_within_lengths(dx, lengths)
        dh = reverse_within_lengths(dh, lengths)
    return dx, tuple(ds), grads, dh
