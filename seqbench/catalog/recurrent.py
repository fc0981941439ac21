"""Catalog entries of the recurrent ops: the cells, bidirectional and stacked RNNs, the sequence loss."""

from __future__ import annotations

import copy

import numpy as np

from seqbench.catalog import Op, register
from seqbench.reference.recurrent import cell_for

# Per step and sequence: gate count (matmuls of (H+I) -> H each) and elementwise FLOPs per unit.
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_ELEMENTWISE = {"rnn": 2, "lstm": 12, "gru": 10}

SHAPES = (
    {"T": 5, "B": 3, "I": 4, "H": 6, "ragged": True},
    {"T": 5, "B": 3, "I": 4, "H": 6, "ragged": True, "reverse": True},
    {"T": 32, "B": 8, "I": 16, "H": 32},
)
LARGE_SHAPES = ({"T": 256, "B": 4, "I": 256, "H": 256, "ragged": True},)


def _params(cell, I, H, rng):
    """Parameters drawn like PyTorch's default: ``U(-1/√H, 1/√H)``."""
    k = 1 / np.sqrt(H)
    return {name: rng.uniform(-k, k, shape) for name, shape in cell.param_shapes(I, H).items()}


def _lengths(s, rng):
    """Ragged lengths covering a full, a partial and an empty sequence; ``None`` when not ragged."""
    if not s.get("ragged"):
        return None
    lengths = rng.integers(0, s["T"] + 1, s["B"])
    lengths[:3] = [s["T"], s["T"] // 2, 0][: s["B"]]
    return lengths


def _states(cell_name, lead, B, H, rng):
    names = ("h0", "c0") if cell_name == "lstm" else ("h0",)
    return {k: 0.5 * rng.standard_normal(lead + (B, H)) for k in names}


def _cell_inputs(cell_name, variant=None):
    def make(s, rng):
        cell = cell_for(cell_name, variant or "notes")
        return {
            "x": rng.standard_normal((s["T"], s["B"], s["I"])),
            "params": _params(cell, s["I"], s["H"], rng),
            **_states(cell_name, (), s["B"], s["H"], rng),
            "lengths": _lengths(s, rng),
            "reverse": bool(s.get("reverse", False)),
        }

    return make


def _bidirectional_inputs(cell_name, variant):
    def make(s, rng):
        cell = cell_for(cell_name, variant)
        return {
            "x": rng.standard_normal((s["T"], s["B"], s["I"])),
            "params_fwd": _params(cell, s["I"], s["H"], rng),
            "params_bwd": _params(cell, s["I"], s["H"], rng),
            **_states(cell_name, (2,), s["B"], s["H"], rng),
            "lengths": _lengths(s, rng),
        }

    return make


def _stacked_inputs(cell_name, variant):
    def make(s, rng):
        cell = cell_for(cell_name, variant)
        L = s.get("L", 2)
        return {
            "x": rng.standard_normal((s["T"], s["B"], s["I"])),
            "params": [_params(cell, s["I"] if layer == 0 else s["H"], s["H"], rng) for layer in range(L)],
            **_states(cell_name, (L,), s["B"], s["H"], rng),
            "lengths": _lengths(s, rng),
            "reverse": bool(s.get("reverse", False)),
        }

    return make


def _cell_flops(cell_name, I, H):
    """Forward FLOPs of one step of one sequence: ``2 g H (H + I)`` for the matmuls plus the gates."""
    return 2 * _GATES[cell_name] * H * (H + I) + _ELEMENTWISE[cell_name] * H


def _cell_params(cell_name, I, H):
    return _GATES[cell_name] * H * (H + I + 2)


def _model(cell_name, passes):
    """FLOP and byte models of single-cell passes ``passes(shape) -> [(I, H), ...]``
    (one for a cell, two for a bidirectional RNN, ``L`` for a stack)."""

    def flops(s):
        return s["T"] * s["B"] * sum(_cell_flops(cell_name, I, H) for I, H in passes(s))

    def nbytes(s, itemsize):
        states = 2 if cell_name == "lstm" else 1
        per_pass = [
            _cell_params(cell_name, I, H) + s["T"] * s["B"] * H + 2 * states * s["B"] * H for I, H in passes(s)
        ]
        return itemsize * (s["T"] * s["B"] * s["I"] + sum(per_pass))

    return flops, nbytes


def _output_shapes(cell_name, kind):
    """Output shapes from checked inputs: ``y`` then the final state(s)."""
    states = 2 if cell_name == "lstm" else 1

    def shapes(inputs):
        T, B = inputs["x"].shape[:2]
        if kind == "bidirectional":
            H = len(inputs["params_fwd"][next(iter(inputs["params_fwd"]))])
            return ((T, B, 2 * H),) + ((2, B, H),) * states
        if kind == "stacked":
            H = len(inputs["params"][0][next(iter(inputs["params"][0]))])
            return ((T, B, H),) + ((len(inputs["params"]), B, H),) * states
        H = len(inputs["params"][next(iter(inputs["params"]))])
        return ((T, B, H),) + ((B, H),) * states

    return shapes


def _bad_recurrent(inputs):
    """Broken variants of valid recurrent inputs, keyed by what is wrong."""
    key = "params_fwd" if "params_fwd" in inputs else "params"
    x, h0, lengths = inputs["x"], inputs["h0"], inputs["lengths"]
    T, B = x.shape[:2]

    def first_params(i):
        return i[key][0] if isinstance(i[key], list) else i[key]

    def edit(change):
        broken = copy.deepcopy(inputs)
        change(broken)
        return broken

    first = next(iter(first_params(inputs)))
    bad_lengths = np.full(B, T) if lengths is None else lengths.copy()
    return {
        "x-not-3d": edit(lambda i: i.update(x=x[0])),
        "x-integer": edit(lambda i: i.update(x=x.astype(np.int64))),
        "x-nan": edit(lambda i: i["x"].__setitem__((0, 0, 0), np.nan)),
        "h0-batch": edit(lambda i: i.update(h0=np.delete(h0, 0, axis=-2))),
        "params-missing": edit(lambda i: first_params(i).pop(first)),
        "params-extra": edit(lambda i: first_params(i).update(W_extra=np.zeros(3))),
        "params-shape": edit(lambda i: first_params(i).update({first: np.zeros((2, 1))})),
        "lengths-above-T": edit(lambda i: i.update(lengths=np.where(np.arange(B) == 0, T + 1, bad_lengths))),
        "lengths-negative": edit(lambda i: i.update(lengths=np.where(np.arange(B) == 0, -1, bad_lengths))),
        "lengths-float": edit(lambda i: i.update(lengths=bad_lengths.astype(float))),
    }


def _cell_entry(name, cell_name, fixed=None, shapes=SHAPES):
    variant = (fixed or {}).get("variant")
    flops, nbytes = _model(cell_name, lambda s: [(s["I"], s["H"])])
    return Op(
        name=name,
        function=cell_name,
        fixed=fixed or {},
        outputs=("y", "h_T", "C_T") if cell_name == "lstm" else ("y", "h_T"),
        make_inputs=_cell_inputs(cell_name, variant),
        shapes=shapes,
        large_shapes=() if shapes is not SHAPES else LARGE_SHAPES,  # never the same case twice
        flops=flops,
        bytes=nbytes,
        fan_in=lambda s: s["H"] + s["I"],
        steps=lambda s: s["T"],
        tokens=lambda s: s["T"] * s["B"],
        output_shapes=_output_shapes(cell_name, "cell"),
        variant=variant or "notes",
        bad_inputs=_bad_recurrent,
        doc=f"{cell_name.upper()} over a sequence" + (f", GRU variant {variant!r}" if variant else ""),
    )


for _name, _cell, _fixed in (
    ("rnn", "rnn", None),
    ("lstm", "lstm", None),
    ("gru", "gru", {"variant": "notes"}),
    ("gru_reset_after", "gru", {"variant": "reset_after"}),
):
    # the LSTM carries one large shape (T = H = 256) into every run: the representative large case
    register(_cell_entry(_name, _cell, _fixed, SHAPES + LARGE_SHAPES if _name == "lstm" else SHAPES))


for _cell, _variant in (("rnn", "notes"), ("lstm", "notes"), ("gru", "notes"), ("gru", "reset_after")):
    _fixed = {"cell": _cell, **({"variant": _variant} if _cell == "gru" else {})}
    _suffix = "_reset_after" if _variant == "reset_after" else ""
    flops, nbytes = _model(_cell, lambda s: [(s["I"], s["H"])] * 2)
    register(Op(
        name=f"bidirectional_{_cell}{_suffix}",
        function="bidirectional",
        fixed=_fixed,
        outputs=("y", "h_T", "C_T") if _cell == "lstm" else ("y", "h_T"),
        make_inputs=_bidirectional_inputs(_cell, _variant),
        shapes=SHAPES[:1] + SHAPES[2:],
        large_shapes=LARGE_SHAPES,
        flops=flops, bytes=nbytes,
        fan_in=lambda s: s["H"] + s["I"], steps=lambda s: s["T"], tokens=lambda s: s["T"] * s["B"],
        output_shapes=_output_shapes(_cell, "bidirectional"),
        variant=_variant, bad_inputs=_bad_recurrent,
        doc=f"bidirectional {_cell.upper()}{_suffix}: forward and reversed passes, outputs concatenated",
    ))
    flops, nbytes = _model(_cell, lambda s: [(s["I"], s["H"])] + [(s["H"], s["H"])] * (s.get("L", 2) - 1))
    register(Op(
        name=f"stacked_{_cell}{_suffix}",
        function="stacked",
        fixed=_fixed,
        outputs=("y", "h_T", "C_T") if _cell == "lstm" else ("y", "h_T"),
        make_inputs=_stacked_inputs(_cell, _variant),
        shapes=tuple({**s, "L": 2} for s in SHAPES),
        large_shapes=tuple({**s, "L": 2} for s in LARGE_SHAPES),
        flops=flops, bytes=nbytes,
        fan_in=lambda s: 2 * s["H"] + s["I"], steps=lambda s: s["T"] * s.get("L", 2),
        tokens=lambda s: s["T"] * s["B"],
        output_shapes=_output_shapes(_cell, "stacked"),
        variant=_variant, bad_inputs=_bad_recurrent,
        doc=f"deep {_cell.upper()}{_suffix}: L stacked layers, each reading the outputs of the one below",
    ))


def _loss_inputs(s, rng):
    return {
        "logits": 3 * rng.standard_normal((s["T"], s["B"], s["V"])),
        "targets": rng.integers(0, s["V"], (s["T"], s["B"])),
        "lengths": _lengths(s, rng),
    }


def _bad_loss(inputs):
    logits, targets = inputs["logits"], inputs["targets"]
    V = logits.shape[-1]
    return {
        "logits-not-3d": {**inputs, "logits": logits[0]},
        "logits-nan": {**inputs, "logits": np.where(np.arange(V) == 0, np.nan, logits)},
        "targets-out-of-range": {**inputs, "targets": np.where(targets == targets.flat[0], V, targets)},
        "targets-float": {**inputs, "targets": targets.astype(float)},
        "targets-shape": {**inputs, "targets": targets[:-1]},
    }


register(Op(
    name="sequence_loss",
    function="sequence_loss",
    outputs=("loss",),
    make_inputs=_loss_inputs,
    shapes=({"T": 5, "B": 3, "V": 7, "ragged": True}, {"T": 32, "B": 8, "V": 100}),
    large_shapes=({"T": 256, "B": 16, "V": 10000},),
    flops=lambda s: 4 * s["T"] * s["B"] * s["V"],
    bytes=lambda s, itemsize: itemsize * s["T"] * s["B"] * s["V"],
    fan_in=lambda s: s["V"] + s["T"] * s["B"],  # the softmax denominator, then the sum over steps
    steps=lambda s: 4,  # shift, exp-sum, log, pick: no recurrence
    tokens=lambda s: s["T"] * s["B"],
    output_shapes=lambda inputs: ((),),
    bad_inputs=_bad_loss,
    doc="sum over time steps of the softmax cross-entropy",
))
