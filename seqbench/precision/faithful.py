"""A faithful same-precision implementation: the reference itself, run on arrays that round like the tested precision.

The tolerance model (:mod:`seqbench.precision.tolerance`) calibrates each conformance
case by the error of a plain implementation of the reference's equations in
the tested precision. That implementation is not written twice: it is the
reference, run on :class:`Rounded` arrays, which compute every NumPy
operation in float32 and store the result as the precision would:

* ``float16`` / ``bfloat16``: every computed value (each gate, state, output,
  gradient term) is rounded to the storage format; matmuls and reductions
  accumulate in float32, then round — what an eager framework does with
  half-precision tensors;
* ``tf32``: float32 storage, the inputs of matmuls (``@``, ``np.einsum``,
  ``np.dot``) rounded to TF32's 10 mantissa bits (round to nearest even),
  float32 accumulation — what TF32 tensor cores do;
* ``float32``: plain float32 arrays (no emulation needed).

Rounding is idempotent, so structural operations (stacking, indexing,
``np.where``) pass values through unchanged.
"""

from __future__ import annotations

import numpy as np

from seqbench.backends.protocol import tree_map

#: the precisions this module emulates, and the storage each rounds to
EMULATED = ("float16", "bfloat16", "tf32")


def round_to(array, precision: str) -> np.ndarray:
    """``array`` rounded (to nearest, ties to even) to ``precision``, returned as float64.

    ``precision``: a dtype name, or ``"tf32"`` (float32 with 10 mantissa bits).
    """
    array = np.asarray(array, dtype=np.float64)
    if precision in ("bfloat16", "tf32"):
        drop = 16 if precision == "bfloat16" else 13  # mantissa bits of float32 that the format lacks
        bits = array.astype(np.float32).view(np.uint32)
        half = np.uint32((1 << (drop - 1)) - 1)
        rounded = (bits + half + ((bits >> drop) & 1)) & np.uint32(~((1 << drop) - 1) & 0xFFFFFFFF)
        return rounded.astype(np.uint32).view(np.float32).astype(np.float64)
    return array.astype(precision).astype(np.float64)


class Rounded(np.ndarray):
    """A float32 array whose every computed value is stored as ``precision`` (see the module docstring).

    Make one with :func:`rounded`; NumPy ufuncs (arithmetic, ``exp``, ``tanh``,
    ``@``, ``.sum()``) and NumPy functions (``np.where``, ``np.stack``, ...)
    on it return ``Rounded`` arrays of the same precision.
    """

    precision = "float32"

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = [_plain(x) for x in inputs]
        if method == "at":
            return self._at(ufunc, *plain)
        if ufunc is np.matmul and self.precision == "tf32":
            plain = [_store(x, "tf32") for x in plain]
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if out is not None:
            for o in kwargs["out"]:
                o[...] = _store(o, self._storage())
            return out[0] if len(out) == 1 else out
        return self._wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        args, kwargs = tree_map(_plain, args), tree_map(_plain, kwargs)
        if func in _CONTRACTIONS and self.precision == "tf32":
            args = tree_map(lambda x: _store(x, "tf32"), args)
        return self._wrap(func(*args, **kwargs))

    @classmethod
    def _at(cls, ufunc, target, index, values=None):
        """``ufunc.at`` (a scatter-add of gradient rows) with every update stored, as each ``+=`` of an
        eager framework or each atomic add of a kernel is: updates of the same element are applied
        one after another, in order, each rounded."""
        index = index if isinstance(index, tuple) else (index,)
        flat = np.ravel_multi_index(tuple(np.asarray(i) for i in index), target.shape[: len(index)])
        order = np.argsort(flat, kind="stable")
        sorted_flat = flat[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_flat)) + 1]
        rank = np.empty(len(flat), dtype=np.int64)
        rank[order] = np.arange(len(flat)) - np.repeat(starts, np.diff(np.r_[starts, len(flat)]))
        values = np.broadcast_to(values, flat.shape + target.shape[len(index):]) if values is not None else None
        for r in range(int(rank.max(initial=-1)) + 1):  # the r-th update of every element at once
            pick = rank == r
            where = tuple(i[pick] for i in np.broadcast_arrays(*index)) if len(index) > 1 else index[0][pick]
            args = (target[where],) if values is None else (target[where], values[pick])
            target[where] = _store(ufunc(*args), cls._storage())

    @classmethod
    def _storage(cls) -> str:
        return "float32" if cls.precision == "tf32" else cls.precision

    @classmethod
    def _wrap(cls, result):
        """Float results rounded to the storage precision, as ``Rounded`` float32 arrays."""
        if isinstance(result, tuple):
            return tuple(cls._wrap(r) for r in result)
        if isinstance(result, (np.ndarray, np.floating)) and np.issubdtype(np.asarray(result).dtype, np.floating):
            return np.asarray(_store(result, cls._storage()), dtype=np.float32).view(cls)
        return result


_CONTRACTIONS = (np.dot, np.einsum, np.inner, np.tensordot, np.vdot)  # matmuls by another name: TF32 inputs too


def _plain(x):
    return x.view(np.ndarray) if isinstance(x, Rounded) else x


def _store(x, precision):
    """``x`` rounded to ``precision`` as float32 (float arrays only; other values unchanged)."""
    if not isinstance(x, (np.ndarray, np.floating)) or not np.issubdtype(np.asarray(x).dtype, np.floating):
        return x
    if precision == "float32":
        return np.asarray(x, dtype=np.float32)
    return round_to(x, precision).astype(np.float32)


_CLASSES = {p: type(f"Rounded_{p}", (Rounded,), {"precision": p}) for p in EMULATED}


def rounded(array, precision: str) -> np.ndarray:
    """``array`` as an array computing in ``precision``: float32 natively, else a :class:`Rounded` array."""
    if precision == "float32":
        return np.asarray(array, dtype=np.float32)
    if precision not in _CLASSES:
        raise ValueError(f"precision must be one of {['float32', *EMULATED]}, got {precision!r}")
    return np.asarray(_store(np.asarray(array), _CLASSES[precision]._storage()), dtype=np.float32).view(_CLASSES[precision])


def round_tree(tree, dtype: str):
    """Every float array (and float) of ``tree`` rounded to ``dtype``, kept float64: a case's inputs."""

    def rnd(leaf):
        if isinstance(leaf, np.ndarray) and np.issubdtype(leaf.dtype, np.floating):
            return round_to(leaf, dtype)
        if isinstance(leaf, float):
            return float(round_to(np.array(leaf), dtype))
        return leaf

    return tree_map(rnd, tree)


def in_precision(tree, precision: str):
    """Every float array (and float) of ``tree`` as :func:`rounded` arrays of ``precision``; the rest unchanged."""

    def convert(leaf):
        if isinstance(leaf, np.ndarray) and np.issubdtype(leaf.dtype, np.floating):
            return rounded(leaf, precision)
        return leaf

    return tree_map(convert, tree)


def as_float64(tree):
    """Every array of ``tree`` back as a plain float64 NumPy array (scalars as 0-d arrays)."""

    def convert(leaf):
        if isinstance(leaf, (np.ndarray, np.floating, float)) and np.issubdtype(np.asarray(leaf).dtype, np.floating):
            return np.asarray(_plain(leaf), dtype=np.float64)
        return leaf

    return tree_map(convert, tree)
