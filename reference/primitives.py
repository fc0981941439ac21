"""The few functions every equation of the notes is written with.

Batches are rows: a hidden state is ``h: (B, H)``. The notes write a
matrix-vector product ``W h`` for one column vector; for a batch of row
vectors that is ``h @ W.T``, spelled ``mv(W, h)`` so the code reads like the
equation.
"""

import numpy as np


def mv(W: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``W v`` for every row ``v`` of a batch: ``(B, n) -> (B, m)`` for ``W: (m, n)``."""
    return v @ W.T


def sigmoid(a: np.ndarray) -> np.ndarray:
    """``σ(a) = 1 / (1 + exp(-a))``, evaluated without overflow for large ``|a|``."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def outer_sum(da: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``Σ_b da_b v_bᵀ``: the gradient of ``W`` in ``mv(W, v)`` given ``da = dL/d(W v)``."""
    return da.T @ v
