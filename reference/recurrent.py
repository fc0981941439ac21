"""The three recurrent cells of the notes run over a sequence, and their gradients.

Shapes (see :mod:`seqbench.reference.scan` for the lengths/reverse rules):
``x: (T, B, I)``, ``h0, c0: (B, H)`` (zeros when ``None``), ``lengths: (B,)``,
``y: (T, B, H)``, ``h_T, C_T: (B, H)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import gru as _gru
from . import lstm as _lstm
from . import rnn as _rnn
from . import validate
from .scan import Cell, scan, scan_vjp

GRU_VARIANTS = tuple(_gru.CELLS)


def cell_for(name: str, variant: str = "notes") -> Cell:
    """The cell called ``name`` (``"rnn"``, ``"lstm"``, ``"gru"``; ``variant`` for GRU)."""
    validate.choice("cell", name, ("rnn", "lstm", "gru"))
    if name == "gru":
        return _gru.CELLS[validate.choice("variant", variant, GRU_VARIANTS)]
    return {"rnn": _rnn.CELL, "lstm": _lstm.CELL}[name]


def hidden_size(cell: Cell, params, name: str = "params") -> int:
    """``H``, read off the first recurrent weight ``(H, H)``; shape errors come later, by name."""
    first = next(iter(cell.param_shapes(1, 1)))
    if isinstance(params, dict) and np.ndim(params.get(first)) >= 1:
        return np.shape(params[first])[0]
    validate.params(name, params, cell.param_shapes(1, 1))  # raises, naming what is wrong
    raise AssertionError("unreachable")


@dataclass
class CellCall:
    """A checked call of one cell over one sequence: everything :func:`scan` needs."""

    cell: Cell
    x: np.ndarray
    p: dict
    state0: tuple
    lengths: np.ndarray | None
    reverse: bool

    @classmethod
    def check(cls, cell, x, params, states, lengths=None, reverse=False, params_name="params", x_name="x"):
        """Check every argument; ``states`` maps the state argument names to values or None."""
        x = validate.sequence(x_name, x)
        T, B, I = x.shape
        H = hidden_size(cell, params, params_name)
        p = validate.params(params_name, params, cell.param_shapes(I, H))
        dtype = validate.common_dtype(x, *p.values())
        state0 = tuple(validate.state(k, v, B, H, dtype) for k, v in states.items())
        dtype = validate.common_dtype(dtype, *state0)
        return cls(
            cell,
            x.astype(dtype, copy=False),
            {k: v.astype(dtype, copy=False) for k, v in p.items()},
            tuple(s.astype(dtype, copy=False) for s in state0),
            validate.lengths(lengths, T, B),
            validate.flag("reverse", reverse),
        )

    def forward(self):
        """``(y, state_T, tape)``."""
        return scan(self.cell, self.p, self.x, self.state0, self.lengths, self.reverse)

    def vjp(self, tape, dy, d_state_T):
        """``(dx, d_state0, d_params, dh)`` given the output cotangents."""
        return scan_vjp(self.cell, self.p, self.x, tape, dy, d_state_T, self.lengths, self.reverse)


def cotangents_for(cotangents, outputs: tuple) -> tuple:
    """Check one cotangent per output (``None`` = zeros), each shaped like its output."""
    if not isinstance(cotangents, (tuple, list)) or len(cotangents) != len(outputs):
        raise ValueError(f"cotangents must be a tuple of {len(outputs)} arrays (one per output), got {cotangents!r:.80}")
    checked = []
    for k, (c, out) in enumerate(zip(cotangents, outputs)):
        if c is None:
            checked.append(np.zeros_like(out))
        else:
            checked.append(validate.float_array(f"cotangents[{k}]", c, out.shape).astype(out.dtype, copy=False))
    return tuple(checked)


def _run(cell, x, params, states, lengths, reverse):
    call = CellCall.check(cell, x, params, states, lengths, reverse)
    y, state_T, _ = call.forward()
    return (y, *state_T)


def _vjp(cell, cotangents, x, params, states, lengths, reverse):
    call = CellCall.check(cell, x, params, states, lengths, reverse)
    y, state_T, tape = call.forward()
    dy, *d_state_T = cotangents_for(cotangents, (y, *state_T))
    dx, d_state0, grads, _ = call.vjp(tape, dy, d_state_T)
    return {"x": dx, **dict(zip(states, d_state0)), "params": grads}


def rnn(x, params, h0=None, lengths=None, reverse=False):
    """Vanilla RNN over a sequence: ``h_t = tanh(W_h h_{t-1} + W_x x_t + b)``.

    ``params``: ``W_h (H, H), W_x (H, I), b (H,)``. Returns ``(y, h_T)``.
    """
    return _run(_rnn.CELL, x, params, {"h0": h0}, lengths, reverse)


def lstm(x, params, h0=None, c0=None, lengths=None, reverse=False):
    """LSTM over a sequence (the notes' six equations, :mod:`seqbench.reference.lstm`)::

        f_t = σ(W_fh h_{t-1} + W_fx x_t + b_f),  i_t = σ(W_ih h_{t-1} + W_ix x_t + b_i)
        o_t = σ(W_oh h_{t-1} + W_ox x_t + b_o),  C~_t = tanh(W_Ch h_{t-1} + W_Cx x_t + b_C)
        C_t = f_t C_{t-1} + i_t C~_t,            h_t = o_t tanh(C_t)

    ``params``: ``W_*h (H, H), W_*x (H, I), b_* (H,)`` for ``* in f, i, o, C``.
    Returns ``(y, h_T, C_T)``.
    """
    return _run(_lstm.CELL, x, params, {"h0": h0, "c0": c0}, lengths, reverse)


def gru(x, params, h0=None, lengths=None, reverse=False, variant="notes"):
    """GRU over a sequence, ``variant`` ``"notes"`` or ``"reset_after"``::

        notes:        h~_t = tanh(W_hh (r_t ⊙ h_{t-1}) + W_hx x_t)
        reset_after:  h~_t = tanh(W_hx x_t + b_hx + r_t ⊙ (W_hh h_{t-1} + b_hh))
        both:         h_t = (1 - z_t) h_{t-1} + z_t h~_t

    (all equations in :mod:`seqbench.reference.gru`). ``params``: ``W_zh, W_zx,
    W_rh, W_rx, W_hh, W_hx``, plus ``b_zx, b_zh, b_rx, b_rh, b_hx, b_hh`` for
    ``reset_after``. Returns ``(y, h_T)``.
    """
    return _run(cell_for("gru", variant), x, params, {"h0": h0}, lengths, reverse)


def rnn_vjp(cotangents, x, params, h0=None, lengths=None, reverse=False):
    """Gradients of :func:`rnn` (BPTT): ``{'x', 'h0', 'params'}`` given ``(dy, dh_T)``."""
    return _vjp(_rnn.CELL, cotangents, x, params, {"h0": h0}, lengths, reverse)


def lstm_vjp(cotangents, x, params, h0=None, c0=None, lengths=None, reverse=False):
    """Gradients of :func:`lstm` (BPTT): ``{'x', 'h0', 'c0', 'params'}`` given ``(dy, dh_T, dC_T)``."""
    return _vjp(_lstm.CELL, cotangents, x, params, {"h0": h0, "c0": c0}, lengths, reverse)


def gru_vjp(cotangents, x, params, h0=None, lengths=None, reverse=False, variant="notes"):
    """Gradients of :func:`gru` (BPTT): ``{'x', 'h0', 'params'}`` given ``(dy, dh_T)``."""
    return _vjp(cell_for("gru", variant), cotangents, x, params, {"h0": h0}, lengths, reverse)
