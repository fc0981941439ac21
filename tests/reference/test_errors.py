"""Bad input gets a clear error naming the argument, from every reference function."""

import numpy as np
import pytest

from seqbench import catalog, reference

CASES = [(op.name, what) for op in catalog.ops().values() if op.bad_inputs
         for what in op.bad_inputs(op.inputs(op.shapes[0]))]

EXPECTED_WORDS = {
    "x-not-3d": ("x", "(T, B, I)"), "x-integer": ("x", "floating"), "x-nan": ("x", "NaN"),
    "h0-batch": ("h0",), "params-missing": ("missing",), "params-extra": ("W_extra",),
    "params-shape": ("params",), "lengths-above-T": ("lengths", "[0, T]"),
    "lengths-negative": ("lengths", "[0, T]"), "lengths-float": ("lengths", "integer"),
    "logits-not-3d": ("logits",), "logits-nan": ("logits", "NaN"), "targets-out-of-range": ("targets", "[0, V)"),
    "targets-float": ("targets", "integer"), "targets-shape": ("targets", "(T, B)"),
}


@pytest.mark.parametrize("name,what", CASES, ids=[f"{n}-{w}" for n, w in CASES])
def test_reference_rejects_bad_input_by_name(name, what):
    op = catalog.get(name)
    bad = op.bad_inputs(op.inputs(op.shapes[0]))[what]
    with pytest.raises((TypeError, ValueError)) as raised:
        reference.FORWARD[op.function](**bad)
    for word in EXPECTED_WORDS.get(what, ()):
        assert word in str(raised.value), f"{what}: {raised.value}"
    with pytest.raises(type(raised.value)) as checked:  # check() gives the same error without running
        reference.check(op.function, **bad)
    assert str(checked.value) == str(raised.value)


def test_unknown_argument_and_variant_and_cell():
    inputs = catalog.get("gru").inputs({"T": 2, "B": 1, "I": 1, "H": 2})
    with pytest.raises(TypeError, match="unexpected keyword argument 'h_0'"):
        reference.vjp("gru", (None, None), **{**inputs, "h_0": inputs["h0"]})
    with pytest.raises(ValueError, match=r"variant must be one of \['notes', 'reset_after'\]"):
        reference.gru(inputs["x"], inputs["params"], variant="reset_before")
    with pytest.raises(ValueError, match="cell must be one of"):
        reference.stacked("transformer", inputs["x"], [inputs["params"]])
    with pytest.raises(ValueError, match="op must be one of"):
        reference.vjp("lstmm", (None,))


def test_mismatched_sizes_are_named():
    inputs = catalog.get("lstm").inputs({"T": 3, "B": 2, "I": 4, "H": 5})
    with pytest.raises(ValueError, match=r"params\['W_fx'\] must have shape"):
        reference.lstm(inputs["x"][..., :3], inputs["params"])
    with pytest.raises(ValueError, match=r"c0 must have shape \(B, H\) = \(2, 5\)"):
        reference.lstm(inputs["x"], inputs["params"], c0=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="c0 is only used by cell='lstm'"):
        rnn_params = catalog.get("rnn").inputs({"T": 3, "B": 2, "I": 4, "H": 5})["params"]
        reference.bidirectional("rnn", inputs["x"], rnn_params, rnn_params, c0=np.zeros((2, 2, 5)))
    with pytest.raises(ValueError, match=r"cotangents must be a tuple of 3 arrays"):
        reference.vjp("lstm", (None,), **inputs)
    with pytest.raises(ValueError, match=r"cotangents\[1\] must have shape"):
        reference.vjp("lstm", (None, np.zeros((3, 3)), None), **inputs)
    with pytest.raises(ValueError, match="at least one time step"):
        reference.lstm(np.zeros((0, 2, 4)), inputs["params"])
    with pytest.raises(TypeError, match="reverse must be True or False"):
        reference.lstm(inputs["x"], inputs["params"], reverse="yes")
    with pytest.raises(TypeError, match="params must be a non-empty list"):
        reference.stacked("lstm", inputs["x"], inputs["params"])
