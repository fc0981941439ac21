"""The embedding objectives of the ``cupy`` backend: the kernels of ``kernels/embedding.cu``.

Like :mod:`.cupy_cells`, written against a :class:`~.cupy_cells.Context` (array
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

from .cupy_cells import Context

FUNCTIONS = ("negative_sampling_loss", "negative_sampling_lookup_loss", "glove_cost")


def _scalar(dtype, value):
    return np.dtype(dtype).type(float(value))


def _cotangent(cotangents) -> float:
    g = cotangents[0] if isinstance(cotangents, (tuple, list)) else cotangents
    return float(g)


def _negative_sampling(ctx: Context, E_in, E_out, E_neg, in_ids, out_ids, neg_ids, g, want_grad, tied):
    """``(loss, dE_in, dE_out, dE_neg)``: the kernel over ``N`` items; ``tied``: E_out/E_neg are E_in."""
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


def negative_sampling_lookup_loss(ctx, inputs, cotangents=None):
    xp = ctx.xp
    E_in, E_out = xp.ascontiguousarray(inputs["E_in"]), inputs.get("E_out")
    tied = E_out is None
    E_out = E_in if tied else xp.ascontiguousarray(E_out)
    w_i, w_o, w_neg = (_ids(xp, inputs[k]) for k in ("w_i", "w_o", "w_neg"))
    g = 1.0 if cotangents is None else _cotangent(cotangents)
    loss, dE_in, dE_out, _ = _negative_sampling(ctx, E_in, E_out, E_out, w_i.reshape(-1, 1), w_o, w_neg, g,
                                                cotangents is not None, tied)
    if cotangents is None:
        return (loss,)
    return {"E_in": dE_in} if tied else {"E_in": dE_in, "E_out": dE_out}


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


def glove_cost(ctx, inputs, cotangents=None):
    xp = ctx.xp
    theta, e, b, b_prime = (xp.ascontiguousarray(inputs[k]) for k in ("theta", "e", "b", "b_prime"))
    dtype = theta.dtype
    i, j, x = _nonzero_entries(xp, inputs["X"], dtype)
    N, d = len(x), theta.shape[1]
    want_grad = cotangents is not None
    g = 1.0 if cotangents is None else _cotangent(cotangents)
    cost = xp.empty(N, dtype=dtype)
    grads = [xp.zeros_like(a) for a in (theta, e, b, b_prime)] if want_grad else [cost] * 4
    if N:
        ctx.launch_warps("glove", dtype.name, N, theta, e, b, b_prime, i, j, x, N, d,
                         _scalar(dtype, inputs.get("x_max", 100)), _scalar(dtype, inputs.get("alpha", 0.75)),
                         _scalar(dtype, g), cost, *grads, int(want_grad))
    if not want_grad:
        return (cost.sum(),)
    return dict(zip(("theta", "e", "b", "b_prime"), grads))


def embedding_forward(ctx: Context, function: str, inputs: dict) -> tuple:
    return globals()[function](ctx, inputs)


def embedding_vjp(ctx: Context, function: str, cotangents, inputs: dict) -> dict:
    return globals()[function](ctx, inputs, cotangents)
