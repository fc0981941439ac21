"""Softmax and the sequence loss of the notes: the sum of the per-step losses.

    softmax(a)_k = exp(a_k) / Σ_j exp(a_j)          (computed as exp(a_k - logsumexp(a)))
    L = Σ_t Σ_b -log softmax(a_{t,b})[target_{t,b}]  (padded steps excluded)
"""

from __future__ import annotations

import numpy as np

from . import validate
from .scan import valid_mask


def log_softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log softmax(a) = a - logsumexp(a)``, stable for any magnitude of ``a``."""
    shifted = a - a.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``softmax(a)_k = exp(a_k) / Σ_j exp(a_j)``."""
    return np.exp(log_softmax(a, axis))


def _check(logits, targets, lengths):
    logits = validate.float_array("logits", logits, (None, None, None), "(T, B, V)")
    T, B, V = logits.shape
    targets = np.asarray(targets)
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"targets must be an integer array (T, B) of class ids, got dtype {targets.dtype}")
    if targets.shape != (T, B):
        raise ValueError(f"targets must have shape (T, B) = {(T, B)}, got {targets.shape}")
    if targets.size and (targets.min() < 0 or targets.max() >= V):
        raise ValueError(f"targets must be class ids in [0, V) = [0, {V}), got values in [{targets.min()}, {targets.max()}]")
    lengths = validate.lengths(lengths, T, B)
    return logits, targets, valid_mask(T, lengths, B, logits.dtype)[..., 0]


def sequence_loss(logits, targets, lengths=None):
    """``L = Σ_t Σ_b -log softmax(logits_{t,b})[targets_{t,b}]``, the notes' sum over time steps.

    ``logits: (T, B, V)``, ``targets: (T, B)`` ints in ``[0, V)``, ``lengths: (B,)``
    (padded steps contribute nothing). Returns a 0-d array.
    """
    logits, targets, m = _check(logits, targets, lengths)
    picked = np.take_along_axis(log_softmax(logits), targets[..., None], axis=-1)[..., 0]  # (T, B)
    return np.asarray(-(m * picked).sum())


def sequence_loss_vjp(cotangents, logits, targets, lengths=None):
    """``dL/dlogits = g · m ⊙ (softmax(logits) - onehot(targets))`` for the loss cotangent ``g``."""
    logits, targets, m = _check(logits, targets, lengths)
    g = cotangents[0] if isinstance(cotangents, (tuple, list)) else cotangents
    g = validate.float_array("cotangents", np.asarray(g, dtype=float), ())
    d = softmax(logits)
    np.put_along_axis(d, targets[..., None], np.take_along_axis(d, targets[..., None], -1) - 1, axis=-1)
    return {"logits": (g * m[..., None] * d).astype(logits.dtype)}
