"""The notes' sequence loss in JAX: the sum over time steps of the per-step softmax cross-entropy."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sequence_loss(logits, targets, lengths=None):
    """``L = Σ_t Σ_b -log softmax(logits_{t,b})[targets_{t,b}]`` over valid steps: ``(L,)``."""
    T, B = targets.shape
    picked = jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], axis=-1)[..., 0]  # (T, B)
    if lengths is not None:
        picked = jnp.where(jnp.arange(T)[:, None] < lengths, picked, 0)
    return (-picked.sum(),)


FUNCTIONS = {"sequence_loss": sequence_loss}
