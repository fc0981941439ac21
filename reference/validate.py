"""Argument checks at the API boundary of the reference.

Every public reference function (and, through the backend protocol, every
backend) checks its arguments here first, so a mistake raises one clear
``TypeError`` / ``ValueError`` naming the argument and what was expected,
instead of a broadcasting error from deep inside a matmul.
"""

from __future__ import annotations

import numpy as np


def float_array(name: str, value, shape: tuple | None = None, dims: str | None = None) -> np.ndarray:
    """``value`` as a finite floating array, optionally of an exact ``shape``.

    ``shape`` may hold ``None`` for a free axis; ``dims`` names the axes for
    the error message, e.g. ``"(T, B, I)"``.
    """
    array = np.asanyarray(value)  # subclasses that compute like arrays (seqbench.precision.faithful.Rounded) are kept
    if isinstance(array, np.matrix):
        array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {array.dtype}")
    if shape is not None:
        want = dims or str(tuple("?" if s is None else s for s in shape))
        if array.ndim != len(shape):
            raise ValueError(f"{name} must be a {len(shape)}-d array {want}, got shape {array.shape}")
        for got, expected in zip(array.shape, shape):
            if expected is not None and got != expected:
                raise ValueError(f"{name} must have shape {want} = {_fill(shape, array.shape)}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _fill(shape, got):
    return tuple(g if s is None else s for s, g in zip(shape, got))


def sequence(name: str, x) -> np.ndarray:
    """A time-major sequence ``(T, B, I)`` with at least one step and one sequence."""
    x = float_array(name, x, (None, None, None), "(T, B, I)")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one time step and one sequence, got shape {x.shape}")
    return x


def params(name: str, value, expected: dict[str, tuple]) -> dict[str, np.ndarray]:
    """A parameter mapping with exactly the ``expected`` names and shapes."""
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict of parameter arrays, got {type(value).__name__}")
    missing = [k for k in expected if k not in value]
    extra = [k for k in value if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        raise ValueError(f"{name}: {', '.join(parts)}; expected keys {list(expected)}")
    return {k: float_array(f"{name}[{k!r}]", value[k], shape) for k, shape in expected.items()}


def state(name: str, value, batch: int, hidden: int, dtype) -> np.ndarray:
    """An initial state ``(B, H)``; ``None`` means zeros."""
    if value is None:
        return np.zeros((batch, hidden), dtype=dtype)
    return float_array(name, value, (batch, hidden), "(B, H)")


def lengths(value, steps: int, batch: int) -> np.ndarray | None:
    """Valid lengths ``(B,)``, integers in ``[0, T]``; ``None`` means all ``T``."""
    if value is None:
        return None
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"lengths must be an integer array of shape (B,) = ({batch},), got dtype {array.dtype}")
    if array.shape != (batch,):
        raise ValueError(f"lengths must have shape (B,) = ({batch},), got {array.shape}")
    if array.size and (array.min() < 0 or array.max() > steps):
        raise ValueError(f"lengths must lie in [0, T] = [0, {steps}], got values in [{array.min()}, {array.max()}]")
    return array.astype(np.int64)


def flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def choice(name: str, value, options) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value


def common_dtype(*arrays) -> np.dtype:
    """The floating dtype all computation runs in (NumPy promotion of the inputs)."""
    return np.result_type(*arrays)
