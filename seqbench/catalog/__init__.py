"""The op catalog: one entry per op, iterated by conformance, benchmarks and reports.

An entry says which reference function it is (and the arguments it pins,
e.g. ``variant="reset_after"``), how to make inputs for a shape, which shapes
to check, its FLOP and byte model, and what its tolerance scales with.
Adding an op is adding one :class:`Op` to a module listed in ``_ENTRY_MODULES``.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from seqbench import reference

Shape = dict  # named sizes, e.g. {"T": 64, "B": 8, "I": 32, "H": 64, "ragged": 1}


def shape_id(shape: Shape) -> str:
    """A readable id: ``T64-B8-I32-H64``, flags by name (``-ragged``, ``-reverse``)."""
    parts = []
    for key, value in shape.items():
        if isinstance(value, bool) or key in ("ragged", "reverse"):
            if value:
                parts.append(key)
        else:
            parts.append(f"{key}{value}")
    return "-".join(parts)


_STATES = ("x", "h0", "c0")
_MATRICES = ("E_in", "E_out")
#: reference function -> the arguments its gradients are taken with respect to (those present in a call:
#: ``c0`` only for LSTMs, ``E_out`` only when untied); every backend's vjp reads it through :attr:`Op.wrt`
DIFFERENTIATED = {
    "rnn": ("x", "h0", "params"),
    "lstm": (*_STATES, "params"),
    "gru": ("x", "h0", "params"),
    "bidirectional": (*_STATES, "params_fwd", "params_bwd"),
    "stacked": (*_STATES, "params"),
    "sequence_loss": ("logits",),
    "embedding_lookup": ("E",),
    "embedding_one_hot": ("E",),
    "softmax_prob": _MATRICES,
    "skipgram_loss": _MATRICES,
    "cbow_pairwise_loss": _MATRICES,
    "cbow_loss": _MATRICES,
    "negative_sampling_loss": ("e_i", "e_o", "e_neg"),
    "negative_sampling_lookup_loss": _MATRICES,
    "cbow_negative_sampling_loss": _MATRICES,
    "glove_cost": ("theta", "e", "b", "b_prime"),
}


@dataclass(frozen=True)
class Op:
    """One catalog entry.

    ``make_inputs(shape, rng)`` returns float64 inputs (and integer ids) with
    the names of the reference function's arguments; ``fixed`` are the
    arguments the entry pins. ``flops(shape)``/``bytes(shape, itemsize)`` model
    one forward pass; ``fan_in(shape)`` (the longest accumulation feeding an
    output or gradient) and ``steps(shape)`` (the longest chain of stored
    values: the time steps of a recurrence, the scatter-adds a gradient row of
    an embedding can receive) set the tolerance's hard cap (:mod:`.tolerance`);
    ``tokens(shape)`` counts the items a pass processes (for throughput);
    ``output_shapes(inputs)`` gives the shapes of the outputs for checked inputs.
    """

    name: str
    function: str
    outputs: tuple
    make_inputs: Callable[[Shape, np.random.Generator], dict]
    shapes: tuple
    flops: Callable[[Shape], float]
    bytes: Callable[[Shape, int], float]
    fan_in: Callable[[Shape], int]
    steps: Callable[[Shape], int]
    tokens: Callable[[Shape], int]
    output_shapes: Callable[[dict], tuple]
    fixed: dict = field(default_factory=dict)
    large_shapes: tuple = ()
    variant: str = ""
    family: str = "recurrent"
    bad_inputs: Callable[[dict], dict] | None = None
    doc: str = ""

    @property
    def wrt(self) -> tuple:
        """The arguments this op is differentiated with respect to, where present (:data:`DIFFERENTIATED`)."""
        return DIFFERENTIATED[self.function]

    def inputs(self, shape: Shape, seed: int = 0) -> dict:
        """Float64 inputs for ``shape`` (deterministic in ``seed``), pinned arguments included."""
        return {**self.make_inputs(shape, np.random.default_rng(seed)), **self.fixed}

    def reference(self, **inputs) -> tuple:
        """The reference outputs, always as a tuple."""
        out = reference.FORWARD[self.function](**inputs)
        return out if isinstance(out, tuple) else (out,)

    def reference_vjp(self, cotangents, **inputs) -> dict:
        return reference.vjp(self.function, cotangents, **inputs)

    def cotangents(self, outputs: tuple, seed: int = 0) -> tuple:
        """Random cotangents shaped like ``outputs`` (a plain 1.0 for a scalar loss)."""
        rng = np.random.default_rng(seed + 7919)
        if len(outputs) == 1 and np.ndim(outputs[0]) == 0:
            return (1.0,)
        return tuple(rng.standard_normal(np.shape(o)) for o in outputs)


CATALOG: dict[str, Op] = {}
_ENTRY_MODULES = ("seqbench.catalog.recurrent", "seqbench.catalog.embedding")
_loaded = False


def register(op: Op) -> Op:
    if op.name in CATALOG:
        raise ValueError(f"op {op.name!r} is already in the catalog")
    CATALOG[op.name] = op
    return op


def ops() -> dict[str, Op]:
    """Every catalog entry by name (entry modules imported on first use)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _ENTRY_MODULES:
            importlib.import_module(module)
    return CATALOG


def get(name: str) -> Op:
    """The entry called ``name``; a ValueError suggests the closest names, and lists the names there are."""
    catalog = ops()
    if name not in catalog:
        close = difflib.get_close_matches(str(name), catalog, n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise ValueError(f"op must be one of {sorted(catalog)}, got {name!r}" + (f" ({hint.rstrip()})" if hint else ""))
    return catalog[name]


def resolve(name: str, inputs: dict) -> tuple[Op, dict]:
    """The entry for a call ``name(**inputs)`` and the inputs with its pinned arguments.

    A call may name a reference function and pass the argument an entry pins
    (``gru`` with ``variant="reset_after"`` is the entry ``gru_reset_after``);
    an argument that contradicts the named entry is an error.
    """
    op = get(name)
    if any(k in inputs and inputs[k] != v for k, v in op.fixed.items()):
        siblings = [
            c for c in ops().values()
            if c.function == op.function and c.fixed.keys() == op.fixed.keys()
            and all(inputs.get(k, v) == v for k, v in c.fixed.items())
        ]
        if len(siblings) != 1:
            pinned = ", ".join(f"{k}={v!r}" for k, v in op.fixed.items())
            raise ValueError(f"op {op.name!r} computes {pinned}; got {({k: inputs[k] for k in op.fixed if k in inputs})}")
        op = siblings[0]
    return op, {**inputs, **op.fixed}
