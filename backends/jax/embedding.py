"""The word-embedding ops in JAX: lookup, full softmax, word2vec losses, the GloVe cost.

Same conventions as :mod:`seqbench.reference.embedding`: ``E: (V, d)`` with
row ``w`` the vector ``e_w``; ``E_out=None`` ties the output matrix to
``E_in`` (``jax.vjp`` then sums both uses into one gradient, as the reference
does). A corpus is ``w: (T,)`` word ids and ``c`` the window half-width;
context pairs reaching past either end of the corpus are skipped. Losses
return a 1-tuple holding a 0-d array.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from seqbench.reference.training import GLOVE_PARAMETERS


def embedding_lookup(E, ids):
    """``e_w = E[w]`` for every id: ``(...) -> (..., d)``."""
    return (E[ids],)


def embedding_one_hot(E, ids):
    """``e_w = E o_w``, the one-hot product (``o_w @ E`` for rows ``E: (V, d)``)."""
    return (jax.nn.one_hot(ids, E.shape[0], dtype=E.dtype) @ E,)


def _softmax(z):
    """``softmax(z)``, in float32 for half-precision ``z``.

    ``jax.vjp`` of ``jax.nn.softmax`` in float16 keeps ``1/(Σ exp)²`` as a
    float16 factor, which underflows to subnormals at a vocabulary of ~1000:
    the gradient was 3.5% off (``tests/backends/jax/test_backend.py``).
    """
    return jax.nn.softmax(z.astype(jnp.promote_types(z.dtype, jnp.float32))).astype(z.dtype)


def softmax_prob(E_in, E_out, w_i):
    """``p(w_o|w_i) = exp(e_{w_o}·e_{w_i}) / Σ_{w∈V} exp(e_w·e_{w_i})`` for every ``w_o``: ``(..., V)``."""
    E_out = E_in if E_out is None else E_out
    return (_softmax(E_in[w_i] @ E_out.T),)


def _context(T: int, c: int):
    """For each offset ``j ∈ [-c, c] \\ {0}``: positions ``u = t + j`` (clipped) and ``valid = 0 ≤ u < T``: ``(2c, T)``.

    Shapes are static, so this index arithmetic is done once, at trace time.
    """
    j = np.concatenate([np.arange(-c, 0), np.arange(1, c + 1)])[:, None]
    u = np.arange(T) + j
    valid = (u >= 0) & (u < T)
    return np.clip(u, 0, T - 1), valid


def _log_p(E_in, E_out, w_or_h):
    """``log p(·|·) = log softmax(e E_outᵀ)`` for the given input vectors (ids into ``E_in``, or vectors)."""
    E_out = E_in if E_out is None else E_out
    u = E_in[w_or_h] if jnp.issubdtype(w_or_h.dtype, jnp.integer) else w_or_h
    return jax.nn.log_softmax(u @ E_out.T)  # (T, V)


def skipgram_loss(E_in, E_out, corpus_ids, c):
    """Skip-gram: ``L = -(1/T) Σ_t Σ_{-c≤j≤c, j≠0} log p(w_{t+j}|w_t)``."""
    w, T = corpus_ids, len(corpus_ids)
    u, valid = _context(T, c)
    logp = _log_p(E_in, E_out, w)
    return (-jnp.where(valid, logp[np.arange(T), w[u]], 0).sum() / T,)


def cbow_pairwise_loss(E_in, E_out, corpus_ids, c):
    """CBOW as the notes write it: ``L = -(1/T) Σ_t Σ_{-c≤j≤c, j≠0} log p(w_t|w_{t+j})``."""
    w, T = corpus_ids, len(corpus_ids)
    u, valid = _context(T, c)
    logp = _log_p(E_in, E_out, w)
    return (-jnp.where(valid, logp[u, w], 0).sum() / T,)


def cbow_loss(E_in, E_out, corpus_ids, c):
    """word2vec's CBOW: ``L = -(1/T) Σ_t log p(w_t|h_t)``, ``h_t = (1/|C_t|) Σ_{u∈C_t} e_{w_u}`` the context mean."""
    w, T = corpus_ids, len(corpus_ids)
    u, valid = _context(T, c)
    h = jnp.where(valid[..., None], E_in[w[u]], 0).sum(0) / valid.sum(0)[:, None]  # (T, d)
    return (-_log_p(E_in, E_out, h)[np.arange(T), w].sum() / T,)


def negative_sampling_loss(e_i, e_o, e_neg):
    """``L = -Σ log σ(e_o·e_i) - Σ Σ_{w~P_n} log σ(-e_w·e_i)`` (the notes' second sign corrected, see the reference)."""
    x = (e_o * e_i).sum(axis=-1)  # (B,)    e_o·e_i
    y = jnp.einsum("bkd,bd->bk", e_neg, e_i)  # (B, K)  e_w·e_i
    return (-jax.nn.log_sigmoid(x).sum() - jax.nn.log_sigmoid(-y).sum(),)


def negative_sampling_lookup_loss(E_in, E_out, w_i, w_o, w_neg):
    """Negative sampling on ids: ``e_i = E_in[w_i]``, ``e_o = E_out[w_o]``, ``e_w = E_out[w_neg]``."""
    E_out = E_in if E_out is None else E_out
    return negative_sampling_loss(E_in[w_i], E_out[w_o], E_out[w_neg])


def glove_cost(X, theta, e, b, b_prime, x_max=100, alpha=0.75):
    """``J = ½ Σ_{i,j} f(X_ij)(θ_i·e_j + b_i + b'_j - log X_ij)²``, ``f(x) = min(1, (x/x_max)^α)``.

    Dense over ``X: (V, V)``: a zero ``X_ij`` has ``f = 0`` and its ``log`` is
    taken of 1 instead, so it adds exactly 0 and ``log 0`` never appears.
    """
    seen = X > 0
    f = jnp.where(seen, jnp.minimum(1, (X / x_max) ** alpha), 0)
    r = theta @ e.T + b[:, None] + b_prime[None, :] - jnp.log(jnp.where(seen, X, 1))  # (V, V)
    return (0.5 * (f * r**2).sum(),)


def _context_mean(E_in, w_ctx):
    """``h_b = (1/|C_b|) Σ_{m: w_ctx[b,m] ≥ 0} E_in[w_ctx[b,m]]``: (B, d)."""
    present = (w_ctx >= 0).astype(E_in.dtype)
    return jnp.einsum("bm,bmd->bd", present / present.sum(axis=1, keepdims=True), E_in[jnp.maximum(w_ctx, 0)])


def cbow_negative_sampling_loss(E_in, E_out, w_ctx, w_o, w_neg):
    """word2vec's CBOW with negative sampling: :func:`negative_sampling_loss` with ``e_i`` the context mean."""
    E_out = E_in if E_out is None else E_out
    return negative_sampling_loss(_context_mean(E_in, w_ctx), E_out[w_o], E_out[w_neg])


# --- the trainers' update steps (seqbench.reference.training), jitted, the state donated ------------

def _negative_sampling_step(state, w_ctx, w_o, w_neg, lr):
    """:func:`seqbench.reference.training.negative_sampling_step`, an item as small matrix products.

    With ``U_b`` the context rows of item ``b``, ``a_b`` their weights
    ``[present]/|C_b|`` and ``T_b`` its targets (the centre word, then the noise
    words): ``h_b = a_b U_b``, ``s_b = T_b h_b``, ``∂L/∂s = σ(s) − [k = 0]``,
    ``dh_b = (∂L/∂s)ᵀ T_b`` (every context row of the item moves by ``−η dh_b``,
    word2vec's update) and ``dT_b = (∂L/∂s) h_bᵀ``, scatter-added into the
    (donated) matrices. Written out rather than by ``jax.grad`` of
    :func:`negative_sampling_loss`: XLA's CPU code for that graph took five to ten times
    as long a step (measured, 512 windows of 10 words).
    """
    E_in, E_out = state["E_in"], state["E_out"]
    present = (w_ctx >= 0).astype(E_in.dtype)
    rows = jnp.maximum(w_ctx, 0)
    targets = jnp.concatenate([w_o[:, None], w_neg], axis=1)
    h, T = _context_mean(E_in, w_ctx), E_out[targets]  # (B, d), (B, K+1, d)
    ds = jax.nn.sigmoid(jnp.einsum("bkd,bd->bk", T, h)).at[:, 0].add(-1)  # (B, K+1)
    dh = jnp.einsum("bk,bkd->bd", ds, T)
    return {"E_in": E_in.at[rows].add(-lr * present[..., None] * dh[:, None, :]),
            "E_out": E_out.at[targets].add(-lr * ds[..., None] * h[:, None, :])}


def _skipgram_window_step(state, w_ctx, w_o, w_neg, lr):
    """:func:`seqbench.reference.training.skipgram_window_step`: a window's context rows ``U_b`` against its
    targets ``T_b`` (the centre word, then the shared noise words) as small matrix products, ``S_b = U_b T_bᵀ``,
    ``∂L/∂S = σ(S) − [k = 0]`` (padding masked), ``dU_b = (∂L/∂S) T_b``, ``dT_b = (∂L/∂S)ᵀ U_b``, scatter-added."""
    E_in, E_out = state["E_in"], state["E_out"]
    rows = jnp.maximum(w_ctx, 0)
    targets = jnp.concatenate([w_o[:, None], w_neg], axis=1)
    U, T = E_in[rows], E_out[targets]  # (B, M, d), (B, K+1, d)
    dS = jax.nn.sigmoid(jnp.einsum("bmd,bkd->bmk", U, T)).at[:, :, 0].add(-1)
    dS = dS * (w_ctx >= 0)[..., None].astype(dS.dtype)
    return {"E_in": E_in.at[rows].add(-lr * jnp.einsum("bmk,bkd->bmd", dS, T)),
            "E_out": E_out.at[targets].add(-lr * jnp.einsum("bmk,bmd->bkd", dS, U))}


def _touched_rows(ids, V):
    """``(touched, inverse)``: the rows ``ids`` touch, ``ids[n] = touched[inverse[n]]``, padded to ``len(ids)``
    with the out-of-range row ``V``. By one sort and a binary search: ``jnp.unique``'s sort with a payload is
    4x slower on the CPU (measured, 8,192 ids)."""
    ordered = jnp.sort(ids)
    first = jnp.concatenate([jnp.ones(1, bool), ordered[1:] != ordered[:-1]])
    return jnp.where(first, ordered, V), jnp.searchsorted(ordered, ids, method="scan")


def _adagrad_rows(p, G, touched, inverse, grads, lr):
    """AdaGrad on the rows ``touched`` of ``p`` (:func:`~seqbench.backends.row_updates.adagrad_rows`), entry ``n``
    on row ``touched[inverse[n]]``: a row's gradient ``g_r = Σ_{n on r} grads_n``, ``G_r ← G_r + g_r²``,
    ``p_r ← p_r − η g_r / √G_r``; ``touched`` is padded with an out-of-range row whose updates are dropped."""
    g = jnp.zeros_like(grads).at[inverse].add(grads)
    G_rows = G.at[touched].get(mode="fill", fill_value=1) + g * g
    return p.at[touched].add(-lr * g / jnp.sqrt(G_rows), mode="drop"), G.at[touched].set(G_rows, mode="drop")


def _glove_step(state, rows, cols, x, lr, x_max=100, alpha=0.75):
    """AdaGrad on the GloVe cost of the batch's entries, on the rows they touch.

    ``q = f(X_ij)(θ_i·e_j + b_i + b'_j − log X_ij)`` per entry, the gradients
    ``q e_j, q θ_i, q, q`` of ``θ_i, e_j, b_i, b'_j`` (all from the old
    parameters), summed per row (:func:`_adagrad_rows`), then ``G ← G + g²``,
    ``p ← p − η g/√G``. No ``(V, d)`` gradient: the step's cost is the batch's.
    """
    theta, e, b, b_prime = (state[k] for k in GLOVE_PARAMETERS)
    x = x.astype(theta.dtype)
    q = jnp.minimum(1, (x / x_max) ** alpha) * ((theta[rows] * e[cols]).sum(axis=-1) + b[rows] + b_prime[cols]
                                               - jnp.log(x))
    grads = (q[:, None] * e[cols], q[:, None] * theta[rows], q, q)
    i, j = _touched_rows(rows, len(b)), _touched_rows(cols, len(b))
    out = {}
    for name, (touched, inverse), g in zip(GLOVE_PARAMETERS, (i, j, i, j), grads):
        out[name], out[f"G_{name}"] = _adagrad_rows(state[name], state[f"G_{name}"], touched, inverse, g, lr)
    return out


def training_steps(device):
    """``{negative_sampling, glove, skipgram_windows}``: the jitted steps on ``device`` (a ``jax.Device``), called
    as ``step(state, *batch, lr)``; the batch is put on the device, the state donated."""
    steps = {"negative_sampling": _negative_sampling_step, "glove": _glove_step,
             "skipgram_windows": _skipgram_window_step}

    def on_device(step):
        return lambda state, *batch: step(state, *(jax.device_put(a, device) for a in batch[:-1]), batch[-1])

    return {name: on_device(jax.jit(step, donate_argnums=0)) for name, step in steps.items()}


#: Reference function name -> function.
FUNCTIONS = {fn.__name__: fn for fn in (
    embedding_lookup, embedding_one_hot, softmax_prob, skipgram_loss, cbow_pairwise_loss, cbow_loss,
    negative_sampling_loss, negative_sampling_lookup_loss, cbow_negative_sampling_loss, glove_cost,
)}
