"""The recurrent ops through PyTorch's native modules: ``nn.RNN`` (tanh), ``nn.LSTM``, ``nn.GRU`` (cuDNN on GPU).

Each call packs the notes' parameters into the module's layout
(:mod:`.packing`, differentiable, so gradients reach the notes' names)
and runs the module with :func:`torch.func.functional_call`. Bidirectional and
stacked RNNs are one module call (``bidirectional=True``, ``num_layers=L``).

``nn.GRU`` computes the GRU variant ``reset_after``, never the notes' GRU.

Ragged batches go through packed sequences (``pack_padded_sequence`` with
``enforce_sorted=False``), which reject length-0 sequences: only the
sequences with at least one step run; the others keep their initial state
and emit zeros, as in the reference. ``reverse`` reverses each sequence
within its length before and after the module (a stack read backwards is the
stack run over the reversed input).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .cells import RECURRENT, reverse_within_lengths, state_args
from .packing import pack_layers

_MODULES = {"rnn": lambda **kw: nn.RNN(nonlinearity="tanh", **kw), "lstm": nn.LSTM, "gru": nn.GRU}


class Native:
    """The reference's recurrent functions (same names and arguments) through native modules."""

    def __init__(self):
        self._modules: dict = {}

    def module(self, cell: str, I: int, H: int, layers: int = 1, bidirectional: bool = False) -> nn.Module:
        """A module of this configuration on the ``meta`` device: :func:`functional_call` supplies the weights."""
        key = (cell, I, H, layers, bidirectional)
        if key not in self._modules:
            self._modules[key] = _MODULES[cell](
                input_size=I, hidden_size=H, num_layers=layers, bidirectional=bidirectional, device="meta"
            )
        return self._modules[key]

    def run(self, cell, x, layers: list, states: tuple, lengths=None, reverse=False) -> tuple:
        """``(y, *final states)`` of a module with ``layers[k] = [params]`` or ``[params_fwd, params_bwd]``.

        ``states``: ``(h0,)`` or ``(h0, c0)``, each ``(L·D, B, H)``.
        """
        H = states[0].shape[-1]
        module = self.module(cell, x.shape[-1], H, len(layers), len(layers[0]) == 2)
        weights = pack_layers(cell, layers)
        if reverse:
            x = reverse_within_lengths(x, lengths)
        width = H * len(layers[0])  # y: (T, B, D·H)
        y, finals = _ragged(lambda x, s: _call(module, weights, x, s), x, states, lengths, width)
        if reverse:
            y = reverse_within_lengths(y, lengths)
        return (y, *finals)

    def rnn(self, x, params, h0, lengths=None, reverse=False):
        y, h = self.run("rnn", x, [[params]], (h0[None],), lengths, reverse)
        return y, h[0]

    def lstm(self, x, params, h0, c0, lengths=None, reverse=False):
        y, h, c = self.run("lstm", x, [[params]], (h0[None], c0[None]), lengths, reverse)
        return y, h[0], c[0]

    def gru(self, x, params, h0, lengths=None, reverse=False, variant="notes"):
        _reset_after_only("gru", variant)
        y, h = self.run("gru", x, [[params]], (h0[None],), lengths, reverse)
        return y, h[0]

    def bidirectional(self, cell, x, params_fwd, params_bwd, h0, c0=None, lengths=None, variant="notes"):
        _reset_after_only(cell, variant)
        return self.run(cell, x, [[params_fwd, params_bwd]], state_args(cell, h0, c0), lengths)

    def stacked(self, cell, x, params, h0, c0=None, lengths=None, reverse=False, variant="notes"):
        _reset_after_only(cell, variant)
        return self.run(cell, x, [[p] for p in params], state_args(cell, h0, c0), lengths, reverse)

    def functions(self) -> dict:
        """Reference function name -> function."""
        return {name: getattr(self, name) for name in RECURRENT}


def _reset_after_only(cell, variant):
    if cell == "gru" and variant != "reset_after":
        raise ValueError(f"nn.GRU computes the GRU variant 'reset_after', not {variant!r}")


def _call(module, weights, x, states):
    """One module call; ``x`` a padded tensor or a packed sequence. Returns ``(y, final states tuple)``.

    The packed weights are fresh tensors, so cuDNN copies them into one
    buffer per call; its warning about that is expected here and silenced.
    """
    hx = states if len(states) == 2 else states[0]  # nn.LSTM takes (h0, c0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous chunk")
        y, finals = functional_call(module, weights, (x, hx))
    return y, finals if isinstance(finals, tuple) else (finals,)


def _ragged(call, x, states, lengths, width):
    """``call(x, states)`` on a ragged batch via packed sequences, length-0 sequences left out.

    ``states`` are ``(L·D, B, H)``, ``y`` is ``(T, B, width)``; a left-out
    sequence keeps its initial state and emits zeros.
    """
    if lengths is None:
        return call(x, states)
    T, B = x.shape[:2]
    keep = torch.nonzero(lengths).flatten()  # sequences with at least one step
    if len(keep) == 0:
        return x.new_zeros((T, B, width)), states
    if len(keep) < B:
        x, kept_states = x[:, keep], tuple(s[:, keep] for s in states)
    else:
        kept_states = states
    packed = pack_padded_sequence(x, lengths[keep].cpu(), enforce_sorted=False)
    out, finals = call(packed, kept_states)
    y, _ = pad_packed_sequence(out, total_length=T)  # zeros on padded steps
    if len(keep) == B:
        return y, finals
    y = y.new_zeros((T, B, y.shape[-1])).index_copy(1, keep, y)
    return y, tuple(s.index_copy(1, keep, f) for s, f in zip(states, finals))
