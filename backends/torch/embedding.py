"""The word-embedding ops in PyTorch: lookup, full softmax, word2vec losses, the GloVe cost.

Same conventions as :mod:`seqbench.reference.embedding`: ``E: (V, d)`` with
row ``w`` the vector ``e_w``; ``E_out=None`` ties the output matrix to
``E_in`` (autograd then sums both uses into one gradient, as the reference
does). A corpus is ``w: (T,)`` word ids and ``c`` the window half-width; the
context pairs (index bookkeeping, no arithmetic) come from the reference's
:func:`~seqbench.reference.embedding.context_pairs`. Shared by every torch
backend.
"""

from __future__ import annotations

import numpy as np
import torch

from seqbench.reference.embedding import context_pairs
from seqbench.backends.row_updates import adagrad_rows
from seqbench.reference.training import GLOVE_PARAMETERS


def _tied(E_in, E_out):
    return E_in if E_out is None else E_out


def embedding_lookup(E, ids):
    """``e_w = E[w]`` for every id: ``(...) -> (..., d)``."""
    return E[ids]


def embedding_one_hot(E, ids):
    """``e_w = E o_w``, the one-hot product (``o_w @ E`` for rows ``E: (V, d)``)."""
    return torch.nn.functional.one_hot(ids, E.shape[0]).to(E.dtype) @ E


def softmax_prob(E_in, E_out, w_i):
    """``p(w_o|w_i) = exp(e_{w_o}·e_{w_i}) / Σ_{w∈V} exp(e_w·e_{w_i})`` for every ``w_o``: ``(..., V)``."""
    return torch.softmax(E_in[w_i] @ _tied(E_in, E_out).T, dim=-1)


def _pairs(w, c):
    """The context pairs ``(t, t + j)``, ``1 ≤ |j| ≤ c``, inside the corpus, as index tensors on ``w``'s device."""
    t, u = context_pairs(len(w), c)
    return torch.as_tensor(t, device=w.device), torch.as_tensor(u, device=w.device)


def _log_p(u, E_out):
    """``log p(·|u) = log softmax(u E_outᵀ)`` for input vectors ``u: (T, d)``: ``(T, V)``."""
    return torch.log_softmax(u @ E_out.T, dim=-1)


def skipgram_loss(E_in, E_out, corpus_ids, c):
    """Skip-gram: ``L = -(1/T) Σ_t Σ_{-c≤j≤c, j≠0} log p(w_{t+j}|w_t)``."""
    w = corpus_ids
    t, u = _pairs(w, c)
    return -_log_p(E_in[w], _tied(E_in, E_out))[t, w[u]].sum() / len(w)


def cbow_pairwise_loss(E_in, E_out, corpus_ids, c):
    """CBOW as the notes write it: ``L = -(1/T) Σ_t Σ_{-c≤j≤c, j≠0} log p(w_t|w_{t+j})``."""
    w = corpus_ids
    t, u = _pairs(w, c)
    return -_log_p(E_in[w], _tied(E_in, E_out))[u, w[t]].sum() / len(w)


def cbow_loss(E_in, E_out, corpus_ids, c):
    """word2vec's CBOW: ``L = -(1/T) Σ_t log p(w_t|h_t)``, ``h_t = (1/|C_t|) Σ_{u∈C_t} e_{w_u}``.

    ``h_t`` is the mean input vector of the context ``C_t`` of position ``t``.
    """
    w, T = corpus_ids, len(corpus_ids)
    t, u = _pairs(w, c)
    n = torch.bincount(t, minlength=T).to(E_in.dtype)  # |C_t| ≥ 1 since T ≥ 2
    h = E_in.new_zeros((T, E_in.shape[1])).index_add(0, t, E_in[w[u]]) / n[:, None]  # (T, d)
    return -_log_p(h, _tied(E_in, E_out))[torch.arange(T, device=w.device), w].sum() / T


def negative_sampling_loss(e_i, e_o, e_neg):
    """``L = -Σ log σ(e_o·e_i) - Σ Σ_{w~P_n} log σ(-e_w·e_i)``.

    The notes' second sum has a sign slip, corrected here as in the reference.
    """
    x = (e_o * e_i).sum(dim=-1)  # (B,)    e_o·e_i
    y = torch.einsum("bkd,bd->bk", e_neg, e_i)  # (B, K)  e_w·e_i
    return -torch.nn.functional.logsigmoid(x).sum() - torch.nn.functional.logsigmoid(-y).sum()


def negative_sampling_lookup_loss(E_in, E_out, w_i, w_o, w_neg):
    """Negative sampling on word ids: ``e_i = E_in[w_i]``, ``e_o = E_out[w_o]``, ``e_w = E_out[w_neg]``."""
    E_out = _tied(E_in, E_out)
    return negative_sampling_loss(E_in[w_i], E_out[w_o], E_out[w_neg])


def _entries(X, like):
    """``(i, j, X_ij)`` of the positive entries of ``X`` (a dense tensor or a scipy sparse matrix)."""
    if hasattr(X, "tocoo"):
        X = X.tocoo()
        X.sum_duplicates()
        keep = X.data > 0
        i, j, x = (np.asarray(a)[keep] for a in (X.row, X.col, X.data))
        return (torch.as_tensor(a, device=like.device) for a in (i, j, x.astype(np.float64)))
    i, j = torch.nonzero(X > 0, as_tuple=True)  # f(0) = 0: zero entries are skipped, never log 0
    return i, j, X[i, j]


def glove_cost(X, theta, e, b, b_prime, x_max=100, alpha=0.75):
    """``J = ½ Σ_{i,j} f(X_ij)(θ_i·e_j + b_i + b'_j - log X_ij)²`` over the nonzero ``X_ij``.

    ``f(x) = min(1, (x/x_max)^α)``; zero entries (``f(0) = 0``) are skipped, never ``log 0``.
    """
    i, j, x = _entries(X, theta)
    return _glove_entries_cost(i, j, x.to(theta.dtype), theta, e, b, b_prime, x_max, alpha)


def _glove_entries_cost(i, j, x, theta, e, b, b_prime, x_max, alpha):
    """The GloVe cost of the entries ``X[i, j] = x > 0``."""
    f = torch.clamp((x / x_max) ** alpha, max=1)
    r = (theta[i] * e[j]).sum(dim=-1) + b[i] + b_prime[j] - torch.log(x)
    return 0.5 * (f * r**2).sum()


def _context_mean(E_in, w_ctx):
    """``h_b = (1/|C_b|) Σ_{m: w_ctx[b,m] ≥ 0} E_in[w_ctx[b,m]]``: (B, d)."""
    present = (w_ctx >= 0).to(E_in.dtype)
    rows = E_in.index_select(0, w_ctx.clamp(min=0).reshape(-1)).view(*w_ctx.shape, -1)  # (B, M, d)
    return ((present / present.sum(dim=1, keepdim=True)).unsqueeze(2) * rows).sum(dim=1)


def cbow_negative_sampling_loss(E_in, E_out, w_ctx, w_o, w_neg):
    """word2vec's CBOW with negative sampling: :func:`negative_sampling_loss` with ``e_i`` the context mean."""
    E_out = _tied(E_in, E_out)
    return negative_sampling_loss(_context_mean(E_in, w_ctx), E_out[w_o], E_out[w_neg])


# --- the trainers' update steps (seqbench.reference.training) ------------------------------------


def _ids(a, device):
    return torch.as_tensor(np.asarray(a, dtype=np.int64), device=device)


def negative_sampling_step(state, w_ctx, w_o, w_neg, lr):
    """:func:`seqbench.reference.training.negative_sampling_step`, in place, an item as small matrix products.

    With ``U_b`` the context rows of item ``b`` (``(M, d)``), ``a_b`` their
    weights ``[present]/|C_b|`` and ``T_b`` its targets (the centre word, then
    the noise words): ``h_b = a_b U_b``, ``s_b = T_b h_b``, ``∂L/∂s = σ(s) − [k = 0]``,
    ``dh_b = (∂L/∂s)ᵀ T_b`` (every context row of the item moves by ``−η dh_b``,
    word2vec's update) and ``dT_b = (∂L/∂s) h_bᵀ``, batched (``bmm``), then
    scatter-added into the rows the batch touches.
    """
    E_in, E_out = state["E_in"], state["E_out"]
    B, d = len(w_o), E_in.shape[1]
    w_ctx = _ids(w_ctx, E_in.device)
    present = (w_ctx >= 0).to(E_in.dtype)  # (B, M)
    rows = w_ctx.clamp(min=0).reshape(-1)
    targets = _ids(np.concatenate([np.asarray(w_o)[:, None], w_neg], axis=1), E_in.device).reshape(-1)
    U = E_in.index_select(0, rows).view(B, -1, d)  # (B, M, d)
    h = torch.bmm((present / present.sum(dim=1, keepdim=True)).unsqueeze(1), U)  # (B, 1, d)
    T = E_out.index_select(0, targets).view(B, -1, d)  # (B, K+1, d)
    ds = torch.sigmoid(torch.bmm(h, T.transpose(1, 2)))  # (B, 1, K+1)
    ds[:, :, 0] -= 1
    ds *= -lr  # the step's −η taken in here: index_add_ with an alpha takes a per-row loop, 4x slower
    dh = torch.bmm(ds, T)  # (B, 1, d)
    E_out.index_add_(0, targets, torch.bmm(ds.transpose(1, 2), h).view(-1, d))
    E_in.index_add_(0, rows, (present.unsqueeze(2) * dh).view(-1, d))
    return state


def skipgram_window_step(state, w_ctx, w_o, w_neg, lr):
    """:func:`seqbench.reference.training.skipgram_window_step`, in place, a window as small matrix products.

    With ``U_b`` the context rows of window ``b`` (``(M, d)``, padding zeroed
    out of the update) and ``T_b`` its targets (the centre word, then the
    shared noise words, ``(K+1, d)``): ``S_b = U_b T_bᵀ``, ``∂L/∂S = σ(S) − [k = 0]``,
    ``dU_b = (∂L/∂S) T_b``, ``dT_b = (∂L/∂S)ᵀ U_b``, all three batched (``bmm``),
    then scatter-added into the rows.
    """
    E_in, E_out = state["E_in"], state["E_out"]
    B, d = len(w_o), E_in.shape[1]
    w_ctx = _ids(w_ctx, E_in.device)
    rows = w_ctx.clamp(min=0).reshape(-1)
    targets = _ids(np.concatenate([np.asarray(w_o)[:, None], w_neg], axis=1), E_in.device).reshape(-1)
    U = E_in.index_select(0, rows).view(B, -1, d)  # (B, M, d)
    T = E_out.index_select(0, targets).view(B, -1, d)  # (B, K+1, d)
    dS = torch.sigmoid(torch.bmm(U, T.transpose(1, 2)))  # (B, M, K+1)
    dS[:, :, 0] -= 1
    dS *= (w_ctx >= 0).unsqueeze(2) * -lr  # −η taken in here: index_add_ with an alpha loops row by row
    E_out.index_add_(0, targets, torch.bmm(dS.transpose(1, 2), U).view(-1, d))
    E_in.index_add_(0, rows, torch.bmm(dS, T).view(-1, d))
    return state


class _RowOps:
    """torch as the array module of :func:`~seqbench.backends.row_updates.adagrad_rows`."""

    unique, zeros_like, sqrt = staticmethod(torch.unique), staticmethod(torch.zeros_like), staticmethod(torch.sqrt)

    class add:
        at = staticmethod(lambda a, ids, values: a.index_add_(0, ids, values))


def glove_step(state, rows, cols, x, lr, x_max=100, alpha=0.75):
    """AdaGrad on the GloVe cost of the batch's entries, in place, on the rows they touch.

    ``q = f(X_ij)(θ_i·e_j + b_i + b'_j − log X_ij)`` per entry, the gradients
    ``q e_j, q θ_i, q, q`` of ``θ_i, e_j, b_i, b'_j`` (all from the old
    parameters), summed per row, then ``G ← G + g²``, ``p ← p − η g/√G``
    (:func:`~seqbench.backends.row_updates.adagrad_rows`).
    """
    theta, e, b, b_prime = (state[k] for k in GLOVE_PARAMETERS)
    i, j = _ids(rows, theta.device), _ids(cols, theta.device)
    x = torch.as_tensor(np.asarray(x), device=theta.device, dtype=theta.dtype)
    q = torch.clamp((x / x_max) ** alpha, max=1) * ((theta[i] * e[j]).sum(dim=1) + b[i] + b_prime[j] - torch.log(x))
    grads = (q[:, None] * e[j], q[:, None] * theta[i], q, q)
    for name, ids, g in zip(GLOVE_PARAMETERS, (i, j, i, j), grads):
        adagrad_rows(_RowOps, state, name, ids, g, lr)
    return state


#: Reference function name -> function.
FUNCTIONS = {fn.__name__: fn for fn in (
    embedding_lookup, embedding_one_hot, softmax_prob, skipgram_loss, cbow_pairwise_loss, cbow_loss,
    negative_sampling_loss, negative_sampling_lookup_loss, cbow_negative_sampling_loss, glove_cost,
)}
