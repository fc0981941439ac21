"""What a conformance case is compared with: the float64 reference, and the error of a faithful implementation.

For a case (op, shape, precision) this module gives

* :func:`reference_case`: the inputs rounded to the storage dtype, the
  cotangents (for gradients), and the float64 reference's outputs or
  gradients on exactly those values;
* :func:`control_errors`: per output or gradient leaf, the error of the
  reference's own equations run in the tested precision
  (:mod:`seqbench.precision.faithful`) against that float64 result — the yardstick of
  :mod:`seqbench.precision.tolerance`;
* :func:`check`: a backend's result judged against both.

Both are memoized in the process (every backend of a run shares one
reference run and one calibration per case), and calibrations are cached on
disk under ``$SEQBENCH_CACHE_DIR`` (default ``~/.cache/seqbench``), keyed by
a fingerprint of the reference, the catalog and this code, so a changed
equation never reuses a stale calibration.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from seqbench import catalog
from seqbench.precision import faithful, tolerance
from seqbench.backends.protocol import tree_leaves

KINDS = ("forward", "vjp")


def leaf_name(path: tuple) -> str:
    return "/".join(map(str, path))


def leaves(tree) -> dict:
    """``{leaf name: array}`` for every array or scalar of a result tree."""
    return {leaf_name(p): v for p, v in tree_leaves(tree) if isinstance(v, np.ndarray) or np.isscalar(v)}


def _as_tree(op, kind, result):
    """Forward outputs as ``{output name: array}``; gradients as they come."""
    return dict(zip(op.outputs, result)) if kind == "forward" else result


@functools.lru_cache(maxsize=64)
def _reference_case(op_name: str, shape_key: str, dtype: str, kind: str, seed: int):
    op = catalog.get(op_name)
    shape = json.loads(shape_key)
    inputs = faithful.round_tree(op.inputs(shape, seed), dtype)
    if kind == "forward":
        return inputs, None, _as_tree(op, kind, op.reference(**inputs))
    cotangents = faithful.round_tree(op.cotangents(op.reference(**inputs)), dtype)
    return inputs, cotangents, op.reference_vjp(cotangents, **inputs)


def reference_case(op, shape: dict, dtype: str, kind: str, seed: int = 0):
    """``(inputs, cotangents, expected)``: inputs (and cotangents) rounded to ``dtype``, kept float64,
    and the float64 reference's outputs (``kind="forward"``, keyed by output name) or gradients (``"vjp"``).

    Shared by every caller in the process: do not modify what it returns.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    return _reference_case(op.name, json.dumps(shape, sort_keys=True), dtype, kind, seed)


def leaf_errors(actual, expected, precision: str) -> dict:
    """``{leaf: {"max": eps, "l2": eps, "size": entries}}`` over the leaves of ``expected``; a leaf missing from
    ``actual`` is an error."""
    out = {}
    for path, e in tree_leaves(expected):
        if not (isinstance(e, np.ndarray) or np.isscalar(e)):
            continue
        a = actual
        for k in path:
            if isinstance(a, dict) and k not in a:
                raise AssertionError(f"backend result has no {path!r}")
            a = a[k]
        out[leaf_name(path)] = {**tolerance.errors(a, e, precision), "size": int(np.size(e))}
    return out


def control_errors(op, shape: dict, precision: str, kind: str, seed: int = 0) -> dict:
    """``{leaf: {"max": eps, "l2": eps}}``: the faithful implementation's errors (see the module docstring).

    float64 takes float32's (in eps; :mod:`seqbench.precision.tolerance` says why).
    """
    if precision == "float64":
        precision = "float32"
    key = (op.name, json.dumps(shape, sort_keys=True), precision, kind, seed)
    return _memo(key, lambda: _calibrate(op, shape, precision, kind, seed))


def _calibrate(op, shape, precision, kind, seed):
    inputs, cotangents, expected = reference_case(op, shape, tolerance.storage(precision), kind, seed)
    run_inputs = faithful.in_precision(inputs, precision)
    if kind == "forward":
        result = _as_tree(op, kind, op.reference(**run_inputs))
    else:
        result = op.reference_vjp(faithful.in_precision(cotangents, precision), **run_inputs)
    return leaf_errors(faithful.as_float64(result), expected, precision)


def measure(backend, op, shape: dict, device: str, dtype: str, kind: str) -> tuple[str, tolerance.Verdict]:
    """One conformance case: ``backend`` runs ``op`` (``kind`` forward or vjp) on the seeded inputs rounded to
    ``dtype``; returns the precision its errors are in (the dtype, or ``"tf32"``) and its :func:`check` verdict."""
    unit = tolerance.precision(dtype, backend.math_mode(device, dtype))
    inputs, cotangents, expected = reference_case(op, shape, dtype, kind)
    if kind == "forward":
        actual = backend.run(op.name, device=device, dtype=dtype, **inputs)
        if len(actual) != len(expected):
            raise AssertionError(f"{backend.name} returned {len(actual)} outputs, expected {op.outputs}")
        actual = dict(zip(op.outputs, actual))
    else:
        actual = backend.vjp(op.name, cotangents, device=device, dtype=dtype, **inputs)
    return unit, check(op, shape, unit, kind, actual)


def check(op, shape: dict, precision: str, kind: str, actual, seed: int = 0) -> tolerance.Verdict:
    """``actual`` (outputs keyed by name, or the gradient tree) judged by the tolerance model."""
    _, _, expected = reference_case(op, shape, tolerance.storage(precision), kind, seed)
    measured = leaf_errors(actual, expected, precision)
    controls = control_errors(op, shape, precision, kind, seed)
    return tolerance.judge(measured, controls, tolerance.cap(op, shape, precision, kind))


# --- caches ----------------------------------------------------------------------------------------

_MEMORY: dict = {}


def _memo(key, compute):
    if key not in _MEMORY:
        path = _cache_file(key)
        cached = _read(path) if path else None
        if cached is None:
            cached = compute()
            if path:
                _write(path, cached)
        _MEMORY[key] = cached
    return _MEMORY[key]


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """A hash of everything a calibration depends on: the reference, the catalog, the faithful arithmetic, NumPy."""
    here = Path(__file__).parent
    reference = Path(catalog.reference.__file__).parent
    sources = (sorted(reference.glob("*.py")) + sorted(Path(catalog.__file__).parent.glob("*.py"))
               + [here / n for n in ("faithful.py", "tolerance.py", "calibration.py")])
    digest = hashlib.sha256(np.__version__.encode())
    for path in sources:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    root = os.environ.get("SEQBENCH_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqbench"
    return Path(root) / f"calibration-{fingerprint()}"


def _cache_file(key) -> Path | None:
    if os.environ.get("SEQBENCH_CACHE_DIR") == "off":
        return None
    name = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
    return cache_dir() / f"{name}.json"


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # absent, unreadable or half-written by a killed run: recompute
        return None


def _write(path: Path, value) -> None:
    """Atomically (temporary file, then rename); a cache that cannot be written is only slower."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(value, f)
        os.replace(tmp, path)
    except OSError:
        pass


def summary(op, shape: dict, precisions=("float64", "float32", "tf32", "float16", "bfloat16")) -> list[dict]:
    """Per precision, the worst leaf's faithful error, budget and cap at ``shape``, as relative errors
    (eps × value), forward and gradients, for the ``l2`` and ``max`` measures: what the model allows."""
    rows = []
    for precision in precisions:
        eps, row = tolerance.EPS[precision], {"precision": precision}
        for kind in KINDS:
            controls = control_errors(op, shape, precision, kind)
            cap = tolerance.cap(op, shape, precision, kind)
            for metric in tolerance.METRICS:
                worst = max(c[metric] for c in controls.values())
                row[f"{kind} {metric} faithful"] = worst * eps
                row[f"{kind} {metric} budget"] = eps * max(
                    tolerance.allowed(metric, c[metric], cap, c["size"]) for c in controls.values())
            row[f"{kind} cap"] = cap * eps
        rows.append(row)
    return rows
