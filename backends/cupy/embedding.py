"""The embedding objectives of the ``cupy`` backend: the kernels of ``kernels/embedding.cu``.

Like :mod:`.cells`, written against a :class:`~.context.Context` (array
module + kernel launcher), so the tests run it on the CPU through the kernels'
host build. One kernel launch computes every item's loss (and, for the
gradient, scatters every row update with atomics); the per-item losses are
summed afterwards (a pairwise sum, deterministic).

* ``negative_sampling_lookup_loss(E_in, E_out, w_i, w_o, w_neg)``: word2vec's
  skip-gram with negative sampling on word ids (``E_out=None`` ties the
  matrices: one array, one gradient buffer);
* ``negative_sampling_loss(e_i, e_o, e_neg)``: the same loss on given vectors,
  run as lookups of row ``n`` (``e_i``, ``e_o``) and ``n·K + k`` (``e_neg``);
* ``glove_cost(X, theta, e, b, b_prime, x_max, alpha)`` over the nonzero ``X_ij``.
"""

from __future__ import annotations

import numpy as np

from seqbench.reference.training import GLOVE_PARAMETERS

from seqbench.backends.row_updates import adagrad_rows

from .context import Context

FUNCTIONS = ("negative_sampling_loss", "negative_sampling_lookup_loss", "cbow_negative_sampling_loss", "glove_cost")


def _scalar(dtype, value):
    return np.dtype(dtype).type(float(value))


def _cotangent(cotangents) -> float:
    g = cotangents[0] if isinstance(cotangents, (tuple, list)) else cotangents
    return float(g)


def _negative_sampling(ctx: Context, E_in, E_out, E_neg, in_ids, out_ids, neg_ids, g, want_grad, tied):
    """``(loss, dE_in, dE_out, dE_neg)``: the kernel over ``N`` items; ``tied``: E_out/E_neg are E_in.

    ``want_grad``: 0 the loss only, 1 its gradients (2, the trainer's update directions per slot, is
    :func:`negative_sampling_step`'s)."""
    xp = ctx.xp
    N, M = in_ids.shape
    K = neg_ids.shape[1]
    d = E_in.shape[1]
    dtype = E_in.dtype
    loss = xp.empty(N, dtype=dtype)
    coef = xp.empty((N, K + 1), dtype=dtype)
    if want_grad:
        dE_in = xp.zeros_like(E_in)
        dE_out = dE_in if tied else xp.zeros_like(E_out)
        dE_neg = dE_out if E_neg is E_out else xp.zeros_like(E_neg)
    else:  # never written
        dE_in = dE_out = dE_neg = loss
    ctx.launch_warps("negative_sampling", dtype.name, N, E_in, E_out, E_neg, in_ids, M, out_ids, neg_ids, N, K, d,
                     _scalar(dtype, g), loss, coef, dE_in, dE_out, dE_neg, int(want_grad))
    return loss.sum(), dE_in, dE_out, dE_neg


def _ids(xp, a):
    return xp.ascontiguousarray(a.astype(np.int64))


def _on_ids(ctx, inputs, in_ids, cotangents):
    """Negative sampling on word ids, ``e_i`` the mean of the rows ``in_ids[b] ≥ 0`` of ``E_in`` (``(B, M)``)."""
    xp = ctx.xp
    E_in, E_out = xp.ascontiguousarray(inputs["E_in"]), inputs.get("E_out")
    tied = E_out is None
    E_out = E_in if tied else xp.ascontiguousarray(E_out)
    w_o, w_neg = (_ids(xp, inputs[k]) for k in ("w_o", "w_neg"))
    g = 1.0 if cotangents is None else _cotangent(cotangents)
    loss, dE_in, dE_out, _ = _negative_sampling(ctx, E_in, E_out, E_out, in_ids, w_o, w_neg, g,
                                                cotangents is not None, tied)
    if cotangents is None:
        return (loss,)
    return {"E_in": dE_in} if tied else {"E_in": dE_in, "E_out": dE_out}


def negative_sampling_lookup_loss(ctx, inputs, cotangents=None):
    return _on_ids(ctx, inputs, _ids(ctx.xp, inputs["w_i"]).reshape(-1, 1), cotangents)


def cbow_negative_sampling_loss(ctx, inputs, cotangents=None):
    """The same kernel with ``M`` input ids per item: ``e_i`` is the mean of the rows ``w_ctx[b] ≥ 0``."""
    return _on_ids(ctx, inputs, _ids(ctx.xp, inputs["w_ctx"]), cotangents)


def negative_sampling_loss(ctx, inputs, cotangents=None):
    xp = ctx.xp
    e_i, e_o, e_neg = (xp.ascontiguousarray(inputs[k]) for k in ("e_i", "e_o", "e_neg"))
    B, K, d = e_neg.shape
    rows = xp.arange(B, dtype=np.int64)
    g = 1.0 if cotangents is None else _cotangent(cotangents)
    loss, de_i, de_o, de_neg = _negative_sampling(
        ctx, e_i, e_o, e_neg.reshape(B * K, d), rows.reshape(B, 1), rows,
        xp.arange(B * K, dtype=np.int64).reshape(B, K), g, cotangents is not None, tied=False)
    if cotangents is None:
        return (loss,)
    return {"e_i": de_i, "e_o": de_o, "e_neg": de_neg.reshape(B, K, d)}


def _nonzero_entries(xp, X, dtype):
    """``(i, j, X_ij)`` of the positive entries (``f(0) = 0``: zeros are skipped, never ``log 0``)."""
    try:
        import scipy.sparse

        sparse = scipy.sparse.issparse(X)
    except ImportError:  # pragma: no cover - scipy is a dependency
        sparse = False
    if sparse:
        coo = scipy.sparse.coo_array(X)
        coo.sum_duplicates()
        keep = coo.data > 0
        return (xp.asarray(coo.row[keep].astype(np.int64)), xp.asarray(coo.col[keep].astype(np.int64)),
                xp.asarray(coo.data[keep].astype(dtype)))
    i, j = xp.nonzero(X > 0)
    return _ids(xp, i), _ids(xp, j), xp.ascontiguousarray(X[i, j].astype(dtype))


def _glove(ctx, params, i, j, x, x_max, alpha, g, want_grad):
    """``(cost per entry, [dθ, de, db, db'])``: the GloVe kernel over the entries ``X[i, j] = x``."""
    xp = ctx.xp
    dtype = params[0].dtype
    N, d = len(x), params[0].shape[1]
    cost = xp.empty(N, dtype=dtype)
    grads = [xp.zeros_like(a) for a in params] if want_grad else [cost] * 4
    if N:
        ctx.launch_warps("glove", dtype.name, N, *params, i, j, x, N, d, _scalar(dtype, x_max),
                         _scalar(dtype, alpha), _scalar(dtype, g), cost, *grads, int(want_grad))
    return cost, grads


def glove_cost(ctx, inputs, cotangents=None):
    xp = ctx.xp
    params = [xp.ascontiguousarray(inputs[k]) for k in GLOVE_PARAMETERS]
    i, j, x = _nonzero_entries(xp, inputs["X"], params[0].dtype)
    g = 1.0 if cotangents is None else _cotangent(cotangents)
    cost, grads = _glove(ctx, params, i, j, x, inputs.get("x_max", 100), inputs.get("alpha", 0.75), g,
                         cotangents is not None)
    return (cost.sum(),) if cotangents is None else dict(zip(GLOVE_PARAMETERS, grads))


# --- the trainers' update steps (seqbench.reference.training), in place on the device --------------


def negative_sampling_step(ctx, state, w_ctx, w_o, w_neg, lr):
    """:func:`seqbench.reference.training.negative_sampling_step` in place: the kernel's update directions per
    slot (``want_grad=2``: one row per context slot and per target, O(B·(M + K)·d)), scatter-added into the
    rows (``add.at``); padding slots carry zero rows."""
    xp = ctx.xp
    E_in, E_out = state["E_in"], state["E_out"]
    in_ids, out_ids, neg_ids = (_ids(xp, xp.asarray(a)) for a in (w_ctx, w_o, w_neg))
    (N, M), K, d = in_ids.shape, neg_ids.shape[1], E_in.shape[1]
    d_in, d_out = xp.zeros((N * M, d), E_in.dtype), xp.zeros((N * (K + 1), d), E_out.dtype)
    ctx.launch_warps("negative_sampling", E_in.dtype.name, N, E_in, E_out, E_out, in_ids, M, out_ids, neg_ids, N, K,
                     d, _scalar(E_in.dtype, 1.0), xp.empty(N, E_in.dtype), xp.empty((N, K + 1), E_in.dtype), d_in,
                     d_out, d_out, 2)
    step = _scalar(E_in.dtype, -lr)
    xp.add.at(E_in, xp.maximum(in_ids, 0).reshape(-1), step * d_in)
    xp.add.at(E_out, xp.concatenate([out_ids[:, None], neg_ids], axis=1).reshape(-1), step * d_out)
    return state


def glove_step(ctx, state, rows, cols, x, lr, x_max=100, alpha=0.75):
    """AdaGrad on the GloVe cost of the batch's entries, in place, on the rows they touch: the kernel's
    gradients per entry (``want_grad=2``), summed per row and applied by
    :func:`~seqbench.backends.row_updates.adagrad_rows` (``G ← G + g²``, ``p ← p − η g/√G``)."""
    xp = ctx.xp
    params = [state[k] for k in GLOVE_PARAMETERS]
    dtype = params[0].dtype
    i, j = _ids(xp, xp.asarray(rows)), _ids(xp, xp.asarray(cols))
    N, d = len(i), params[0].shape[1]
    grads = [xp.zeros((N, d), dtype), xp.zeros((N, d), dtype), xp.zeros(N, dtype), xp.zeros(N, dtype)]
    if N:
        ctx.launch_warps("glove", dtype.name, N, *params, i, j, xp.ascontiguousarray(xp.asarray(x, dtype=dtype)), N,
                         d, _scalar(dtype, x_max), _scalar(dtype, alpha), _scalar(dtype, 1.0), xp.empty(N, dtype),
                         *grads, 2)
    for name, ids, g in zip(GLOVE_PARAMETERS, (i, j, i, j), grads):
        adagrad_rows(xp, state, name, ids, g, _scalar(dtype, lr))
    return state


def embedding_forward(ctx: Context, function: str, inputs: dict) -> tuple:
    return globals()[function](ctx, inputs)


def embedding_vjp(ctx: Context, function: str, cotangents, inputs: dict) -> dict:
    return globals()[function](ctx, inputs, cotangents)
