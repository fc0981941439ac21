"""Parameter packing between the notes' names and PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU`` layout.

PyTorch stacks the gates of a layer on the rows of four tensors,
``weight_ih_l{k} (G·H, I)``, ``weight_hh_l{k} (G·H, H)``, ``bias_ih_l{k}`` and
``bias_hh_l{k} (G·H,)`` (suffix ``_reverse`` for the backward direction), and
computes ``W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`` per gate:

* ``nn.RNN`` (tanh): one block, ``h_t = tanh(W_x x_t + W_h h_{t-1} + b)``;
* ``nn.LSTM``: blocks ``i, f, g, o`` = the notes' ``i, f, C~, o``;
* ``nn.GRU``: blocks ``r, z, n`` and ``h_t = (1 - z') n + z' h_{t-1}``, i.e. the
  notes' variant ``reset_after`` with ``z' = 1 - z = σ(-a_z)``: the ``z`` block
  holds the *negated* notes parameters ``-W_zx, -W_zh, -b_zx, -b_zh``. The
  notes' own GRU (reset before the matmul, no biases) has no PyTorch layout.

The notes' RNN and LSTM have one bias per gate where PyTorch has two:
:func:`pack` puts it in ``b_ih`` and zeros in ``b_hh``; :func:`unpack` returns
``b = b_ih + b_hh`` (the function the module computes), or with
``gradient=True`` the gradient ``db = db_ih`` (``= db_hh``).
"""

from __future__ import annotations

import torch

from seqbench.reference.recurrent import cell_for

# PyTorch's gate blocks, in row order: (notes gate, sign of the notes parameters in the block).
GATES = {
    "rnn": (("", 1),),
    "lstm": (("i", 1), ("f", 1), ("C", 1), ("o", 1)),
    "gru": (("r", 1), ("z", -1), ("h", 1)),
}
VARIANT = {"rnn": "notes", "lstm": "notes", "gru": "reset_after"}
MODULES = {"rnn": "nn.RNN(nonlinearity='tanh')", "lstm": "nn.LSTM", "gru": "nn.GRU"}


def _names(cell: str, gate: str) -> tuple:
    """The notes' ``(input weight, recurrent weight, input bias, recurrent bias or None)`` of one gate."""
    if cell == "rnn":
        return "W_x", "W_h", "b", None
    if cell == "lstm":
        return f"W_{gate}x", f"W_{gate}h", f"b_{gate}", None
    return f"W_{gate}x", f"W_{gate}h", f"b_{gate}x", f"b_{gate}h"


def suffix(layer: int = 0, reverse: bool = False) -> str:
    """PyTorch's parameter-name suffix: ``_l0``, ``_l1_reverse``, ..."""
    return f"_l{layer}" + ("_reverse" if reverse else "")


def _signed(sign, t):
    return t if sign == 1 else -t


def pack(cell: str, params: dict, suffix: str = "_l0") -> dict:
    """The notes' ``params`` of one layer and direction as PyTorch's four tensors.

    ``cell``: ``"rnn"``, ``"lstm"`` or ``"gru"`` (variant ``reset_after``
    parameters: PyTorch has no layout for the notes' GRU). Differentiable:
    gradients reach ``params`` through the packed tensors.
    """
    expected = set(cell_for(cell, VARIANT[cell]).param_shapes(1, 1))
    if set(params) != expected:
        raise ValueError(
            f"{MODULES.get(cell, cell)} packs the parameters {sorted(expected)} of the notes' {cell.upper()}"
            f"{' (variant reset_after)' if cell == 'gru' else ''}; got {sorted(params)}"
        )
    gates = [(sign, _names(cell, g)) for g, sign in GATES[cell]]
    packed = {
        "weight_ih": [_signed(s, params[n[0]]) for s, n in gates],
        "weight_hh": [_signed(s, params[n[1]]) for s, n in gates],
        "bias_ih": [_signed(s, params[n[2]]) for s, n in gates],
        "bias_hh": [_signed(s, params[n[3]]) if n[3] else torch.zeros_like(params[n[2]]) for s, n in gates],
    }
    return {f"{k}{suffix}": torch.cat(blocks) for k, blocks in packed.items()}


def unpack(cell: str, torch_params: dict, suffix: str = "_l0", gradient: bool = False) -> dict:
    """PyTorch's four tensors of one layer and direction as the notes' parameters (inverse of :func:`pack`).

    With ``gradient=True`` the tensors are gradients: a single notes bias
    gets ``db_ih``, not ``db_ih + db_hh``.
    """
    n = len(GATES[cell])
    blocks = {k: torch_params[f"{k}{suffix}"].chunk(n) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    notes = {}
    for k, (gate, sign) in enumerate(GATES[cell]):
        wx, wh, bx, bh = _names(cell, gate)
        notes[wx] = _signed(sign, blocks["weight_ih"][k])
        notes[wh] = _signed(sign, blocks["weight_hh"][k])
        if bh:
            notes[bx] = _signed(sign, blocks["bias_ih"][k])
            notes[bh] = _signed(sign, blocks["bias_hh"][k])
        else:
            notes[bx] = _signed(sign, blocks["bias_ih"][k] if gradient else blocks["bias_ih"][k] + blocks["bias_hh"][k])
    return {name: notes[name] for name in cell_for(cell, VARIANT[cell]).param_shapes(1, 1)}


def pack_layers(cell: str, layers: list) -> dict:
    """A whole module's parameters: ``layers[k]`` is ``[params]`` or ``[params_fwd, params_bwd]`` of layer ``k``."""
    packed = {}
    for layer, directions in enumerate(layers):
        for direction, params in enumerate(directions):
            packed.update(pack(cell, params, suffix(layer, direction == 1)))
    return packed
