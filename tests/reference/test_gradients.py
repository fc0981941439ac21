"""Every hand-written backward pass of the reference against central finite differences."""

import numpy as np
import pytest

from seqbench import catalog, reference
from seqbench.precision.gradcheck import max_difference, numerical_vjp

# Shapes cheap enough for finite differences: T ≤ 5 for recurrent ops, every size ≤ 50 for embedding ops.
SMALL = [
    (name, shape) for name, op in catalog.ops().items() for shape in op.shapes
    if (shape["T"] <= 5 if op.family == "recurrent" else max(shape.values()) <= 50)
]


def _check(fn, cotangents, inputs, analytic, tol=1e-7):
    numeric = numerical_vjp(fn, cotangents, inputs, analytic)
    worst, where = max_difference(analytic, numeric)
    assert worst < tol, f"gradient of {where} differs from finite differences by {worst:.2e}"


@pytest.mark.parametrize("name,shape", SMALL, ids=[f"{n}-{catalog.shape_id(s)}" for n, s in SMALL])
def test_catalog_op_gradients(name, shape):
    op = catalog.get(name)
    inputs = op.inputs(shape, seed=3)
    cotangents = op.cotangents(op.reference(**inputs), seed=3)
    analytic = op.reference_vjp(cotangents, **inputs)
    _check(op.reference, cotangents, inputs, analytic)


def _cell_params(cell, I, H, seed=0):
    return catalog.get(cell).inputs({"T": 1, "B": 1, "I": I, "H": H}, seed)["params"]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_rnn_types_gradients(cell):
    rng = np.random.default_rng(1)
    B, I, H = 2, 3, 4
    p = _cell_params(cell, I, H)
    x = rng.standard_normal((5, B, I))

    one = {"cell": cell, "x": x[0], "params": p}
    cot = (rng.standard_normal((B, H)),)
    _check(reference.one_to_one, cot, one, reference.vjp("one_to_one", cot, **one))

    lengths = np.array([5, 2])
    for op, shape in (("many_to_one", (B, H)), ("many_to_many", (5, B, H))):
        args = {"cell": cell, "x": x, "params": p, "lengths": lengths}
        cot = (rng.standard_normal(shape),)
        _check(reference.FORWARD[op], cot, args, reference.vjp(op, cot, **args))

    readout = {"W_y": 0.5 * rng.standard_normal((I, H)), "b_y": rng.standard_normal(I)}
    gen = {"cell": cell, "x": x[0], "params": p, "readout": readout, "steps": 4}
    cot = (rng.standard_normal((4, B, I)),)
    _check(reference.one_to_many, cot, gen, reference.vjp("one_to_many", cot, **gen))

    ed = {"cell": cell, "x": x, "x_dec": rng.standard_normal((3, B, H)), "params_enc": p,
          "params_dec": _cell_params(cell, H, H, seed=2), "lengths": lengths}
    cot = (rng.standard_normal((3, B, H)),)
    _check(reference.encoder_decoder, cot, ed, reference.vjp("encoder_decoder", cot, **ed))


def test_default_initial_state_gradient_equals_zero_state_gradient():
    op = catalog.get("lstm")
    inputs = op.inputs(op.shapes[0], seed=5)
    cot = op.cotangents(op.reference(**inputs))
    explicit = reference.vjp("lstm", cot, **{**inputs, "h0": np.zeros_like(inputs["h0"]), "c0": np.zeros_like(inputs["c0"])})
    default = reference.vjp("lstm", cot, **{**inputs, "h0": None, "c0": None})
    for key in ("x", "h0", "c0"):
        np.testing.assert_array_equal(explicit[key], default[key])


def test_vjp_result_structure():
    op = catalog.get("lstm")
    inputs = op.inputs(op.shapes[0])
    grads = reference.vjp("lstm", op.cotangents(op.reference(**inputs)), **inputs)
    assert set(grads) == {"x", "h0", "c0", "params"}
    assert set(grads["params"]) == set(inputs["params"])
    assert all(grads["params"][k].shape == v.shape for k, v in inputs["params"].items())
