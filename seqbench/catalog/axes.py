"""Benchmark axes: which catalog shape keys a benchmark varies, under which parameter names, and the shape it runs.

The asv suite (``benchmarks/common.py``) builds its parameters and shapes from
these; the reports read benchmark parameters back into catalog shapes with
them, so both sides agree on ``seq_len`` being ``T`` and on the sizes that
are not on an axis.
"""

from __future__ import annotations

#: catalog shape key -> asv parameter name, in the order the parameters come
AXES = {"T": "seq_len", "H": "hidden", "V": "vocab", "d": "dim", "B": "batch", "N": "words"}
#: shape keys that are flags, dropped from the benchmark shape
FLAGS = ("ragged", "reverse", "tied")
#: other parameter names read as shape keys (suites that name their sizes otherwise, e.g. a third party's)
ALIASES = {
    "seq_length": "T", "length": "T", "steps": "T", "hidden_size": "H", "batch_size": "B",
    "input": "I", "input_size": "I", "layers": "L", "num_layers": "L", "vocab_size": "V", "embedding_dim": "d",
    "negatives": "K", "corpus": "N", "window": "c",
}
#: the sizes a benchmark row can have, in the order tables show them
SHAPE_KEYS = ("T", "H", "B", "I", "L", "V", "d", "K", "N", "c")


def shape_key(param_name: str) -> str:
    """The catalog shape key a benchmark parameter names (``seq_len`` -> ``T``); any other name is itself."""
    return {**{name: key for key, name in AXES.items()}, **ALIASES}.get(param_name, param_name)


def base_shape(op) -> dict:
    """The op's last catalog shape without flags: sizes not on an axis come from it."""
    plain = [s for s in op.shapes if not any(s.get(flag) for flag in FLAGS)] or list(op.shapes)
    return {k: v for k, v in plain[-1].items() if k not in FLAGS}


def shape_axes(op) -> list[tuple[str, str]]:
    """``(shape key, parameter name)`` of the op's sizes that are benchmark axes, in :data:`AXES` order."""
    return [(key, name) for key, name in AXES.items() if key in base_shape(op)]


def bench_shape(op, sizes: dict) -> dict:
    """The shape benchmarked for axis values ``sizes`` (shape key -> value); ``I`` follows ``H`` unless given."""
    shape = {**base_shape(op), **sizes}
    if "I" in shape and "H" in sizes and "I" not in sizes:
        shape["I"] = sizes["H"]
    return shape
