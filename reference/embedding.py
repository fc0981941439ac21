"""Word embeddings: the one-hot product ``e_w = E o_w``, row lookup, and the full softmax ``p(w_o|w_i)``.

Layout, stated once for every embedding function of the reference: the
notes' ``E`` is ``d × V`` with ``e_w = E o_w`` a column; the reference stores
its transpose, **``E: (V, d)``, row ``w`` is ``e_w``**, as frameworks do
(``torch.nn.Embedding.weight``, gensim's ``KeyedVectors.vectors``). So
``E o_w`` is ``o_w @ E`` for a one-hot row ``o_w: (V,)``, which is ``E[w]``.

Word ids are integer arrays with values in ``[0, V)``. word2vec keeps two
matrices, ``E_in`` for the input (centre) word ``e_{w_i}`` and ``E_out`` for the
output (context) word ``e_{w_o}``; everywhere ``E_out=None`` ties them
(``E_out = E_in``), and the gradient of a tied matrix is the sum of both.
"""

from __future__ import annotations

import numpy as np

from . import validate
from .loss import softmax
from .recurrent import cotangents_for


def word_ids(name: str, ids, vocab_size: int, shape: tuple | None = None, dims: str | None = None) -> np.ndarray:
    """``ids`` as an integer array of word ids in ``[0, V)``, optionally of an exact ``shape``."""
    array = np.asarray(ids)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of word ids, got dtype {array.dtype}")
    if shape is not None and (array.ndim != len(shape) or any(e not in (None, g) for g, e in zip(array.shape, shape))):
        want = tuple("?" if e is None else e for e in shape)
        raise ValueError(f"{name} must have shape {dims} = {want}, got {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= vocab_size):
        raise ValueError(
            f"{name} must be word ids in [0, V) = [0, {vocab_size}), got values in [{array.min()}, {array.max()}]"
        )
    return array.astype(np.int64, copy=False)


def embedding_matrix(name: str, E, d: int | None = None, vocab_size: int | None = None) -> np.ndarray:
    """An embedding matrix ``(V, d)`` with at least one word and one dimension."""
    E = validate.float_array(name, E, (vocab_size, d), "(V, d)")
    if 0 in E.shape:
        raise ValueError(f"{name} must have at least one word and one dimension, got shape {E.shape}")
    return E


def matrices(E_in, E_out) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(E_in, E_out, tied)`` checked to one shape ``(V, d)`` and dtype; ``E_out=None`` ties them."""
    E_in = embedding_matrix("E_in", E_in)
    if E_out is None:
        return E_in, E_in, True
    E_out = embedding_matrix("E_out", E_out, E_in.shape[1], E_in.shape[0])
    dtype = validate.common_dtype(E_in, E_out)
    return E_in.astype(dtype, copy=False), E_out.astype(dtype, copy=False), False


def scatter_rows(ids: np.ndarray, rows: np.ndarray, vocab_size: int) -> np.ndarray:
    """``dE`` with ``dE[w] = Σ_{k: ids_k = w} rows_k``: the gradient of the lookup ``E[ids]``."""
    dE = np.zeros_like(rows, shape=(vocab_size, rows.shape[-1]))
    np.add.at(dE, ids.reshape(-1), rows.reshape(-1, rows.shape[-1]))
    return dE


def tied_grads(dE_in: np.ndarray, dE_out: np.ndarray, tied: bool) -> dict:
    """``{'E_in', 'E_out'}``, or ``{'E_in': dE_in + dE_out}`` for a tied matrix."""
    return {"E_in": dE_in + dE_out} if tied else {"E_in": dE_in, "E_out": dE_out}


def loss_cotangent(cotangents) -> float:
    """The cotangent ``g`` of a scalar loss, given as a number or a 1-tuple."""
    g = cotangents[0] if isinstance(cotangents, (tuple, list)) else cotangents
    return float(validate.float_array("cotangents", np.asarray(g, dtype=float), ()))


def corpus(name: str, corpus_ids, vocab_size: int, min_words: int = 1) -> np.ndarray:
    """A corpus: a 1-d array of word ids ``w_1 … w_T`` with at least ``min_words`` words."""
    ids = word_ids(name, corpus_ids, vocab_size, (None,), "(T,)")
    if len(ids) < min_words:
        raise ValueError(f"{name} must hold at least {min_words} word id(s), got {len(ids)}")
    return ids


def half_width(name: str, c) -> int:
    """A window half-width: an int ``c ≥ 1``."""
    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)):
        raise TypeError(f"{name} must be an int ≥ 1 (the window half-width), got {c!r}")
    if c < 1:
        raise ValueError(f"{name} must be ≥ 1 (the window half-width), got {c}")
    return int(c)


def positive_number(name: str, value) -> float:
    """A positive finite real number, as a Python float (so it never changes an array's dtype)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def context_pairs(T: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Every position pair ``(t, t + j)`` with ``1 ≤ |j| ≤ c`` inside ``[0, T)``: two ``(P,)`` index arrays.

    Pairs reaching past either end of the corpus are skipped (as word2vec and
    GloVe do), so the set is symmetric: ``(t, u)`` is in it iff ``(u, t)`` is.
    """
    offsets = np.concatenate([np.arange(-c, 0), np.arange(1, c + 1)])  # j ≠ 0
    t = np.repeat(np.arange(T), 2 * c)
    u = t + np.tile(offsets, T)
    inside = (u >= 0) & (u < T)
    return t[inside], u[inside]


def one_hot(ids, vocab_size: int, dtype=np.float64) -> np.ndarray:
    """``o_w``: ``(..., V)`` rows with a 1 at each word id, 0 elsewhere."""
    ids = word_ids("ids", ids, vocab_size)
    return (ids[..., None] == np.arange(vocab_size)).astype(dtype)


def _lookup_args(E, ids):
    E = embedding_matrix("E", E)
    return E, word_ids("ids", ids, E.shape[0])


def embedding_lookup(E, ids):
    """``e_w = E[w]``: row lookup of every id, ``ids: (...) -> (..., d)``."""
    E, ids = _lookup_args(E, ids)
    return E[ids]


def embedding_lookup_vjp(cotangents, E, ids):
    """``dE[w] = Σ_{k: ids_k = w} de_k``: rows scatter-added back."""
    E, ids = _lookup_args(E, ids)
    (de,) = cotangents_for(cotangents, (E[ids],))
    return {"E": scatter_rows(ids, de, E.shape[0])}


def embedding_one_hot(E, ids):
    """``e_w = E o_w``: the notes' one-hot product, ``o_w @ E`` in the ``(V, d)`` layout; equals the lookup."""
    E, ids = _lookup_args(E, ids)
    return one_hot(ids, E.shape[0], E.dtype) @ E


def embedding_one_hot_vjp(cotangents, E, ids):
    """``dE = Σ_k o_{w_k} de_kᵀ``: the matmul gradient, equal to the lookup's scatter-add."""
    E, ids = _lookup_args(E, ids)
    o = one_hot(ids, E.shape[0], E.dtype).reshape(-1, E.shape[0])  # (n, V)
    (de,) = cotangents_for(cotangents, (E[ids],))  # shaped like the output
    return {"E": o.T @ de.reshape(-1, E.shape[1])}


def _softmax_args(E_in, E_out, w_i):
    E_in, E_out, tied = matrices(E_in, E_out)
    return E_in, E_out, tied, word_ids("w_i", w_i, E_in.shape[0])


def softmax_prob(E_in, E_out, w_i):
    """``p(w_o|w_i) = exp(e_{w_o}·e_{w_i}) / Σ_{w∈V} exp(e_w·e_{w_i})`` for every ``w_o``.

    ``e_{w_i}`` is a row of ``E_in``, ``e_{w_o}`` and ``e_w`` rows of ``E_out``
    (``None``: tied). ``w_i: (...)`` ids; returns ``(..., V)``, each row summing
    to 1, computed as ``exp(s - logsumexp(s))`` so no logit overflows.
    """
    E_in, E_out, _, w_i = _softmax_args(E_in, E_out, w_i)
    return softmax(E_in[w_i] @ E_out.T)


def softmax_prob_vjp(cotangents, E_in, E_out, w_i):
    """``ds = p ⊙ (dp - Σ_w dp_w p_w)`` for the logits ``s = e_{w_i} E_outᵀ``, then both matmul gradients."""
    E_in, E_out, tied, w_i = _softmax_args(E_in, E_out, w_i)
    u = E_in[w_i]  # (..., d)
    p = softmax(u @ E_out.T)  # (..., V)
    (dp,) = cotangents_for(cotangents, (p,))
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    V, d = E_in.shape
    dE_out = ds.reshape(-1, V).T @ u.reshape(-1, d)
    return tied_grads(scatter_rows(w_i, ds @ E_out, V), dE_out, tied)


CHECKS = {"embedding_lookup": _lookup_args, "embedding_one_hot": _lookup_args, "softmax_prob": _softmax_args}
