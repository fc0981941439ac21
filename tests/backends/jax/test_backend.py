"""What is specific to the ``jax`` backend: tracing, x64 and dtypes, masking at the edges, devices."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from seqbench import catalog  # noqa: E402
from seqbench.backends import registry
from seqbench.backends.jax.backend import JaxHighestBackend  # noqa: E402
from seqbench.backends.protocol import tree_leaves as leaves  # noqa: E402
from seqbench.backends.protocol import BackendUnavailable  # noqa: E402

CELLS = ("rnn", "lstm", "gru", "gru_reset_after")
HAS_GPU = bool(registry.backend("jax").devices()[1:])


@pytest.fixture(scope="module")
def be():
    return registry.backend("jax")


def _inputs(op_name, seed=0, **shape):
    op = catalog.get(op_name)
    return op.inputs({"T": 4, "B": 3, "I": 2, "H": 5, **shape}, seed)


def _assert_close(actual, expected):
    """Every leaf of ``expected`` (nested dicts, lists, tuples) equals the leaf of ``actual`` at its path."""
    for path, leaf in leaves(expected):
        found = actual
        for k in path:
            found = found[k]
        np.testing.assert_allclose(found, leaf, rtol=1e-12, atol=1e-12, err_msg=str(path))


def test_repeated_calls_and_both_directions_share_one_trace(be):
    inputs = _inputs("lstm", ragged=True)
    be.run("lstm", dtype="float64", **inputs)
    traces = be.traces
    be.run("lstm", dtype="float64", **_inputs("lstm", seed=1, ragged=True))  # new values, same shapes
    be.run("lstm", dtype="float64", **{**inputs, "reverse": True})  # reverse is traced, not static
    assert be.traces == traces
    be.run("lstm", dtype="float64", **_inputs("lstm", T=7, ragged=True))  # a new shape traces once
    assert be.traces == traces + 1


@pytest.mark.parametrize("op", sorted(catalog.ops()))
def test_x64_is_on_and_float32_stays_float32(be, op):
    """x64 is process-wide, so every float32 program is checked for a float64 value anywhere in it."""
    entry = catalog.get(op)
    inputs = entry.inputs(entry.shapes[0])
    cotangents = entry.cotangents(entry.reference(**inputs))
    assert jax.config.jax_enable_x64
    for lowered in (be.lower(op, **inputs), be.lower(op, cotangents=cotangents, **inputs)):
        assert "f64" not in lowered.as_text()


@pytest.mark.parametrize("op", CELLS)
@pytest.mark.parametrize("T, lengths", [(1, [1, 0, 1]), (1, [0, 0, 0]), (3, [0, 3, 1]), (3, [3, 3, 3])])
@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_masking_at_the_edges_equals_the_reference(be, op, T, lengths, reverse):
    inputs = {**_inputs(op, T=T), "lengths": np.array(lengths), "reverse": reverse}
    entry = catalog.get(op)
    outputs = entry.reference(**inputs)
    _assert_close(be.run(op, dtype="float64", **inputs), outputs)
    cotangents = entry.cotangents(outputs)
    _assert_close(be.vjp(op, cotangents, dtype="float64", **inputs), entry.reference_vjp(cotangents, **inputs))


def test_none_initial_states_get_gradients(be):
    inputs = {**_inputs("bidirectional_lstm", ragged=True), "h0": None, "c0": None}
    entry = catalog.get("bidirectional_lstm")
    cotangents = entry.cotangents(entry.reference(**inputs))
    grads = be.vjp("bidirectional_lstm", cotangents, dtype="float64", **inputs)
    assert grads["h0"].shape == grads["c0"].shape == (2, 3, 5)
    _assert_close(grads, entry.reference_vjp(cotangents, **inputs))


def test_inputs_the_reference_accepts_beyond_arrays(be):
    """A scipy sparse ``X``, a NumPy-integer window ``c``, lists for ``lengths`` and ``h0``."""
    import scipy.sparse

    for op, changes in (
        ("glove_cost", lambda i: {"X": scipy.sparse.coo_array(i["X"])}),
        ("skipgram_loss", lambda i: {"c": np.int64(2)}),
        ("rnn", lambda i: {"lengths": [5, 2, 0], "h0": i["h0"].tolist()}),
    ):
        entry = catalog.get(op)
        inputs = entry.inputs(entry.shapes[0])
        inputs.update(changes(inputs))
        _assert_close(be.run(op, dtype="float64", **inputs), entry.reference(**inputs))


def test_synchronize_waits_for_the_last_result(be):
    op = catalog.get("gru")
    inputs = op.inputs(op.shapes[2])
    outputs = be.prepare("gru", "cpu", "float32", inputs)()
    be.synchronize("cpu")
    assert all(o.is_ready() for o in outputs)
    be.synchronize("cpu")  # nothing pending: a no-op


def test_metadata(be):
    assert be.math_mode("cpu", "float32") == "ieee (precision=default)"
    assert be.math_mode("cuda", "float32") == "tf32 (precision=default)"
    assert {"jax", "jaxlib"} <= set(be.versions())
    assert be.devices()[0] == "cpu" and be.peak_memory("cpu") is None


@pytest.mark.skipif(HAS_GPU, reason="checks the reason given where there is no GPU")
def test_jax_highest_is_unavailable_without_a_gpu():
    with pytest.raises(BackendUnavailable, match="no GPU"):
        JaxHighestBackend()


@pytest.mark.skipif(not HAS_GPU, reason="needs a GPU")
def test_gpu_devices_low_precision_and_memory(be):
    assert "cuda" in be.devices() and "bfloat16" in be.dtypes("cuda")
    assert be.device_name("cuda") == jax.devices("gpu")[0].device_kind
    op = catalog.get("lstm")
    inputs = op.inputs(op.shapes[2])
    be.reset_peak_memory("cuda")
    (y, h, C) = be.run("lstm", device="cuda", dtype="bfloat16", **inputs)
    assert y.dtype == np.float32 and np.all(np.isfinite(y))
    assert be.peak_memory("cuda") is None or be.peak_memory("cuda") > 0
    highest = JaxHighestBackend()
    assert highest.devices()[0] == "cuda" and highest.math_mode("cuda", "float32") == "ieee (precision=highest)"
    assert "dot_general" in highest.lower("lstm", device="cuda", **inputs).as_text()


def test_float16_softmax_gradient_keeps_its_precision(be):
    """Regression: ``jax.vjp`` of a float16 ``jax.nn.softmax`` over V = 1000 words was 3.5% off (a float16
    ``1/(Σ exp)²`` factor in subnormals); the backend's softmax now runs in float32 inside."""
    from seqbench.precision import calibration

    op, shape = catalog.get("softmax_prob"), {"V": 1000, "d": 64, "B": 128}
    inputs, cotangents, expected = calibration.reference_case(op, shape, "float16", "vjp")
    grads = be.vjp(op.name, cotangents, device="cpu", dtype="float16", **inputs)
    for name in ("E_in", "E_out"):
        relative = np.linalg.norm(grads[name] - expected[name]) / np.linalg.norm(expected[name])
        assert relative < 2e-3, f"{name}: {relative:.2g} relative error (float16 eps is 9.8e-4)"
    assert calibration.check(op, shape, "float16", "vjp", grads).passed
