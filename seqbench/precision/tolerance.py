"""The tolerance model: how far a backend may be from the float64 reference.

A backend passes a case when, on every output and every gradient leaf (each
layer, direction and parameter on its own), its error is within a small
multiple of the error of a *faithful implementation in the same precision*
(:mod:`seqbench.precision.calibration`), plus a floor, and never above a hard cap::

    error ≤ min(MULTIPLE · control + FLOOR,  CAP)

— the practice of FlashAttention's tests, where a kernel may be at most
twice as far from an upcast reference as a plain same-precision
implementation is. A budget that only grows with fan-in and ``T`` cannot fail
a wrong answer in float16, bfloat16 or TF32; this one can.

Errors are measured in units of the precision's machine epsilon, two ways
per leaf, and both must pass:

* ``max``: ``max_j |a_j − r_j| / (|r_j| + rms(r)) / eps`` — the worst entry,
  relative for large entries and relative to the array's typical magnitude
  for entries near zero (where cancellation makes a purely relative error
  meaningless). It catches an error in a few entries: one time step, the
  padded steps of a ragged batch, one row of an embedding.
* ``l2``: ``‖a − r‖₂ / ‖r‖₂ / eps`` — the typical entry. Rounding errors are
  random and average out in it while a systematic error (a scaled output, a
  wrong gradient of one direction) does not, so it separates wrong from
  rounded by a much wider margin than the worst entry can.

The precision (:func:`precision`) is the dtype, or ``"tf32"`` for float32 run
in a TF32 math mode (cuDNN/cuBLAS TF32, JAX's default GPU precision): a TF32
run is calibrated and measured as the arithmetic it is.

How the constants were chosen (measured on every CPU backend, every op and
conformance shape, float64/float32/float16/bfloat16; the README has the
table of what they allow, from :mod:`seqbench.precision.allowance`):

* ``MULTIPLE["l2"] = 2``: FlashAttention's multiple, for large leaves.
  Correct backends need at most 1.34 (torch-native, float32) once the floor
  is added: fused or reordered arithmetic is usually *more* accurate than the
  faithful control, which rounds after every operation. A leaf of few
  entries averages little noise, so the multiple grows to ``max``'s for one
  entry (:func:`multiple`): a 6-entry bias gradient compiled by
  ``torch.compile`` in float64 needs 3.5.
* ``MULTIPLE["max"] = 8``: the worst of thousands of entries is an
  extreme-value statistic and varies more between two correct
  implementations: up to 5.5 (the CUDA kernels' weight gradients run on the
  host, float32) and 4.2 (PyTorch's float64 CPU LSTM). Systematic errors are
  the ``l2`` measure's to catch; this one catches errors confined to a few
  entries, which are large when they are bugs.
* ``FLOOR = 2`` eps: two roundings of a stored result, one on each side
  (FlashAttention's ``2·max|fl(r) − r|``): what an exact computation may
  differ by when the two round at different points; it covers leaves the
  faithful implementation happens to get exactly (a lookup). For TF32 it is
  TF32's eps: in a TF32 math mode a library may run any contraction in TF32,
  also those the reference writes as elementwise products and sums.
* the cap ``C · (√steps · u_storage + √fan_in · u_accumulate)`` (in eps):
  forward error grows like ``√steps`` roundings of stored values and
  ``√fan_in`` roundings inside an accumulation; ``steps``/``fan_in`` come
  from the op's catalog entry. ``C = 4`` for outputs caps float16 at the
  recurrent conformance shape (T = 32, fan-in 48) at 1.1e-2 relative;
  ``C = 16`` for gradients covers BPTT and the sums over time and batch of
  the weight gradients. Every faithful error measured is at most 0.42 of its
  cap and every correct backend's at most 0.55, and no calibration can
  loosen it.
* float64 has no faithful implementation less exact than the oracle itself,
  so its control is the float32 one in units of eps: to first order rounding
  errors are proportional to the unit roundoff with the same constants
  (checked against a long-double oracle: 3.95 vs 3.65 eps on the worst leaf
  of a stacked LSTM's gradients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seqbench.precision.faithful import round_to  # noqa: F401  (re-exported: the rounding every case applies to its inputs)

EPS = {
    "float64": float(np.finfo(np.float64).eps),
    "float32": float(np.finfo(np.float32).eps),
    "float16": float(np.finfo(np.float16).eps),
    "bfloat16": 2.0**-7,
    "tf32": 2.0**-10,  # float32 storage, matmul inputs rounded to 10 mantissa bits
}
#: unit roundoff of stored values and of the products/sums inside an accumulation, per precision
ROUNDOFF = {
    "float64": (2.0**-53, 2.0**-53),
    "float32": (2.0**-24, 2.0**-24),
    "float16": (2.0**-11, 2.0**-24),  # float16 storage, float32 accumulation
    "bfloat16": (2.0**-8, 2.0**-24),  # bfloat16 storage, float32 accumulation
    "tf32": (2.0**-24, 2.0**-11),  # float32 storage, matmul inputs in TF32
}
STORAGE = {"tf32": "float32"}  # the dtype values are stored in, where it is not the precision's own name
METRICS = ("max", "l2")
MULTIPLE = {"l2": 2.0, "max": 8.0}  # l2: for a large leaf; see multiple()
FLOOR = 2.0
CAP = {"forward": 4.0, "vjp": 16.0}


def precision(dtype: str, math_mode: str = "ieee") -> str:
    """The unit errors are measured in: the dtype, or ``"tf32"`` for float32 run in a TF32 math mode."""
    return "tf32" if dtype == "float32" and math_mode.startswith("tf32") else dtype


def storage(precision_: str) -> str:
    """The dtype a precision stores values in (``"float32"`` for ``"tf32"``)."""
    return STORAGE.get(precision_, precision_)


def errors(actual, expected, precision_: str) -> dict[str, float]:
    """``{"max": ..., "l2": ...}``: the two error measures of the module docstring, in eps of ``precision_``.

    ``inf`` for a shape mismatch or a non-finite output.
    """
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(expected, dtype=np.float64)
    if a.shape != r.shape or not np.all(np.isfinite(a)):
        return {m: math.inf for m in METRICS}
    if r.size == 0:
        return {m: 0.0 for m in METRICS}
    diff = np.abs(a - r)
    rms = math.sqrt(float(np.mean(r**2)))
    scale = np.abs(r) + rms
    scale = np.where(scale > 0, scale, 1.0)
    norm = rms * math.sqrt(r.size)
    l2 = float(np.sqrt(np.sum(diff**2))) / (norm if norm > 0 else math.sqrt(r.size))
    eps = EPS[precision_]
    return {"max": float(np.max(diff / scale)) / eps, "l2": l2 / eps}


def error_in_eps(actual, expected, precision_: str) -> float:
    """The worst-entry error ``max_j |a_j − r_j| / (eps (|r_j| + rms(r)))``."""
    return errors(actual, expected, precision_)["max"]


def cap(op, shape: dict, precision_: str, kind: str) -> float:
    """The hard cap in eps: ``C[kind] · (√steps · u_storage + √fan_in · u_accumulate) / eps``."""
    u_storage, u_accumulate = ROUNDOFF[precision_]
    bound = math.sqrt(op.steps(shape)) * u_storage + math.sqrt(op.fan_in(shape)) * u_accumulate
    return CAP[kind] * bound / EPS[precision_]


def multiple(metric: str, size: int) -> float:
    """The multiple of the faithful error a leaf of ``size`` entries may reach under ``metric``.

    ``l2`` averages rounding noise over the leaf's entries; with few entries it
    is as noisy as the worst entry (for one entry the two measure the same
    thing), so its multiple goes from ``max``'s at ``size = 1`` to
    ``MULTIPLE["l2"]`` for large leaves: ``2 + 6/√size``.
    """
    if metric == "max":
        return MULTIPLE["max"]
    return MULTIPLE["l2"] + (MULTIPLE["max"] - MULTIPLE["l2"]) / math.sqrt(max(size, 1))


def allowed(metric: str, control: float, cap_eps: float, size: int) -> float:
    """The budget of one leaf and measure: ``min(multiple · control + FLOOR, cap)``."""
    return min(multiple(metric, size) * control + FLOOR, cap_eps)


@dataclass(frozen=True)
class LeafCheck:
    """One output or gradient leaf under one error measure."""

    leaf: str
    metric: str
    error: float  # eps
    control: float  # eps: the faithful implementation's error on the same leaf and measure
    budget: float  # eps
    size: int = 1  # entries of the leaf

    @property
    def passed(self) -> bool:
        return self.error <= self.budget

    @property
    def score(self) -> float:
        """``error / budget``: above 1 fails."""
        return self.error / self.budget if self.budget > 0 else math.inf

    @property
    def ratio(self) -> float:
        """``error ÷ faithful error``, the faithful error floored at 1 eps (one rounding of a stored result),
        so a leaf that both compute exactly reads 0 rather than 0/0."""
        return self.error / max(self.control, 1.0)


@dataclass(frozen=True)
class Verdict:
    """Every leaf of one case checked; ``worst`` is the leaf closest to (or furthest over) its budget."""

    checks: tuple
    cap: float

    @property
    def worst(self) -> LeafCheck:
        return max(self.checks, key=lambda c: c.score)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def ratio(self) -> float:
        """The accuracy a reader can judge: the ``l2`` errors of all leaves pooled, entry-weighted, over the
        faithful implementation's (each floored at 1 eps), ``√(Σ n·error²) / √(Σ n·faithful²)``; about 1 is
        as accurate as a plain same-precision implementation. Pooled, a leaf of a few entries cannot make
        it noisy, and a wrong leaf still dominates it."""
        l2 = [c for c in self.checks if c.metric == "l2"]
        faithful = sum(c.size * max(c.control, 1.0) ** 2 for c in l2)
        return math.sqrt(sum(c.size * c.error**2 for c in l2) / faithful) if faithful else 0.0

    @property
    def max_error(self) -> float:
        """The largest worst-entry error over all leaves, in eps."""
        return max((c.error for c in self.checks if c.metric == "max"), default=0.0)

    def row(self) -> dict:
        """Flat result fields: the worst leaf's error, the faithful error, their ratio, the budget and cap."""
        w = self.worst
        return {
            "passed": self.passed, "worst": w.leaf, "metric": w.metric, "err_eps": w.error,
            "control_eps": w.control, "ratio": self.ratio, "budget_eps": w.budget, "cap_eps": self.cap,
            "max_err_eps": self.max_error,
        }


def judge(leaf_errors: dict, control_errors: dict, cap_eps: float) -> Verdict:
    """Check ``{leaf: {metric: error, "size": entries}}`` against the faithful implementation's errors."""
    checks = []
    for leaf, measured in leaf_errors.items():
        for metric in METRICS:
            control = control_errors[leaf][metric]
            budget = allowed(metric, control, cap_eps, measured["size"])
            checks.append(LeafCheck(leaf, metric, measured[metric], control, budget, measured["size"]))
    return Verdict(tuple(checks), cap_eps)
