"""Bidirectional and deep (stacked) RNNs built from any of the three cells.

Bidirectional (BRNN): a forward pass and a pass over each sequence reversed
within its length, outputs concatenated on features::

    y_t = [h→_t ; h←_t]                        y: (T, B, 2H)

Deep (DRNN): layer ``l + 1`` reads layer ``l``'s outputs as its ``x``::

    h^(l)_t = cell(h^(l)_{t-1}, h^(l-1)_t),   h^(0)_t = x_t

Final states are stacked on a leading axis: ``(2, B, H)`` for a BRNN
(forward, backward) and ``(L, B, H)`` for a DRNN, as are ``h0``/``c0``.
"""

from __future__ import annotations

import numpy as np

from . import validate
from .recurrent import CellCall, cell_for, cotangents_for, hidden_size


def _stacked_states(cell, n, h0, c0, x, H, axis_name):
    """Per-pass initial states: a list of ``n`` dicts ``{'h0': (B, H) or None, ...}``."""
    B = x.shape[1]
    values = {"h0": h0, "c0": c0}
    if cell.states == ("h",) and c0 is not None:
        raise ValueError("c0 is only used by cell='lstm'")
    names = ["h0", "c0"][: len(cell.states)]
    checked = {k: None if values[k] is None else validate.float_array(k, values[k], (n, B, H), f"({axis_name}, B, H)") for k in names}
    return [{k: None if checked[k] is None else checked[k][j] for k in names} for j in range(n)]


def _bidirectional_calls(cell, x, params_fwd, params_bwd, h0, c0, lengths, variant):
    c = cell_for(cell, variant)
    x = validate.sequence("x", x)
    H = hidden_size(c, params_fwd, "params_fwd")
    validate.params("params_fwd", params_fwd, c.param_shapes(x.shape[2], H))
    states = _stacked_states(c, 2, h0, c0, x, H, "2")
    fwd = CellCall.check(c, x, params_fwd, states[0], lengths, False, "params_fwd")
    bwd = CellCall.check(c, x, params_bwd, states[1], lengths, True, "params_bwd")
    if bwd.p[next(iter(bwd.p))].shape != fwd.p[next(iter(fwd.p))].shape:
        raise ValueError("params_fwd and params_bwd must have the same hidden size H")
    return fwd, bwd


def bidirectional(cell, x, params_fwd, params_bwd, h0=None, c0=None, lengths=None, variant="notes"):
    """Bidirectional RNN: ``y_t = [h→_t ; h←_t]`` with ``h←`` read over each reversed sequence.

    ``cell``: ``"rnn"``, ``"lstm"`` or ``"gru"`` (``variant`` for GRU);
    ``h0, c0: (2, B, H)``. Returns ``(y (T, B, 2H), h_T (2, B, H)[, C_T (2, B, H)])``.
    """
    fwd, bwd = _bidirectional_calls(cell, x, params_fwd, params_bwd, h0, c0, lengths, variant)
    y_f, s_f, _ = fwd.forward()
    y_b, s_b, _ = bwd.forward()
    return (np.concatenate([y_f, y_b], axis=-1), *(np.stack(pair) for pair in zip(s_f, s_b)))


def bidirectional_vjp(cotangents, cell, x, params_fwd, params_bwd, h0=None, c0=None, lengths=None, variant="notes"):
    """Gradients of :func:`bidirectional`: ``{'x', 'h0'[, 'c0'], 'params_fwd', 'params_bwd'}``."""
    fwd, bwd = _bidirectional_calls(cell, x, params_fwd, params_bwd, h0, c0, lengths, variant)
    y_f, s_f, tape_f = fwd.forward()
    y_b, s_b, tape_b = bwd.forward()
    outputs = (np.concatenate([y_f, y_b], axis=-1), *(np.stack(pair) for pair in zip(s_f, s_b)))
    dy, *d_states = cotangents_for(cotangents, outputs)
    H = y_f.shape[-1]
    dx_f, ds0_f, g_f, _ = fwd.vjp(tape_f, dy[..., :H], [d[0] for d in d_states])
    dx_b, ds0_b, g_b, _ = bwd.vjp(tape_b, dy[..., H:], [d[1] for d in d_states])
    grads = {"x": dx_f + dx_b}
    for name, pair in zip(["h0", "c0"], zip(ds0_f, ds0_b)):
        grads[name] = np.stack(pair)
    return {**grads, "params_fwd": g_f, "params_bwd": g_b}


def _stacked_layers(cell, x, params, h0, c0, lengths, reverse, variant):
    """Check a stack: ``params`` is a non-empty list of per-layer parameter dicts."""
    c = cell_for(cell, variant)
    x = validate.sequence("x", x)
    if not isinstance(params, (list, tuple)) or not params:
        raise TypeError("params must be a non-empty list of per-layer parameter dicts (one per layer)")
    H = hidden_size(c, params[0], "params[0]")
    validate.params("params[0]", params[0], c.param_shapes(x.shape[2], H))
    states = _stacked_states(c, len(params), h0, c0, x, H, "L")
    validate.flag("reverse", reverse)
    return c, x, H, states


def _stacked_forward(c, x, params, states, lengths, reverse):
    calls, tapes, finals = [], [], []
    inputs = x
    for layer, (p, s) in enumerate(zip(params, states)):
        call = CellCall.check(c, inputs, p, s, lengths, reverse, f"params[{layer}]", f"layer {layer} input")
        inputs, state_T, tape = call.forward()
        calls.append(call)
        tapes.append(tape)
        finals.append(state_T)
    return inputs, calls, tapes, finals


def stacked(cell, x, params, h0=None, c0=None, lengths=None, reverse=False, variant="notes"):
    """Deep RNN: ``h^(l)_t = cell(h^(l)_{t-1}, h^(l-1)_t)``, ``h^(0)_t = x_t``.

    ``params``: a list of ``L`` per-layer dicts (layer 0 reads ``I`` features,
    the others ``H``); ``h0, c0: (L, B, H)``. Returns ``(y (T, B, H), h_T (L, B, H)[, C_T])``
    with ``y`` the top layer's outputs.
    """
    c, x, H, states = _stacked_layers(cell, x, params, h0, c0, lengths, reverse, variant)
    y, _, _, finals = _stacked_forward(c, x, params, states, lengths, reverse)
    return (y, *(np.stack(per_layer) for per_layer in zip(*finals)))


def stacked_vjp(cotangents, cell, x, params, h0=None, c0=None, lengths=None, reverse=False, variant="notes"):
    """Gradients of :func:`stacked`: ``{'x', 'h0'[, 'c0'], 'params': [per-layer dicts]}``."""
    c, x, H, states = _stacked_layers(cell, x, params, h0, c0, lengths, reverse, variant)
    y, calls, tapes, finals = _stacked_forward(c, x, params, states, lengths, reverse)
    outputs = (y, *(np.stack(per_layer) for per_layer in zip(*finals)))
    dy, *d_states = cotangents_for(cotangents, outputs)
    layer_grads, d_state0 = [None] * len(calls), [None] * len(calls)
    for layer in reversed(range(len(calls))):
        dy, d_state0[layer], layer_grads[layer], _ = calls[layer].vjp(tapes[layer], dy, [d[layer] for d in d_states])
    grads = {"x": dy}
    for k, name in enumerate(["h0", "c0"][: len(c.states)]):
        grads[name] = np.stack([d[k] for d in d_state0])
    return {**grads, "params": layer_grads}
