"""The ``numpy`` backend: the reference itself, run in float32 or float64 on the CPU.

It is the CPU baseline every other backend is compared with for speed; in
float64 it is the oracle, so its float64 conformance checks the harness.
"""

from __future__ import annotations

import numpy as np

from seqbench import catalog
from seqbench.backends.protocol import Backend, TrainingSteps, Traits
from seqbench.backends.row_updates import adagrad_rows
from seqbench.reference.glove import weighting
from seqbench.reference.primitives import sigmoid
from seqbench.reference.training import GLOVE_PARAMETERS
from seqbench.reference.word2vec import context_mean


def negative_sampling_step(state, w_ctx, w_o, w_neg, lr):
    """:func:`seqbench.reference.training.negative_sampling_step` on the rows the batch touches, in place.

    ``s_bk = e_k·h_b`` for the targets ``k`` (the centre word, then the noise
    words), ``ds_b0 = σ(s_b0) − 1``, ``ds_bk = σ(s_bk)``; ``E_out[k] −= η ds_bk h_b``
    and every context row of item ``b`` ``−= η Σ_k ds_bk e_k``, scatter-added
    (``np.add.at``): O(B·K·d) a step, never a (V, d) gradient.
    """
    E_in, E_out = state["E_in"], state["E_out"]
    w_ctx = np.asarray(w_ctx)
    targets = np.concatenate([np.asarray(w_o)[:, None], w_neg], axis=1)  # (B, K+1)
    h = context_mean(E_in, w_ctx)[0]  # (B, d)
    e = E_out[targets]  # (B, K+1, d)
    ds = sigmoid(np.einsum("bkd,bd->bk", e, h))
    ds[:, 0] -= 1
    dh = np.einsum("bk,bkd->bd", ds, e)
    np.add.at(E_out, targets.reshape(-1), (-lr * ds[..., None] * h[:, None, :]).reshape(-1, h.shape[1]))
    present = w_ctx >= 0
    np.add.at(E_in, w_ctx[present], np.repeat(-lr * dh, present.sum(axis=1), axis=0))
    return state


def skipgram_window_step(state, w_ctx, w_o, w_neg, lr):
    """:func:`seqbench.reference.training.skipgram_window_step` on the rows the batch touches, in place.

    A window's context rows ``U_b`` against its targets ``T_b`` (the centre
    word, then the shared noise words): ``S_b = U_b T_bᵀ``, ``∂L/∂S = σ(S) − [k = 0]``
    (padding masked), ``dU_b = (∂L/∂S) T_b``, ``dT_b = (∂L/∂S)ᵀ U_b`` (batched
    ``matmul``), scatter-added.
    """
    E_in, E_out = state["E_in"], state["E_out"]
    w_ctx = np.asarray(w_ctx)
    rows = np.maximum(w_ctx, 0)
    targets = np.concatenate([np.asarray(w_o)[:, None], w_neg], axis=1)  # (B, K+1)
    U, T = E_in[rows], E_out[targets]  # (B, M, d), (B, K+1, d)
    dS = sigmoid(U @ T.transpose(0, 2, 1))  # (B, M, K+1)
    dS[:, :, 0] -= 1
    dS *= w_ctx[..., None] >= 0
    d = E_in.shape[1]
    np.add.at(E_out, targets.reshape(-1), (-lr * dS.transpose(0, 2, 1) @ U).reshape(-1, d))
    np.add.at(E_in, rows.reshape(-1), (-lr * dS @ T).reshape(-1, d))
    return state


def glove_step(state, rows, cols, x, lr, x_max=100, alpha=0.75):
    """:func:`seqbench.reference.training.glove_adagrad_step` on the rows the batch touches, in place.

    ``q = f(X_ij)(θ_i·e_j + b_i + b'_j − log X_ij)`` per entry; each touched
    row's gradient (``Σ q e_j`` for ``θ_i``, ``Σ q θ_i`` for ``e_j``, ``Σ q`` for
    the biases) then ``G += g²``, ``p −= η g/√G`` on those rows only.
    """
    theta, e, b, b_prime = (state[k] for k in GLOVE_PARAMETERS)
    rows, cols = np.asarray(rows), np.asarray(cols)
    x = np.asarray(x, dtype=theta.dtype)
    q = weighting(x, x_max, alpha) * ((theta[rows] * e[cols]).sum(axis=1) + b[rows] + b_prime[cols] - np.log(x))
    grads = (q[:, None] * e[cols], q[:, None] * theta[rows], q, q)  # every one from the old parameters
    for name, ids, g in zip(GLOVE_PARAMETERS, (rows, cols, rows, cols), grads):
        adagrad_rows(np, state, name, ids, g, lr)
    return state


class NumpyBackend(Backend):
    name = "numpy"
    traits = Traits(implementation="NumPy reference", left_out_of_grids={"gpu": "numpy runs on the CPU only"})
    dtypes_by_device = {"cpu": ("float32", "float64")}

    def implemented(self):
        return set(catalog.ops())

    def to_device(self, array, device, dtype):
        return np.asarray(array, dtype=dtype) if dtype else np.asarray(array)

    def to_numpy(self, array):
        return np.asarray(array)

    def forward_impl(self, op, device, dtype):
        return op.reference

    def vjp_impl(self, op, device, dtype):
        return op.reference_vjp

    def training_steps(self, device, dtype):
        return TrainingSteps(negative_sampling_step, glove_step, skipgram_windows=skipgram_window_step)

    def versions(self):
        import scipy

        return {"numpy": np.__version__, "scipy": scipy.__version__}
