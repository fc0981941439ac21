"""Central finite differences: the independent check of every hand-written gradient.

``numerical_vjp(fn, cotangents, inputs, like)`` differentiates the scalar
``L = Σ_k ⟨cotangents[k], outputs[k]⟩`` with respect to every input leaf that
``like`` (an analytic gradient dict) names, one element at a time::

    ∂L/∂u_j ≈ (L(u + δ e_j) - L(u - δ e_j)) / 2δ

In float64 with ``δ = 1e-6`` the truncation and rounding errors are both
around 1e-9 relative, far below any real bug.
"""

from __future__ import annotations

import copy

import numpy as np

from seqbench.backends.protocol import tree_get, tree_leaves


def _set(tree, path, value):
    tree_get(tree, path[:-1])[path[-1]] = value


def numerical_vjp(fn, cotangents, inputs: dict, like: dict, delta: float = 1e-6) -> dict:
    """Finite-difference gradients with the structure of ``like``."""

    def loss(args):
        out = fn(**args)
        out = out if isinstance(out, tuple) else (out,)
        return sum(float(np.sum(np.asarray(c) * o)) for c, o in zip(cotangents, out) if c is not None)

    result = copy.deepcopy(like)
    work = copy.deepcopy(inputs)
    for path, analytic in tree_leaves(like):
        base = np.array(tree_get(inputs, path), dtype=np.float64)
        grad = np.zeros_like(base)
        for j in np.ndindex(base.shape):
            for sign in (1, -1):
                bumped = base.copy()
                bumped[j] += sign * delta
                _set(work, path, bumped)
                grad[j] += sign * loss(work)
            grad[j] /= 2 * delta
        _set(work, path, base)
        _set(result, path, grad)
    return result


def max_difference(a: dict, b: dict) -> tuple[float, tuple]:
    """The largest ``|a - b| / (1 + |b|)`` over matching leaves, and where it is."""
    worst, where = 0.0, ()
    for path, leaf in tree_leaves(a):
        other = tree_get(b, path)
        diff = float(np.max(np.abs(leaf - other) / (1 + np.abs(other)), initial=0.0))
        if diff > worst:
            worst, where = diff, path
    return worst, where
