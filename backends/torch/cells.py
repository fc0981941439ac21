"""The time loop the notes' recurrent cells run in, in PyTorch (the cells: :mod:`~seqbench.backends.cell_equations`).

Same conventions as :mod:`seqbench.reference.scan`: ``x: (T, B, I)``, states
``(B, H)``, ``lengths: (B,)`` (a padded step keeps the state and emits zeros,
a length-0 sequence returns its initial state), ``reverse`` reads each
sequence backwards over its own valid steps. Batches are rows, so the notes'
``W h`` is ``mv(W, h) = h @ W.T``.

The input-side products ``W_*x x_t + b_*`` of all steps are one GEMM before
the time loop; each step adds the recurrent product(s) and does the pointwise
math (see :mod:`~seqbench.backends.cell_equations`). Initial states are tensors here (the
backend turns ``None`` into zeros, so they get gradients too).
:class:`Recurrent` runs the cells eagerly, or, given a ``compile`` wrapper,
runs each masked cell step as one compiled function.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..cell_equations import Cell, cell_key, cells_for, inputs

# the notes' cells, see backends/cell_equations.py
CELLS = cells_for(torch.tanh, torch.sigmoid, torch.cat, lambda a, n: a.chunk(n, dim=-1))


def masked(step: Callable) -> Callable:
    """``step`` on a ragged batch: ``s_t = m_t ? cell(x_t, s_{t-1}) : s_{t-1}``, ``y_t = m_t ? h_t : 0``.

    ``m: (B, 1)`` bool, or ``None`` when every step is valid. Selecting (not
    ``m s' + (1 - m) s``) keeps the state bit-exact and costs one op per state.
    """

    def step_masked(w, xp, state, m):
        new = step(w, xp, state)
        if m is None:
            return new, new[0]
        return tuple(torch.where(m, n, s) for n, s in zip(new, state)), torch.where(m, new[0], 0)

    return step_masked


def reverse_within_lengths(a, lengths):
    """Reverse ``a: (T, B, ...)`` in time, each sequence over its first ``lengths[b]`` steps.

    Padded steps stay where they are; the map is its own inverse.
    """
    if lengths is None:
        return a.flip(0)
    t = torch.arange(a.shape[0], device=a.device)[:, None]  # (T, 1)
    index = torch.where(t < lengths, lengths - 1 - t, t)  # (T, B)
    return a.gather(0, index.reshape(index.shape + (1,) * (a.ndim - 2)).expand_as(a))


def valid_mask(steps: int, lengths, batch: int, device) -> torch.Tensor:
    """``m[t, b] = t < lengths[b]``: ``(T, B, 1)`` bool (all true when ``lengths`` is ``None``)."""
    if lengths is None:
        return torch.ones((steps, batch, 1), dtype=torch.bool, device=device)
    return (torch.arange(steps, device=device)[:, None] < lengths)[..., None]


def scan(cell: Cell, step_masked, p, x, state0: tuple, lengths=None, reverse=False, always_mask=False):
    """Run ``cell`` over ``x: (T, B, I)`` from ``state0``: ``(y (T, B, H), state_T)``.

    The input-side terms of every step come first, in one GEMM; ``step_masked``
    (``cell.step`` under :func:`masked`, maybe compiled) then runs each step.
    """
    if reverse:
        x = reverse_within_lengths(x, lengths)
    T, B = x.shape[:2]
    m = valid_mask(T, lengths, B, x.device) if lengths is not None or always_mask else None
    w = cell.weights(p)
    xp = inputs(w, x)  # (T, B, G·H)
    state, ys = tuple(state0), []
    # unbind: one autograd node for all steps (indexing xp[t] would make each step's
    # backward write a (T, B, G·H) gradient of zeros)
    for t, xp_t in enumerate(xp.unbind(0)):
        state, y_t = step_masked(w, xp_t, state, None if m is None else m[t])
        ys.append(y_t)
    y = torch.stack(ys)  # (T, B, H)
    if reverse:
        y = reverse_within_lengths(y, lengths)
    return y, state


#: The reference's recurrent functions, which :class:`Recurrent` (and the native modules) implement.
RECURRENT = ("rnn", "lstm", "gru", "bidirectional", "stacked")


def state_args(cell: str, h0, c0) -> tuple:
    """The initial states a cell reads: ``(h0,)``, or ``(h0, c0)`` for an LSTM."""
    return (h0, c0) if cell == "lstm" else (h0,)


class Recurrent:
    """The reference's recurrent functions (same names and arguments) over eager or compiled steps.

    ``compile(fn) -> fn`` wraps each masked cell step (``None``: eager). A
    compiled step always gets a mask (all true without ``lengths``), so one
    graph serves ragged and full batches.
    """

    def __init__(self, compile: Callable | None = None):
        wrap = compile or (lambda fn: fn)
        self.steps = {key: wrap(masked(cell.step)) for key, cell in CELLS.items()}
        self.always_mask = compile is not None

    def layer(self, cell, variant, x, params, states, lengths=None, reverse=False):
        """One cell over one sequence: ``(y, state_T)``."""
        key = cell_key(cell, variant)
        return scan(CELLS[key], self.steps[key], params, x, states, lengths, reverse, self.always_mask)

    def rnn(self, x, params, h0, lengths=None, reverse=False):
        """``h_t = tanh(W_h h_{t-1} + W_x x_t + b)`` over a sequence: ``(y, h_T)``."""
        y, state = self.layer("rnn", "notes", x, params, (h0,), lengths, reverse)
        return (y, *state)

    def lstm(self, x, params, h0, c0, lengths=None, reverse=False):
        """The notes' LSTM over a sequence: ``(y, h_T, C_T)``."""
        y, state = self.layer("lstm", "notes", x, params, (h0, c0), lengths, reverse)
        return (y, *state)

    def gru(self, x, params, h0, lengths=None, reverse=False, variant="notes"):
        """A GRU (``variant`` ``"notes"`` or ``"reset_after"``) over a sequence: ``(y, h_T)``."""
        y, state = self.layer("gru", variant, x, params, (h0,), lengths, reverse)
        return (y, *state)

    def bidirectional(self, cell, x, params_fwd, params_bwd, h0, c0=None, lengths=None, variant="notes"):
        """``y_t = [h→_t ; h←_t]``, ``h←`` read over each reversed sequence; states ``(2, B, H)``."""
        s0 = state_args(cell, h0, c0)
        y_f, s_f = self.layer(cell, variant, x, params_fwd, tuple(s[0] for s in s0), lengths, False)
        y_b, s_b = self.layer(cell, variant, x, params_bwd, tuple(s[1] for s in s0), lengths, True)
        return (torch.cat([y_f, y_b], dim=-1), *(torch.stack(pair) for pair in zip(s_f, s_b)))

    def stacked(self, cell, x, params, h0, c0=None, lengths=None, reverse=False, variant="notes"):
        """``h^(l)_t = cell(h^(l)_{t-1}, h^(l-1)_t)``, ``h^(0)_t = x_t``; states ``(L, B, H)``."""
        s0 = state_args(cell, h0, c0)
        finals = []
        for layer, p in enumerate(params):
            x, state = self.layer(cell, variant, x, p, tuple(s[layer] for s in s0), lengths, reverse)
            finals.append(state)
        return (x, *(torch.stack(per_layer) for per_layer in zip(*finals)))

    def functions(self) -> dict:
        """Reference function name -> function."""
        return {name: getattr(self, name) for name in RECURRENT}
