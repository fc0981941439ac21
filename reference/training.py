"""The update steps of the embedding trainers: one minibatch of SGD (word2vec) or AdaGrad (GloVe).

Each step is the gradient of a loss the reference states, applied to the
parameters; the trainers (:mod:`seqbench.embed`) repeat it over a corpus,
and every backend's step is checked against these (``tests/embed/test_embed.py``:
one minibatch update equals the reference update). The functions return new
arrays and leave their arguments alone.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from .embedding import positive_number, scatter_rows
from .glove import glove_cost_vjp
from .word2vec import cbow_negative_args, context_mean, negative_sampling_loss_vjp


def negative_sampling_step(E_in, E_out, w_ctx, w_o, w_neg, lr):
    """One SGD step of word2vec on :func:`~seqbench.reference.word2vec.cbow_negative_sampling_loss` ``L``.

    ``L`` is *summed* over the ``B`` items, so each item moves the rows it
    touches as one step of word2vec's sequential SGD would (a word in several
    items gets the sum of their updates)::

        E_out ← E_out − η ∂L/∂E_out,    e_u ← e_u − η ∂L/∂h_b  for every context word u of item b

    For skip-gram (``w_ctx: (B, 1)``, the input word of each pair) the second
    is the gradient step too. For CBOW (``(B, M)`` windows padded with
    ``-1``) it is word2vec's own update, which gensim follows: every context
    word gets the whole ``∂L/∂h_b``, not the ``1/|C_b|`` share that is the
    gradient of the mean ``h_b``. Measured on head500 (5 epochs): wordsim353
    ρ 0.062 with this update, 0.019 with the gradient's share, 0.078 for
    gensim. Returns ``(E_in, E_out)``.
    """
    lr = positive_number("lr", lr)
    E_in, E_out, _, w_ctx, w_o, w_neg = cbow_negative_args(E_in, E_out, w_ctx, w_o, w_neg)
    d = negative_sampling_loss_vjp(1.0, context_mean(E_in, w_ctx)[0], E_out[w_o], E_out[w_neg])
    present = w_ctx >= 0
    V = E_in.shape[0]
    dE_in = scatter_rows(w_ctx[present], np.repeat(d["e_i"], present.sum(axis=1), axis=0), V)
    dE_out = scatter_rows(w_o, d["e_o"], V) + scatter_rows(w_neg, d["e_neg"], V)
    return E_in - lr * dE_in, E_out - lr * dE_out


def window_pairs(w_ctx, w_o, w_neg):
    """The skip-gram pairs of windows whose ``K`` noise words are shared: ``(w_ctx (P, 1), w_o (P,), w_neg (P, K))``,
    one pair per context word ``u`` of window ``b`` (``w_ctx[b]``, ``-1`` padding), predicting ``w_o[b]``
    against ``w_neg[b]``, window by window."""
    w_ctx, w_o, w_neg = np.asarray(w_ctx), np.asarray(w_o), np.asarray(w_neg)
    present = w_ctx >= 0
    per_window = present.sum(axis=1)
    return w_ctx[present][:, None], np.repeat(w_o, per_window), np.repeat(w_neg, per_window, axis=0)


def skipgram_window_step(E_in, E_out, w_ctx, w_o, w_neg, lr):
    """One SGD step of skip-gram over whole windows, the noise words shared by a window (HogBatch, Ji et al. 2016).

    Every context word ``u`` of window ``b`` predicts the centre word ``w_o[b]``
    against the same ``K`` noise words ``w_neg[b]``: :func:`negative_sampling_step`
    over :func:`window_pairs`. A window's pairs then share their output rows, so
    a backend can score a window as one small matrix product
    ``(|C_b|, d) × (d, K + 1)``, and a trainer draws ``K`` noise words per window,
    not per pair. Returns ``(E_in, E_out)``.
    """
    return negative_sampling_step(E_in, E_out, *window_pairs(w_ctx, w_o, w_neg), lr)


GLOVE_PARAMETERS = ("theta", "e", "b", "b_prime")


def glove_adagrad_step(params: dict, gradsq: dict, rows, cols, x, lr, x_max=100, alpha=0.75):
    """One AdaGrad step on the GloVe cost of the entries ``(rows, cols, x)`` of ``X``, as GloVe trains.

    For every parameter ``p`` of ``{θ, e, b, b'}`` with gradient ``g =
    ∂J/∂p`` (:func:`~seqbench.reference.glove.glove_cost_vjp` over this batch's
    entries)::

        G ← G + g²,    p ← p − η g / √G

    ``G`` (``gradsq``) starts at 1, as in GloVe's own code, so rows the batch
    does not touch keep their value (``g = 0``). The entries are distinct
    ``(i, j)`` pairs with ``x = X_ij > 0``. Returns ``(params, gradsq)``.
    """
    lr = positive_number("lr", lr)
    rows, cols, x = np.asarray(rows), np.asarray(cols), np.asarray(x, dtype=params["theta"].dtype)
    V = len(params["b"])
    X = scipy.sparse.coo_array((x, (rows, cols)), shape=(V, V))
    grads = glove_cost_vjp(1.0, X, *(params[k] for k in GLOVE_PARAMETERS), x_max=x_max, alpha=alpha)
    new_gradsq = {k: gradsq[k] + grads[k] ** 2 for k in GLOVE_PARAMETERS}
    new_params = {k: params[k] - lr * grads[k] / np.sqrt(new_gradsq[k]) for k in GLOVE_PARAMETERS}
    return new_params, new_gradsq



def glove_state_step(state: dict, rows, cols, x, lr, x_max=100, alpha=0.75) -> dict:
    """:func:`glove_adagrad_step` on one state dict: the parameters and their accumulators ``G_<name>``."""
    params, gradsq = glove_adagrad_step({k: state[k] for k in GLOVE_PARAMETERS},
                                        {k: state[f"G_{k}"] for k in GLOVE_PARAMETERS}, rows, cols, x, lr, x_max, alpha)
    return {**params, **{f"G_{k}": v for k, v in gradsq.items()}}


def negative_sampling_state_step(state: dict, w_ctx, w_o, w_neg, lr) -> dict:
    """:func:`negative_sampling_step` on one state dict ``{"E_in", "E_out"}``."""
    E_in, E_out = negative_sampling_step(state["E_in"], state["E_out"], w_ctx, w_o, w_neg, lr)
    return {"E_in": E_in, "E_out": E_out}


def skipgram_window_state_step(state: dict, w_ctx, w_o, w_neg, lr) -> dict:
    """:func:`skipgram_window_step` on one state dict ``{"E_in", "E_out"}``."""
    E_in, E_out = skipgram_window_step(state["E_in"], state["E_out"], w_ctx, w_o, w_neg, lr)
    return {"E_in": E_in, "E_out": E_out}
