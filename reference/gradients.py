"""One entry point for every hand-written backward pass, and the gradient-norm diagnostic."""

from __future__ import annotations

import inspect

import numpy as np

from . import composite, embedding, glove, loss, recurrent, rnn_types, validate, word2vec
from .recurrent import CellCall, cell_for

FORWARD = {
    "rnn": recurrent.rnn,
    "lstm": recurrent.lstm,
    "gru": recurrent.gru,
    "bidirectional": composite.bidirectional,
    "stacked": composite.stacked,
    "sequence_loss": loss.sequence_loss,
    "one_to_one": rnn_types.one_to_one,
    "one_to_many": rnn_types.one_to_many,
    "many_to_one": rnn_types.many_to_one,
    "many_to_many": rnn_types.many_to_many,
    "encoder_decoder": rnn_types.encoder_decoder,
    "embedding_lookup": embedding.embedding_lookup,
    "embedding_one_hot": embedding.embedding_one_hot,
    "softmax_prob": embedding.softmax_prob,
    "skipgram_loss": word2vec.skipgram_loss,
    "cbow_loss": word2vec.cbow_loss,
    "cbow_pairwise_loss": word2vec.cbow_pairwise_loss,
    "negative_sampling_loss": word2vec.negative_sampling_loss,
    "negative_sampling_lookup_loss": word2vec.negative_sampling_lookup_loss,
    "cbow_negative_sampling_loss": word2vec.cbow_negative_sampling_loss,
    "glove_cost": glove.glove_cost,
}

VJP = {name: getattr(inspect.getmodule(fn), f"{name}_vjp") for name, fn in FORWARD.items()}

# Argument checks of the embedding ops, by op: same arguments as the op, no forward pass.
_EMBEDDING_CHECKS = {**embedding.CHECKS, **word2vec.CHECKS, **glove.CHECKS}


def vjp(op: str, cotangents, **inputs) -> dict:
    """Gradients of reference function ``op`` at ``inputs``, pulled back from ``cotangents``.

    ``cotangents`` holds one array per output of ``op`` (``None`` for zeros), or
    a float for a scalar loss. The result maps each differentiable input to its
    gradient with the input's structure, e.g. for ``lstm``
    ``{'x': dx, 'h0': dh0, 'c0': dc0, 'params': {'W_fh': ..., ...}}``; gradients
    of initial states are returned even when they defaulted to zeros.
    """
    validate.choice("op", op, VJP)
    return VJP[op](cotangents, **_bind(op, inputs))


def _bind(op, inputs):
    """The inputs, checked against the signature of ``op`` (TypeError naming a wrong argument)."""
    try:
        inspect.signature(FORWARD[op]).bind(**inputs)
    except TypeError as error:
        raise TypeError(f"{op}(): {error}") from None
    return inputs


def check(op: str, **inputs) -> None:
    """Raise the error ``op`` would raise for these inputs, without running it."""
    validate.choice("op", op, FORWARD)
    args = inspect.signature(FORWARD[op]).bind(**_bind(op, inputs))
    args.apply_defaults()
    a = args.arguments
    if op in ("rnn", "lstm", "gru"):
        cell = cell_for(op, a.get("variant", "notes"))
        states = {k: a[k] for k in ("h0", "c0") if k in a}
        CellCall.check(cell, a["x"], a["params"], states, a["lengths"], a["reverse"])
    elif op == "bidirectional":
        composite._bidirectional_calls(**{k: a[k] for k in a})
    elif op == "stacked":
        c, x, H, states = composite._stacked_layers(**a)
        for layer, (p, s) in enumerate(zip(a["params"], states)):
            layer_x = x if layer == 0 else np.zeros(x.shape[:2] + (H,), x.dtype)
            CellCall.check(c, layer_x, p, s, a["lengths"], a["reverse"], f"params[{layer}]")
    elif op == "sequence_loss":
        loss._check(a["logits"], a["targets"], a["lengths"])
    elif op in _EMBEDDING_CHECKS:
        _EMBEDDING_CHECKS[op](**a)
    else:  # the RNN types check as they run; they are cheap compositions
        FORWARD[op](**a)


def gradient_norms(op: str, x, params, h0=None, c0=None, lengths=None, variant="notes", d_h_T=None) -> np.ndarray:
    """``‖∂L/∂h_t‖`` for every step ``t``, with ``L = ⟨d_h_T, h_T⟩`` (``d_h_T`` defaults to ones).

    The notes' vanishing/exploding-gradient diagnostic: backpropagating from
    the last state, the gradient reaching ``h_t`` is a product of ``T - t``
    step Jacobians, so its norm shrinks (or grows) geometrically with the
    distance ``T - t``. Returns a ``(T,)`` array (Frobenius norm over the batch).
    """
    validate.choice("op", op, ("rnn", "lstm", "gru"))
    cell = cell_for(op, variant)
    states = {"h0": h0, "c0": c0} if op == "lstm" else {"h0": h0}
    if op != "lstm" and c0 is not None:
        raise ValueError("c0 is only used by op='lstm'")
    call = CellCall.check(cell, x, params, states, lengths)
    y, state_T, tape = call.forward()
    d_state = [np.ones_like(s) if k == 0 and d_h_T is None else np.zeros_like(s) for k, s in enumerate(state_T)]
    if d_h_T is not None:
        d_state[0] = validate.float_array("d_h_T", d_h_T, state_T[0].shape, "(B, H)")
    _, _, _, dh = call.vjp(tape, np.zeros_like(y), d_state)
    return np.sqrt((dh**2).sum(axis=(1, 2)))
