"""The notes' sequence loss in PyTorch: the sum over time steps of the per-step softmax cross-entropy.

    L = Σ_t Σ_b -log softmax(logits_{t,b})[targets_{t,b}]   (padded steps excluded)

Shared by every torch backend (there is no native fast path for it beyond
``log_softmax``).
"""

from __future__ import annotations

import torch

from .cells import valid_mask


def sequence_loss(logits, targets, lengths=None):
    """``L = Σ_t Σ_b -log softmax(logits_{t,b})[targets_{t,b}]``; ``logits: (T, B, V)``, a 0-d tensor."""
    T, B = logits.shape[:2]
    picked = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]  # (T, B)
    if lengths is not None:
        picked = torch.where(valid_mask(T, lengths, B, logits.device)[..., 0], picked, 0)
    return -picked.sum()


FUNCTIONS = {"sequence_loss": sequence_loss}
