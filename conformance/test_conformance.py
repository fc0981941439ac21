"""Conformance of every backend to the float64 reference: forward, gradients, bad input.

Each case rounds the catalog's inputs to the tested dtype, runs the reference
in float64 on those same values, and compares in units of the dtype's eps
against the budget of :mod:`seqbench.tolerance`. A failure message names the
worst output and gives a one-line reproduction.
"""

import numpy as np
import pytest

from seqbench import registry, tolerance
from seqbench.protocol import tree_leaves as leaves


def _repro(case, kind):
    call = "run" if kind == "forward" else "vjp"
    return (
        f"reproduce: import seqbench; op = seqbench.catalog.get({case.op.name!r}); "
        f"seqbench.backend({case.backend!r}).{call}({case.op.name!r}, {'<cotangents>, ' if call == 'vjp' else ''}"
        f"device={case.device!r}, dtype={case.dtype!r}, **op.inputs({case.shape!r}))"
    )


def _compare(case, kind, actual: dict, expected: dict, record):
    gradient = kind == "vjp"
    unit = tolerance.precision(case.dtype, registry.backend(case.backend).math_mode(case.device, case.dtype))
    budget = tolerance.budget(case.op, case.shape, unit, gradient)
    errors = {"/".join(map(str, path)): tolerance.error_in_eps(_at(actual, path), leaf, unit)
              for path, leaf in leaves(expected) if isinstance(leaf, np.ndarray) or np.isscalar(leaf)}
    worst = max(errors, key=errors.get)
    passed = errors[worst] <= budget
    record(kind=kind, backend=case.backend, device=case.device, dtype=case.dtype, op=case.op.name,
           variant=case.op.variant, shape=str(case.shape), **{k: v for k, v in case.shape.items()},
           passed=passed, max_err_eps=errors[worst], budget_eps=budget, eps_unit=unit, worst=worst)
    assert passed, (
        f"{case.op.name} {kind} on {case.backend}/{case.device}/{case.dtype}: output {worst!r} is "
        f"{errors[worst]:.3g} eps ({unit}) from the float64 reference, budget {budget:.3g} eps. {_repro(case, kind)}"
    )


def _at(tree, path):
    for k in path:
        if isinstance(tree, dict) and k not in tree:
            raise AssertionError(f"backend result has no {path!r}")
        tree = tree[k]
    return tree


def test_forward(case, record):
    inputs = case.inputs()
    expected = case.op.reference(**inputs)
    actual = registry.backend(case.backend).run(case.op.name, device=case.device, dtype=case.dtype, **inputs)
    assert len(actual) == len(expected), f"{case.backend} returned {len(actual)} outputs, expected {case.op.outputs}"
    _compare(case, "forward", dict(zip(case.op.outputs, actual)), dict(zip(case.op.outputs, expected)), record)


def test_vjp(case, record):
    from .cases import round_tree

    inputs = case.inputs()
    cotangents = round_tree(case.op.cotangents(case.op.reference(**inputs)), case.dtype)
    expected = case.op.reference_vjp(cotangents, **inputs)
    actual = registry.backend(case.backend).vjp(case.op.name, cotangents, device=case.device, dtype=case.dtype, **inputs)
    _compare(case, "vjp", actual, expected, record)


@pytest.mark.one_shape_per_op
def test_rejects_bad_input(case):
    """A backend rejects what the reference rejects, with the same error type and message."""
    from seqbench import reference

    be = registry.backend(case.backend)
    if case.op.bad_inputs is None:
        pytest.skip(f"op {case.op.name} declares no bad inputs")
    for what, bad in case.op.bad_inputs(case.op.inputs(case.shape)).items():
        with pytest.raises((TypeError, ValueError)) as expected:
            reference.check(case.op.function, **bad)
        with pytest.raises((TypeError, ValueError)) as actual:
            be.run(case.op.name, device=case.device, dtype=case.dtype, **bad)
        assert (type(actual.value), str(actual.value)) == (type(expected.value), str(expected.value)), (
            f"{what}: {case.backend} raised {type(actual.value).__name__}({actual.value}), "
            f"the reference {type(expected.value).__name__}({expected.value})"
        )
