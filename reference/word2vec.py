"""word2vec: skip-gram and CBOW over a corpus, negative sampling, and the noise distribution.

Matrices follow :mod:`seqbench.reference.embedding`: ``E_in, E_out: (V, d)``,
rows are words, ``E_out=None`` ties them. A corpus is a 1-d array of word ids
``w_1 … w_T``; ``c ≥ 1`` is the window half-width, and context pairs reaching
past either end of the corpus are skipped. The notes state objectives to
*maximize*; every function here returns the loss, their negative, to minimize.
"""

from __future__ import annotations

import numpy as np

from . import validate
from .embedding import (
    context_pairs, corpus, half_width, loss_cotangent, matrices, positive_number, scatter_rows, tied_grads, word_ids,
)
from .loss import log_softmax, softmax
from .primitives import sigmoid


def _corpus_args(E_in, E_out, corpus_ids, c):
    E_in, E_out, tied = matrices(E_in, E_out)
    w = corpus("corpus_ids", corpus_ids, E_in.shape[0], min_words=2)
    return E_in, E_out, tied, w, half_width("c", c)


def _pairs_loss(E_in, E_out, w, given, target):
    """``-(1/T) Σ_p log p(w_{target_p} | w_{given_p})`` over the position pairs ``p``."""
    logp = log_softmax(E_in[w] @ E_out.T)  # (T, V): log p(·|w_s) at every position s
    return np.asarray(-logp[given, w[target]].sum() / len(w))


def _pairs_loss_vjp(g, E_in, E_out, tied, w, given, target):
    """``ds_s = (g/T)(n_s p(·|w_s) - Σ_{p: given_p = s} o_{w_{target_p}})`` for the logits of position ``s``."""
    T, V = len(w), E_in.shape[0]
    u = E_in[w]  # (T, d)
    n = np.bincount(given, minlength=T).astype(u.dtype)  # pairs per input position
    ds = n[:, None] * softmax(u @ E_out.T)  # (T, V)
    np.add.at(ds, (given, w[target]), -1)
    ds *= g / T
    return tied_grads(scatter_rows(w, ds @ E_out, V), ds.T @ u, tied)


def skipgram_loss(E_in, E_out, corpus_ids, c):
    """Skip-gram: ``L = -(1/T) Σ_{t=1}^T Σ_{-c≤j≤c, j≠0} log p(w_{t+j}|w_t)``, the notes' objective negated.

    ``p`` is :func:`~seqbench.reference.embedding.softmax_prob`: the centre
    word ``w_t`` through ``E_in``, the context word through ``E_out``.
    ``corpus_ids: (T,)`` with ``T ≥ 2``. Returns a 0-d array.
    """
    E_in, E_out, _, w, c = _corpus_args(E_in, E_out, corpus_ids, c)
    t, u = context_pairs(len(w), c)
    return _pairs_loss(E_in, E_out, w, given=t, target=u)


def skipgram_loss_vjp(cotangents, E_in, E_out, corpus_ids, c):
    """Gradients of :func:`skipgram_loss`: ``{'E_in', 'E_out'}`` (``{'E_in'}`` when tied)."""
    E_in, E_out, tied, w, c = _corpus_args(E_in, E_out, corpus_ids, c)
    t, u = context_pairs(len(w), c)
    return _pairs_loss_vjp(loss_cotangent(cotangents), E_in, E_out, tied, w, given=t, target=u)


def cbow_pairwise_loss(E_in, E_out, corpus_ids, c):
    """CBOW as the notes write it: ``L = -(1/T) Σ_t Σ_{-c≤j≤c, j≠0} log p(w_t|w_{t+j})``.

    Each context word alone predicts the centre word. The pair set is
    symmetric, so relabelling ``u = t + j`` gives ``Σ_u Σ_j log p(w_{u-j}|w_u)``:
    this equals :func:`skipgram_loss` (up to rounding). word2vec's CBOW,
    which predicts from the mean of the context, is :func:`cbow_loss`.
    """
    E_in, E_out, _, w, c = _corpus_args(E_in, E_out, corpus_ids, c)
    t, u = context_pairs(len(w), c)
    return _pairs_loss(E_in, E_out, w, given=u, target=t)


def cbow_pairwise_loss_vjp(cotangents, E_in, E_out, corpus_ids, c):
    """Gradients of :func:`cbow_pairwise_loss`: ``{'E_in', 'E_out'}`` (``{'E_in'}`` when tied)."""
    E_in, E_out, tied, w, c = _corpus_args(E_in, E_out, corpus_ids, c)
    t, u = context_pairs(len(w), c)
    return _pairs_loss_vjp(loss_cotangent(cotangents), E_in, E_out, tied, w, given=u, target=t)


def _context_means(E_in, w, c):
    """``h_t = (1/|C_t|) Σ_{u∈C_t} e_{w_u}`` over the context ``C_t`` of every position: ``(T, d)``."""
    t, u = context_pairs(len(w), c)
    n = np.bincount(t, minlength=len(w)).astype(E_in.dtype)  # |C_t| ≥ 1 since T ≥ 2
    h = np.zeros_like(E_in, shape=(len(w), E_in.shape[1]))
    np.add.at(h, t, E_in[w[u]])
    return h / n[:, None], t, u, n


def cbow_loss(E_in, E_out, corpus_ids, c):
    """word2vec's CBOW: ``L = -(1/T) Σ_t log softmax(E_out h_t)[w_t]``, ``h_t`` the mean input vector of the context.

    ``h_t = (1/|C_t|) Σ_{-c≤j≤c, j≠0} e_{w_{t+j}}`` (rows of ``E_in``, pairs
    inside the corpus), so ``p(w_t|context) = exp(e_{w_t}·h_t) / Σ_w exp(e_w·h_t)``
    with ``e_w`` rows of ``E_out``. Returns a 0-d array.
    """
    E_in, E_out, _, w, c = _corpus_args(E_in, E_out, corpus_ids, c)
    h = _context_means(E_in, w, c)[0]
    logp = log_softmax(h @ E_out.T)  # (T, V)
    return np.asarray(-logp[np.arange(len(w)), w].sum() / len(w))


def cbow_loss_vjp(cotangents, E_in, E_out, corpus_ids, c):
    """``ds_t = (g/T)(p(·|h_t) - o_{w_t})``, ``dh = ds E_out``, each context row gets ``dh_t / |C_t|``."""
    g = loss_cotangent(cotangents)
    E_in, E_out, tied, w, c = _corpus_args(E_in, E_out, corpus_ids, c)
    T, V = len(w), E_in.shape[0]
    h, t, u, n = _context_means(E_in, w, c)
    ds = softmax(h @ E_out.T)  # (T, V)
    ds[np.arange(T), w] -= 1
    ds *= g / T
    dh = ds @ E_out  # (T, d)
    return tied_grads(scatter_rows(w[u], dh[t] / n[t, None], V), ds.T @ h, tied)


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log σ(x) = -log(1 + e^{-x})``, computed as ``-logaddexp(0, -x)``.

    Finite for every ``x``: ``log σ(-1000) = -1000``, ``log σ(1000) = -e^{-1000} ≈ 0``.
    """
    return -np.logaddexp(0, -x)


def _negative_args(e_i, e_o, e_neg):
    e_i = validate.float_array("e_i", e_i, (None, None), "(B, d)")
    B, d = e_i.shape
    e_o = validate.float_array("e_o", e_o, (B, d), "(B, d)")
    e_neg = validate.float_array("e_neg", e_neg, (B, None, d), "(B, K, d)")
    if e_neg.shape[1] == 0:
        raise ValueError(f"e_neg must hold K ≥ 1 negatives per pair, got shape {e_neg.shape} (K = 0)")
    dtype = validate.common_dtype(e_i, e_o, e_neg)
    return e_i.astype(dtype, copy=False), e_o.astype(dtype, copy=False), e_neg.astype(dtype, copy=False)


def negative_sampling_loss(e_i, e_o, e_neg):
    """Negative sampling: ``L = -Σ_{i,o} log σ(e_o·e_i) - Σ_{i,o} Σ_{w~P_n} log σ(-e_w·e_i)``.

    ``e_i, e_o: (B, d)`` are the input and output vectors of ``B`` positive
    pairs (``p(y=1|w_o,w_i) = σ(e_o·e_i)``), ``e_neg: (B, K, d)`` the vectors
    of ``K ≥ 1`` noise words per pair (``p(y=0|w,w_i) = σ(-e_w·e_i)``).
    The notes write the second sum as ``+Σ Σ log p(y=0|w,w_i)``: a sign slip,
    since minimizing that would push the noise words' ``p(y=0)`` to 0;
    both sums are negative log-likelihoods (Mikolov et al. 2013, eq. 4).
    Summed over the batch, with a stable ``log σ``. Returns a 0-d array.
    """
    e_i, e_o, e_neg = _negative_args(e_i, e_o, e_neg)
    x = (e_o * e_i).sum(axis=-1)  # (B,)    e_o·e_i
    y = np.einsum("bkd,bd->bk", e_neg, e_i)  # (B, K)  e_w·e_i
    return np.asarray(-log_sigmoid(x).sum() - log_sigmoid(-y).sum())


def negative_sampling_loss_vjp(cotangents, e_i, e_o, e_neg):
    """``dL/d(e_o·e_i) = -σ(-e_o·e_i)``, ``dL/d(e_w·e_i) = σ(e_w·e_i)``, then the dot products' gradients."""
    g = loss_cotangent(cotangents)
    e_i, e_o, e_neg = _negative_args(e_i, e_o, e_neg)
    dx = -g * sigmoid(-(e_o * e_i).sum(axis=-1))  # (B,)
    dy = g * sigmoid(np.einsum("bkd,bd->bk", e_neg, e_i))  # (B, K)
    return {
        "e_i": dx[:, None] * e_o + np.einsum("bk,bkd->bd", dy, e_neg),
        "e_o": dx[:, None] * e_i,
        "e_neg": dy[..., None] * e_i[:, None, :],
    }


def _negative_lookup_args(E_in, E_out, w_i, w_o, w_neg):
    E_in, E_out, tied = matrices(E_in, E_out)
    V = E_in.shape[0]
    w_i = word_ids("w_i", w_i, V, (None,), "(B,)")
    w_o = word_ids("w_o", w_o, V, (len(w_i),), "(B,)")
    w_neg = word_ids("w_neg", w_neg, V, (len(w_i), None), "(B, K)")
    if w_neg.shape[1] == 0:
        raise ValueError(f"w_neg must hold K ≥ 1 negatives per pair, got shape {w_neg.shape} (K = 0)")
    return E_in, E_out, tied, w_i, w_o, w_neg


def negative_sampling_lookup_loss(E_in, E_out, w_i, w_o, w_neg):
    """:func:`negative_sampling_loss` on word ids, as word2vec trains it.

    ``e_i = E_in[w_i]``, ``e_o = E_out[w_o]``, ``e_w = E_out[w_neg]``: input
    vectors for the input word, output vectors for the context and noise
    words (``E_out=None`` ties them). ``w_i, w_o: (B,)``, ``w_neg: (B, K)``.
    """
    E_in, E_out, _, w_i, w_o, w_neg = _negative_lookup_args(E_in, E_out, w_i, w_o, w_neg)
    return negative_sampling_loss(E_in[w_i], E_out[w_o], E_out[w_neg])


def negative_sampling_lookup_loss_vjp(cotangents, E_in, E_out, w_i, w_o, w_neg):
    """The vector gradients of :func:`negative_sampling_loss_vjp`, scatter-added into their matrices."""
    E_in, E_out, tied, w_i, w_o, w_neg = _negative_lookup_args(E_in, E_out, w_i, w_o, w_neg)
    d = negative_sampling_loss_vjp(cotangents, E_in[w_i], E_out[w_o], E_out[w_neg])
    V = E_in.shape[0]
    dE_out = scatter_rows(w_o, d["e_o"], V) + scatter_rows(w_neg, d["e_neg"], V)
    return tied_grads(scatter_rows(w_i, d["e_i"], V), dE_out, tied)


def context_ids(name: str, w_ctx, vocab_size: int, batch: int | None = None) -> np.ndarray:
    """Context windows ``(B, M)``: word ids in ``[0, V)``, ``-1`` marking an empty slot, ≥ 1 word per row."""
    ids = np.asarray(w_ctx)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of word ids, got dtype {ids.dtype}")
    if ids.ndim != 2 or (batch is not None and ids.shape[0] != batch) or ids.shape[1] == 0:
        raise ValueError(f"{name} must have shape (B, M) with M ≥ 1, got {ids.shape}")
    if ids.size and (ids.min() < -1 or ids.max() >= vocab_size):
        raise ValueError(f"{name} must be word ids in [0, V) = [0, {vocab_size}) or -1 for an empty slot, "
                         f"got values in [{ids.min()}, {ids.max()}]")
    if ids.size and not np.all((ids >= 0).any(axis=1)):
        raise ValueError(f"{name} must hold at least one word id (not -1) in every row")
    return ids.astype(np.int64, copy=False)


def cbow_negative_args(E_in, E_out, w_ctx, w_o, w_neg):
    E_in, E_out, tied = matrices(E_in, E_out)
    V = E_in.shape[0]
    w_o = word_ids("w_o", w_o, V, (None,), "(B,)")
    w_ctx = context_ids("w_ctx", w_ctx, V, len(w_o))
    w_neg = word_ids("w_neg", w_neg, V, (len(w_o), None), "(B, K)")
    if w_neg.shape[1] == 0:
        raise ValueError(f"w_neg must hold K ≥ 1 negatives per pair, got shape {w_neg.shape} (K = 0)")
    return E_in, E_out, tied, w_ctx, w_o, w_neg


def context_mean(E_in, w_ctx):
    """``h_b = (1/|C_b|) Σ_{m: w_ctx[b,m] ≥ 0} e_{w_ctx[b,m]}`` and the weights ``[w_ctx ≥ 0] / |C_b|``: (B, d), (B, M)."""
    present = (w_ctx >= 0).astype(E_in.dtype)
    weight = present / present.sum(axis=1, keepdims=True)
    return np.einsum("bm,bmd->bd", weight, E_in[np.maximum(w_ctx, 0)]), weight


def cbow_negative_sampling_loss(E_in, E_out, w_ctx, w_o, w_neg):
    """word2vec's CBOW with negative sampling: :func:`negative_sampling_loss` with ``e_i = h_b``, the context mean.

    ``h_b = (1/|C_b|) Σ_{u∈C_b} e_u`` over the context words ``C_b`` of item
    ``b`` (rows of ``E_in``), ``e_o = E_out[w_o]`` its centre word and
    ``e_w = E_out[w_neg]`` the noise words::

        L = -Σ_b log σ(e_{w_o}·h_b) - Σ_b Σ_k log σ(-e_{w_neg[b,k]}·h_b)

    ``w_ctx: (B, M)`` context ids, ``-1`` marking an empty slot (windows differ
    in size; each row holds ≥ 1 word), ``w_o: (B,)``, ``w_neg: (B, K)``. With
    ``M = 1`` it is skip-gram's pair loss :func:`negative_sampling_lookup_loss`,
    ``w_ctx[:, 0]`` the input word. Returns a 0-d array.
    """
    E_in, E_out, _, w_ctx, w_o, w_neg = cbow_negative_args(E_in, E_out, w_ctx, w_o, w_neg)
    return negative_sampling_loss(context_mean(E_in, w_ctx)[0], E_out[w_o], E_out[w_neg])


def cbow_negative_sampling_loss_vjp(cotangents, E_in, E_out, w_ctx, w_o, w_neg):
    """``dh_b`` from :func:`negative_sampling_loss_vjp`; each context row ``u`` of item ``b`` gets ``dh_b / |C_b|``."""
    E_in, E_out, tied, w_ctx, w_o, w_neg = cbow_negative_args(E_in, E_out, w_ctx, w_o, w_neg)
    h, weight = context_mean(E_in, w_ctx)
    d = negative_sampling_loss_vjp(cotangents, h, E_out[w_o], E_out[w_neg])
    V = E_in.shape[0]
    rows = weight[..., None] * d["e_i"][:, None, :]  # (B, M, d), zero for empty slots
    dE_out = scatter_rows(w_o, d["e_o"], V) + scatter_rows(w_neg, d["e_neg"], V)
    return tied_grads(scatter_rows(np.maximum(w_ctx, 0), rows, V), dE_out, tied)


def _counts(counts) -> np.ndarray:
    array = np.asarray(counts)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"counts must be a numeric array of word counts (V,), got dtype {array.dtype}")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"counts must be a non-empty 1-d array (V,), got shape {array.shape}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("counts contains NaN or infinite values")
    if array.min() < 0 or array.sum() == 0:
        raise ValueError(
            f"counts must be non-negative with at least one positive count, got values in [{array.min()}, {array.max()}]"
        )
    return array


def noise_distribution(counts, power=0.75):
    """``P_n(w) = U(w)^{3/4} / Z``, ``Z = Σ_w U(w)^{3/4}``: the noise distribution of negative sampling.

    ``counts: (V,)`` unigram counts (or frequencies: the scale cancels);
    ``power`` the exponent (3/4 in the notes and word2vec; 1 is the unigram
    distribution). Words never seen get probability 0. Returns ``(V,)`` float64.
    """
    weights = _counts(counts) ** positive_number("power", power)
    return weights / weights.sum()


def _distribution(dist) -> np.ndarray:
    dist = validate.float_array("dist", dist, (None,), "(V,)")
    if dist.size == 0 or dist.min() < 0 or abs(dist.sum() - 1) > 1e-6:
        raise ValueError(f"dist must be V ≥ 1 non-negative probabilities summing to 1, got sum {dist.sum()}")
    return dist


def _sample_shape(shape) -> tuple:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else shape
    if not (isinstance(shape, tuple) and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape)):
        raise TypeError(f"shape must be an int or a tuple of ints, e.g. (B, K), got {shape!r}")
    if any(s < 1 for s in shape):
        raise ValueError(f"shape must have every size ≥ 1 (K = 0 negatives is not a sample), got {shape}")
    return shape


def sample_negatives(dist, shape, rng):
    """Noise words ``w ~ P_n``, i.i.d., as word ids of ``shape`` (e.g. ``(B, K)``).

    Inverse CDF: ``w = min{w : F(w) > u}`` for ``u ~ U[0, 1)`` drawn by
    ``rng.random(shape)`` and ``F`` the cumulative sum of ``dist`` (rescaled so
    ``F(V-1) = 1``); a word of probability 0 is never drawn. ``rng`` is a
    ``numpy.random.Generator``, so a seed fixes the draw.
    """
    dist = _distribution(dist)
    shape = _sample_shape(shape)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    F = np.cumsum(dist)
    return np.searchsorted(F / F[-1], rng.random(shape), side="right")


CHECKS = {
    "skipgram_loss": _corpus_args,
    "cbow_loss": _corpus_args,
    "cbow_pairwise_loss": _corpus_args,
    "negative_sampling_loss": _negative_args,
    "negative_sampling_lookup_loss": _negative_lookup_args,
    "cbow_negative_sampling_loss": cbow_negative_args,
}
