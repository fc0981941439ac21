"""Conformance of every backend to the float64 reference: forward, gradients, bad input.

Each case rounds the catalog's inputs to the tested dtype, runs the reference
in float64 on those same values, and judges every output and gradient leaf
with :mod:`seqbench.precision.tolerance`: within a small multiple of the error of a
faithful implementation in the same precision (:mod:`seqbench.precision.calibration`),
plus a floor, under a hard cap. A failure message names the worst leaf,
both errors, and gives a one-line reproduction.
"""

import pytest

from seqbench.precision import calibration, tolerance
from seqbench.backends import registry


def _repro(case, kind):
    call = "run" if kind == "forward" else "vjp"
    return (
        f"reproduce: import seqbench; op = seqbench.catalog.get({case.op.name!r}); "
        f"seqbench.backend({case.backend!r}).{call}({case.op.name!r}, {'<cotangents>, ' if call == 'vjp' else ''}"
        f"device={case.device!r}, dtype={case.dtype!r}, **op.inputs({case.shape!r}))"
    )


def _judge(case, kind, record):
    """Run the case (:func:`calibration.measure`), record its row, and fail it over its budget."""
    unit, verdict = calibration.measure(registry.backend(case.backend), case.op, case.shape, case.device,
                                        case.dtype, kind)
    record(kind=kind, backend=case.backend, device=case.device, dtype=case.dtype, op=case.op.name,
           variant=case.op.variant, shape=str(case.shape), **{k: v for k, v in case.shape.items()},
           eps_unit=unit, **verdict.row())
    w = verdict.worst
    assert verdict.passed, (
        f"{case.op.name} {kind} on {case.backend}/{case.device}/{case.dtype}: {w.leaf!r} is {w.error:.3g} eps "
        f"({unit}, {w.metric} error) from the float64 reference, {w.ratio:.3g}x the {w.control:.3g} eps of a "
        f"faithful {unit} implementation; budget {w.budget:.3g} eps = min(multiple x faithful + {tolerance.FLOOR:g}, "
        f"cap {verdict.cap:.3g}). {_repro(case, kind)}"
    )


def test_forward(case, record):
    _judge(case, "forward", record)


def test_vjp(case, record):
    _judge(case, "vjp", record)


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
