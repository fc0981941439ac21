"""GloVe: the co-occurrence matrix, the weighted least-squares cost, and the final embedding.

``theta: (V, d)`` holds the target vectors ``θ_i`` and ``e: (V, d)`` the
context vectors ``e_j`` (rows are words, as in
:mod:`seqbench.reference.embedding`); ``b, b_prime: (V,)`` are the biases.

Sparse format, chosen once: :func:`cooccurrence` returns a
``scipy.sparse.coo_array`` in canonical form (duplicates summed, entries
sorted by ``(i, j)``), whose ``row, col, data`` are the ``(i, j, X_ij)``
triples of the nonzero counts — the records GloVe's own ``cooccur`` tool
writes, and exactly the terms :func:`glove_cost` visits. ``.toarray()``
gives the dense ``X``; :func:`glove_cost` accepts either form.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from . import validate
from .embedding import context_pairs, corpus, embedding_matrix, half_width, loss_cotangent, positive_number, scatter_rows


def _vocab_size(vocab_size) -> int:
    if isinstance(vocab_size, (bool, np.bool_)) or not isinstance(vocab_size, (int, np.integer)):
        raise TypeError(f"vocab_size must be an int ≥ 1, got {vocab_size!r}")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be ≥ 1, got {vocab_size}")
    return int(vocab_size)


def cooccurrence(corpus_ids, vocab_size, window):
    """``X_ij = Σ_{t,u: w_t=i, w_u=j, 1≤|t-u|≤window} 1/|t-u|``: GloVe's distance-weighted counts.

    A context word ``d`` positions away adds ``1/d`` (GloVe's weighting); pairs
    are counted both ways, so ``X`` is symmetric. Returns a canonical
    ``scipy.sparse.coo_array`` ``(V, V)`` of float64 (see the module docstring).
    """
    V = _vocab_size(vocab_size)
    w = corpus("corpus_ids", corpus_ids, V)
    t, u = context_pairs(len(w), half_width("window", window))
    X = scipy.sparse.coo_array((1.0 / np.abs(t - u), (w[t], w[u])), shape=(V, V))
    X.sum_duplicates()
    return X


def _nonzero_entries(X, V):
    """The ``(i, j, X_ij)`` triples of the positive entries of a dense or sparse ``X: (V, V)``."""
    if scipy.sparse.issparse(X):
        if X.shape != (V, V):
            raise ValueError(f"X must have shape (V, V) = {(V, V)}, got {X.shape}")
        X = scipy.sparse.coo_array(X, copy=True)
        X.sum_duplicates()
        i, j, x = X.row, X.col, validate.float_array("X", X.data)
    else:
        X = validate.float_array("X", X, (V, V), "(V, V)")
        i, j = np.nonzero(X)
        x = X[i, j]
    if x.size and x.min() < 0:
        raise ValueError(f"X must hold non-negative co-occurrence counts, got a minimum of {x.min()}")
    keep = x > 0  # f(0) = 0: zero entries are skipped, never log 0
    return i[keep], j[keep], x[keep]


def _glove_args(X, theta, e, b, b_prime, x_max=100, alpha=0.75):
    theta = embedding_matrix("theta", theta)
    V, d = theta.shape
    e = embedding_matrix("e", e, d, V)
    b = validate.float_array("b", b, (V,), "(V,)")
    b_prime = validate.float_array("b_prime", b_prime, (V,), "(V,)")
    i, j, x = _nonzero_entries(X, V)
    dtype = validate.common_dtype(x, theta, e, b, b_prime)
    theta, e, b, b_prime, x = (a.astype(dtype, copy=False) for a in (theta, e, b, b_prime, x))
    return i, j, x, theta, e, b, b_prime, positive_number("x_max", x_max), positive_number("alpha", alpha)


def weighting(x, x_max=100, alpha=0.75):
    """``f(x) = min(1, (x/x_max)^α)``: ``f(0) = 0``, rising as ``x^α``, capped at 1 from ``x_max`` on."""
    return np.minimum(1, (x / x_max) ** alpha)


def _residuals(i, j, x, theta, e, b, b_prime):
    """``θ_i·e_j + b_i + b'_j - log X_ij`` for every nonzero entry."""
    return (theta[i] * e[j]).sum(axis=-1) + b[i] + b_prime[j] - np.log(x)


def glove_cost(X, theta, e, b, b_prime, x_max=100, alpha=0.75):
    """``J = ½ Σ_{i,j} f(X_ij)(θ_i·e_j + b_i + b'_j - log X_ij)²`` over the nonzero ``X_ij``.

    ``X: (V, V)`` dense or scipy sparse, non-negative; zero entries have
    ``f(0) = 0`` and are skipped (``log 0`` is never taken). ``f`` is
    :func:`weighting` with GloVe's ``x_max = 100, α = 3/4``. Returns a 0-d array.
    """
    i, j, x, theta, e, b, b_prime, x_max, alpha = _glove_args(X, theta, e, b, b_prime, x_max, alpha)
    r = _residuals(i, j, x, theta, e, b, b_prime)
    return np.asarray(0.5 * (weighting(x, x_max, alpha) * r**2).sum())


def glove_cost_vjp(cotangents, X, theta, e, b, b_prime, x_max=100, alpha=0.75):
    """Gradients of :func:`glove_cost`; with ``q_ij = g f(X_ij) r_ij`` (``r_ij`` the residual)::

        dθ_i = Σ_j q_ij e_j,   de_j = Σ_i q_ij θ_i,   db_i = Σ_j q_ij,   db'_j = Σ_i q_ij

    ``X`` is data (counts), so it gets no gradient.
    """
    g = loss_cotangent(cotangents)
    i, j, x, theta, e, b, b_prime, x_max, alpha = _glove_args(X, theta, e, b, b_prime, x_max, alpha)
    V = theta.shape[0]
    q = (g * weighting(x, x_max, alpha) * _residuals(i, j, x, theta, e, b, b_prime))[:, None]  # (P, 1)
    return {
        "theta": scatter_rows(i, q * e[j], V),
        "e": scatter_rows(j, q * theta[i], V),
        "b": scatter_rows(i, q, V)[:, 0],
        "b_prime": scatter_rows(j, q, V)[:, 0],
    }


def glove_embedding(e, theta):
    """The final GloVe word vectors ``(e_w + θ_w)/2``: ``(V, d)`` (``X`` symmetric makes both sets equivalent)."""
    theta = embedding_matrix("theta", theta)
    e = embedding_matrix("e", e, theta.shape[1], theta.shape[0])
    return (e + theta) / 2


CHECKS = {"glove_cost": _glove_args}
