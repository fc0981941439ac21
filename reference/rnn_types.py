"""The notes' five types of RNN, as compositions of a cell.

* one-to-one (a traditional network): one input, one step from the zero state;
* one-to-many (generation): the readout of each step is fed back as the next input;
* many-to-one (classification): the last valid state;
* many-to-many, equal lengths (tagging): every step's output;
* many-to-many, unequal lengths (translation): an encoder reads the source, a
  decoder starts from its final state(s) and reads the (teacher-forced) target.

``cell`` is ``"rnn"``, ``"lstm"`` or ``"gru"`` (``variant`` for GRU); states
and shapes follow :mod:`seqbench.reference.recurrent`.
"""

from __future__ import annotations

import numpy as np

from . import validate
from .primitives import mv, outer_sum
from .recurrent import CellCall, cell_for, cotangents_for, hidden_size


def _states(c):
    return {name: None for name in ("h0", "c0")[: len(c.states)]}


def one_to_one(cell, x, params, variant="notes"):
    """``h = cell(0, x)``: one step from the zero state; ``x: (B, I) -> h: (B, H)``."""
    x = validate.float_array("x", x, (None, None), "(B, I)")
    c = cell_for(cell, variant)
    _, state, _ = CellCall.check(c, x[None], params, _states(c)).forward()
    return state[0]


def one_to_one_vjp(cotangents, cell, x, params, variant="notes"):
    """Gradients of :func:`one_to_one`: ``{'x', 'params'}`` given ``dh``."""
    x = validate.float_array("x", x, (None, None), "(B, I)")
    c = cell_for(cell, variant)
    call = CellCall.check(c, x[None], params, _states(c))
    y, state, tape = call.forward()
    (dh,) = cotangents_for(cotangents, (state[0],))
    dx, _, grads, _ = call.vjp(tape, np.zeros_like(y), [dh] + [np.zeros_like(s) for s in state[1:]])
    return {"x": dx[0], "params": grads}


def many_to_one(cell, x, params, lengths=None, variant="notes"):
    """The last valid hidden state ``h_{L_b}`` of each sequence: ``(B, H)``."""
    c = cell_for(cell, variant)
    _, state, _ = CellCall.check(c, x, params, _states(c), lengths).forward()
    return state[0]


def many_to_one_vjp(cotangents, cell, x, params, lengths=None, variant="notes"):
    """Gradients of :func:`many_to_one`: ``{'x', 'params'}`` given ``dh``."""
    c = cell_for(cell, variant)
    call = CellCall.check(c, x, params, _states(c), lengths)
    y, state, tape = call.forward()
    (dh,) = cotangents_for(cotangents, (state[0],))
    dx, _, grads, _ = call.vjp(tape, np.zeros_like(y), [dh] + [np.zeros_like(s) for s in state[1:]])
    return {"x": dx, "params": grads}


def many_to_many(cell, x, params, lengths=None, variant="notes"):
    """Every step's output ``y: (T, B, H)`` (zeros on padded steps)."""
    c = cell_for(cell, variant)
    y, _, _ = CellCall.check(c, x, params, _states(c), lengths).forward()
    return y


def many_to_many_vjp(cotangents, cell, x, params, lengths=None, variant="notes"):
    """Gradients of :func:`many_to_many`: ``{'x', 'params'}`` given ``dy``."""
    c = cell_for(cell, variant)
    call = CellCall.check(c, x, params, _states(c), lengths)
    y, state, tape = call.forward()
    (dy,) = cotangents_for(cotangents, (y,))
    dx, _, grads, _ = call.vjp(tape, dy, [np.zeros_like(s) for s in state])
    return {"x": dx, "params": grads}


def _encoder_decoder_calls(cell, x, x_dec, params_enc, params_dec, lengths, lengths_dec, variant):
    c = cell_for(cell, variant)
    encoder = CellCall.check(c, x, params_enc, _states(c), lengths, params_name="params_enc")
    _, state, tape = encoder.forward()
    decoder = CellCall.check(
        c, x_dec, params_dec, dict(zip(_states(c), state)), lengths_dec, params_name="params_dec", x_name="x_dec"
    )
    if x_dec.shape[1] != encoder.x.shape[1]:
        raise ValueError(f"x_dec must have the same batch size B = {encoder.x.shape[1]} as x, got {x_dec.shape[1]}")
    return encoder, tape, decoder


def encoder_decoder(cell, x, x_dec, params_enc, params_dec, lengths=None, lengths_dec=None, variant="notes"):
    """Many-to-many with unequal lengths: ``s_enc = encoder(x)``, ``y = decoder(x_dec, s0 = s_enc)``.

    ``x: (T, B, I)``, ``x_dec: (T', B, I')``; returns the decoder outputs ``(T', B, H)``.
    """
    _, _, decoder = _encoder_decoder_calls(cell, x, x_dec, params_enc, params_dec, lengths, lengths_dec, variant)
    y, _, _ = decoder.forward()
    return y


def encoder_decoder_vjp(
    cotangents, cell, x, x_dec, params_enc, params_dec, lengths=None, lengths_dec=None, variant="notes"
):
    """Gradients of :func:`encoder_decoder`: ``{'x', 'x_dec', 'params_enc', 'params_dec'}``."""
    encoder, enc_tape, decoder = _encoder_decoder_calls(
        cell, x, x_dec, params_enc, params_dec, lengths, lengths_dec, variant
    )
    y, state, dec_tape = decoder.forward()
    (dy,) = cotangents_for(cotangents, (y,))
    dx_dec, d_enc_state, g_dec, _ = decoder.vjp(dec_tape, dy, [np.zeros_like(s) for s in state])
    enc_y = np.zeros(encoder.x.shape[:2] + (state[0].shape[-1],), dtype=y.dtype)
    dx, _, g_enc, _ = encoder.vjp(enc_tape, enc_y, d_enc_state)
    return {"x": dx, "x_dec": dx_dec, "params_enc": g_enc, "params_dec": g_dec}


def _one_to_many_check(cell, x, params, readout, steps, variant):
    x = validate.float_array("x", x, (None, None), "(B, I)")
    B, I = x.shape
    c = cell_for(cell, variant)
    H = hidden_size(c, params)
    p = validate.params("params", params, c.param_shapes(I, H))
    r = validate.params("readout", readout, {"W_y": (I, H), "b_y": (I,)})
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return c, x, p, r, [np.zeros((B, H), dtype=x.dtype) for _ in c.states]


def one_to_many(cell, x, params, readout, steps, variant="notes"):
    """Generation: ``h_t = cell(h_{t-1}, x_t)``, ``ŷ_t = W_y h_t + b_y``, ``x_{t+1} = ŷ_t``.

    ``x: (B, I)`` is the first input; ``readout``: ``W_y (I, H), b_y (I,)`` maps
    a state back to the input space. Returns ``ŷ: (steps, B, I)``.
    """
    c, x, p, r, state = _one_to_many_check(cell, x, params, readout, steps, variant)
    outputs = []
    for _ in range(steps):
        state, _ = c.step(p, x, tuple(state))
        x = mv(r["W_y"], state[0]) + r["b_y"]
        outputs.append(x)
    return np.stack(outputs)


def one_to_many_vjp(cotangents, cell, x, params, readout, steps, variant="notes"):
    """Gradients of :func:`one_to_many` through the fed-back outputs: ``{'x', 'params', 'readout'}``."""
    c, x, p, r, state = _one_to_many_check(cell, x, params, readout, steps, variant)
    caches, hs, outputs = [], [], []
    for _ in range(steps):
        state, cache = c.step(p, x, tuple(state))
        x = mv(r["W_y"], state[0]) + r["b_y"]
        caches.append(cache)
        hs.append(state[0])
        outputs.append(x)
    (d_out,) = cotangents_for(cotangents, (np.stack(outputs),))
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    d_readout = {k: np.zeros_like(v) for k, v in r.items()}
    d_state = [np.zeros_like(s) for s in state]
    d_x_next = np.zeros_like(outputs[0])
    for t in reversed(range(steps)):
        d_yhat = d_out[t] + d_x_next
        d_readout["W_y"] += outer_sum(d_yhat, hs[t])
        d_readout["b_y"] += d_yhat.sum(0)
        d_state[0] = d_state[0] + d_yhat @ r["W_y"]
        d_state, d_x_next, g = c.step_vjp(p, caches[t], tuple(d_state))
        d_state = list(d_state)
        for k in grads:
            grads[k] += g[k]
    return {"x": d_x_next, "params": grads, "readout": d_readout}
