"""The trainers' updates as compiled loops: one item (a word2vec pair or window, a GloVe entry) after the other.

Each item is one step of :mod:`seqbench.reference.training` on the
parameters the items before it left (``B = 1``), the way word2vec, gensim
and GloVe's own code train: the ``K + 1`` scores of an item are computed
before any of its rows moves, then its output rows and context rows move.
The loops release the GIL (``nogil``), so several threads can train one set
of matrices at once, lock-free (hogwild, as gensim and GloVe do). Compiled on
first use for each dtype and cached on disk (``cache=True``).

Dot products may be reassociated (``fastmath`` ``reassoc``/``contract``: the
loops over ``d`` vectorize); nothing else of IEEE arithmetic is relaxed.
"""

from __future__ import annotations

import numba
import numpy as np

JIT = {"nogil": True, "cache": True, "fastmath": {"reassoc", "contract"}, "error_model": "numpy"}


@numba.njit(**JIT)
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@numba.njit(**JIT)
def word2vec_items(E_in, E_out, w_ctx, w_o, w_neg, lr):
    """For each item ``b`` in order: ``h = mean_{u ∈ C_b} e_u`` (rows of ``E_in``), the targets ``k = 0..K``
    (``w_o[b]`` with label 1, then ``w_neg[b]``), ``s_k = E_out[k]·h``, ``ds_0 = σ(s_0) − 1``, ``ds_k = σ(s_k)``;
    then ``E_out[k] −= lr·ds_k·h`` and every context row ``e_u −= lr·Σ_k ds_k E_out[k]`` (the old ``E_out``).

    ``w_ctx: (B, M)`` (``-1`` pads a window; skip-gram's ``M = 1``), ``w_o: (B,)``, ``w_neg: (B, K)``, ``lr`` a
    scalar of the matrices' dtype (so float32 stays float32); in place."""
    B, M = w_ctx.shape
    K = w_neg.shape[1]
    d = E_in.shape[1]
    h = np.empty(d, E_in.dtype)
    dh = np.empty(d, E_in.dtype)
    ds = np.empty(K + 1, E_in.dtype)
    targets = np.empty(K + 1, np.int64)
    for b in range(B):
        h[:] = 0
        n = 0
        for m in range(M):
            u = w_ctx[b, m]
            if u >= 0:
                n += 1
                for k in range(d):
                    h[k] += E_in[u, k]
        if n == 0:
            continue
        if n > 1:
            h /= n
        targets[0] = w_o[b]
        targets[1:] = w_neg[b]
        for j in range(K + 1):
            t = targets[j]
            ds[j] = 0
            for k in range(d):
                ds[j] += E_out[t, k] * h[k]
            ds[j] = _sigmoid(ds[j]) - (j == 0)
        dh[:] = 0
        for j in range(K + 1):
            t = targets[j]
            g = ds[j]
            for k in range(d):
                dh[k] += g * E_out[t, k]
        for j in range(K + 1):
            t = targets[j]
            g = lr * ds[j]
            for k in range(d):
                E_out[t, k] -= g * h[k]
        for m in range(M):
            u = w_ctx[b, m]
            if u >= 0:
                for k in range(d):
                    E_in[u, k] -= lr * dh[k]


@numba.njit(**JIT)
def glove_entries(theta, e, b, b_prime, G_theta, G_e, G_b, G_b_prime, rows, cols, f, log_x, lr):
    """For each entry ``(i, j)`` in order: ``q = f(X_ij)(θ_i·e_j + b_i + b'_j − log X_ij)``, the gradients
    ``q e_j, q θ_i, q, q`` of ``θ_i, e_j, b_i, b'_j``, then AdaGrad on each: ``G += g²; p −= lr·g/√G``.

    ``f`` and ``log_x`` are the entries' weights ``f(X_ij)`` and ``log X_ij``, computed once; in place."""
    d = theta.shape[1]
    g_theta = np.empty(d, theta.dtype)
    for n in range(len(rows)):
        i, j = rows[n], cols[n]
        q = b[i] + b_prime[j] - log_x[n]
        for k in range(d):
            q += theta[i, k] * e[j, k]
        q *= f[n]
        for k in range(d):
            g_theta[k] = q * e[j, k]
        for k in range(d):
            g = q * theta[i, k]
            G_e[j, k] += g * g
            e[j, k] -= lr * g / np.sqrt(G_e[j, k])
        for k in range(d):
            g = g_theta[k]
            G_theta[i, k] += g * g
            theta[i, k] -= lr * g / np.sqrt(G_theta[i, k])
        G_b[i] += q * q
        b[i] -= lr * q / np.sqrt(G_b[i])
        G_b_prime[j] += q * q
        b_prime[j] -= lr * q / np.sqrt(G_b_prime[j])
