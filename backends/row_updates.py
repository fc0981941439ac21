"""Row-sparse updates shared by the array backends (``xp``: NumPy, CuPy, or a namespace giving another framework
``unique``, ``zeros_like``, ``add.at`` and ``sqrt``): only the rows a batch touches move.

A trainer step never allocates a ``(V, d)`` gradient nor sweeps the whole
matrix: its cost is the batch's, O(B·d), whatever the vocabulary.
"""

from __future__ import annotations


def adagrad_rows(xp, state: dict, name: str, ids, grads, lr) -> None:
    """AdaGrad on the rows ``ids`` of ``state[name]``, in place (``G = state["G_" + name]``).

    The gradient of a row is the sum of its entries' ``g_r = Σ_{n: ids_n = r} grads_n``
    (a row the batch touches twice gets one update, as the reference's), then
    ``G_r ← G_r + g_r²`` and ``p_r ← p_r − η g_r / √G_r``.
    """
    touched, inverse = xp.unique(ids, return_inverse=True)
    g = xp.zeros_like(grads[:len(touched)])
    xp.add.at(g, inverse.reshape(-1), grads)
    G = state[f"G_{name}"]
    G[touched] += g * g
    state[name][touched] -= lr * g / xp.sqrt(G[touched])
