"""The tolerance model: how far a backend may be from the float64 reference.

Errors are measured in units of the tested dtype's machine epsilon::

    err = max_j |a_j - r_j| / (eps · (|r_j| + rms(r)))

relative for large entries, and relative to the array's typical magnitude
(``rms(r)``) for entries near zero, where cancellation makes a purely relative
error meaningless. Inputs are rounded to the dtype first, so ``err`` measures
only the backend's arithmetic.

The budget grows with the work behind each output: rounding errors of a
length-``n`` reduction grow like ``√n`` (random-walk model), and a recurrence
feeds each step's error into the next, so::

    budget = BASE[dtype] · √(fan_in · steps) · (GRADIENT_FACTOR for gradients)

``BASE`` is ~``torch.testing``'s default rtol in eps units (float32: 1.3e-6 ≈
11 eps); ``fan_in`` and ``steps`` come from the op's catalog entry. A float32 run in
a TF32 math mode (cuDNN/cuBLAS TF32, JAX's default GPU precision) is measured
in TF32's eps (:func:`precision`): it is checked as the arithmetic it is.
"""

from __future__ import annotations

import math

import numpy as np

EPS = {
    "float64": float(np.finfo(np.float64).eps),
    "float32": float(np.finfo(np.float32).eps),
    "float16": float(np.finfo(np.float16).eps),
    "bfloat16": 2.0**-7,
    "tf32": 2.0**-10,  # float32 storage, matmul inputs rounded to 10 mantissa bits
}
BASE = {"float64": 4.0, "float32": 4.0, "float16": 16.0, "bfloat16": 16.0, "tf32": 16.0}
GRADIENT_FACTOR = 4.0


def precision(dtype: str, math_mode: str = "ieee") -> str:
    """The unit errors are measured in: the dtype, or ``"tf32"`` for float32 run in a TF32 math mode."""
    return "tf32" if dtype == "float32" and math_mode.startswith("tf32") else dtype


def round_to(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` rounded to ``dtype`` (nearest, ties to even) and returned as float64."""
    array = np.asarray(array, dtype=np.float64)
    if dtype == "bfloat16":
        bits = array.astype(np.float32).view(np.uint32)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        return rounded.astype(np.uint32).view(np.float32).astype(np.float64)
    return array.astype(dtype).astype(np.float64)


def error_in_eps(actual, expected, dtype: str) -> float:
    """``max_j |a_j - r_j| / (eps (|r_j| + rms(r)))``; ``inf`` for a shape mismatch or non-finite output."""
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(expected, dtype=np.float64)
    if a.shape != r.shape or not np.all(np.isfinite(a)):
        return math.inf
    if r.size == 0:
        return 0.0
    scale = np.abs(r) + np.sqrt(np.mean(r**2))
    scale = np.where(scale > 0, scale, 1.0)
    return float(np.max(np.abs(a - r) / scale) / EPS[dtype])


def budget(op, shape: dict, dtype: str, gradient: bool = False) -> float:
    """Allowed error of ``op`` at ``shape`` in units of eps (see the module docstring)."""
    factor = GRADIENT_FACTOR if gradient else 1.0
    return BASE[dtype] * math.sqrt(op.fan_in(shape) * op.steps(shape)) * factor
