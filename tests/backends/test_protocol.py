"""The harness itself: registry, protocol, results files, and that conformance catches wrong math."""

import json
import os

import numpy as np
import pytest

import seqbench
from seqbench import catalog
from seqbench.backends import registry
from seqbench.results import records as results
from seqbench.backends.numpy_backend import NumpyBackend
from seqbench.backends.protocol import BackendUnavailable, Unsupported


class OffByOneGRU(NumpyBackend):
    """Computes the reset_after GRU when asked for the notes' GRU: a wrong-equation backend."""

    name = "wrong-gru"

    def implemented(self):
        return {"gru", "rnn"}

    def forward_impl(self, op, device, dtype):
        if op.name == "gru":
            def wrong(x, params, h0, lengths, reverse, variant):
                zeros = {f"b_{g}{s}": np.zeros(params["W_zh"].shape[0], x.dtype) for g in "zrh" for s in "xh"}
                return seqbench.reference.gru(x, {**params, **zeros}, h0, lengths, reverse, variant="reset_after")
            return wrong
        return lambda **inputs: tuple(o * (1 + 1e-4) for o in op.reference(**inputs))  # 1e-4 relative error


class Missing(NumpyBackend):
    name = "missing"

    def __init__(self):
        raise BackendUnavailable("no such device on this machine")


class Broken(NumpyBackend):
    def __init__(self):
        raise ImportError("libfoo.so: cannot open shared object file")


@pytest.fixture
def plugins():
    registry.register("wrong-gru", OffByOneGRU)
    registry.register("missing", Missing)
    registry.register("broken", Broken)
    yield
    for name in ("wrong-gru", "missing", "broken"):
        registry.unregister(name)


def test_unavailable_backends_are_listed_with_their_reason(plugins):
    statuses = {s.name: s for s in registry.backends()}
    assert statuses["numpy"].available and statuses["numpy"].devices == ["cpu"]
    assert not statuses["missing"].available and "no such device" in statuses["missing"].reason
    assert not statuses["broken"].available and "libfoo.so" in statuses["broken"].reason
    with pytest.raises(BackendUnavailable, match="no such device"):
        seqbench.backend("missing")
    with pytest.raises(ValueError, match="backend must be one of"):
        seqbench.backend("nope")
    assert "missing" not in seqbench.available()


def test_conformance_catches_a_wrong_equation_and_a_small_error(plugins, pytester):
    result = pytester.runpytest_inprocess(
        "--pyargs", "seqbench.conformance", "--seqbench-backend=wrong-gru", "-p", "no:cacheprovider",
        "-k", "test_forward",
    )
    outcomes = result.parseoutcomes()
    # every gru and rnn forward case fails (float32 and float64, 3 shapes each); nothing else runs
    assert outcomes.get("failed") == 12 and "passed" not in outcomes
    result.stdout.fnmatch_lines(["*gru forward on wrong-gru/cpu/float64: 'y' is * eps (float64, * error) from the float64 reference*"])


def test_conformance_skips_an_unavailable_backend_with_its_reason(plugins, pytester):
    result = pytester.runpytest_inprocess("--pyargs", "seqbench.conformance", "--seqbench-backend=missing", "-rs")
    result.stdout.fnmatch_lines(["*SKIPPED*no such device on this machine*"])
    result = pytester.runpytest_inprocess(
        "--pyargs", "seqbench.conformance", "--seqbench-backend=numpy", "--seqbench-device=cuda", "-rs")
    result.stdout.fnmatch_lines(["*SKIPPED*numpy: no device 'cuda' here*"])


def test_run_resolves_the_gru_variant_and_rejects_contradictions():
    be = seqbench.backend("numpy")
    inputs = catalog.get("gru_reset_after").inputs({"T": 3, "B": 2, "I": 2, "H": 3})
    expected = seqbench.reference.gru(**inputs)
    got = be.run("gru", dtype="float64", **inputs)  # inputs carry variant="reset_after"
    np.testing.assert_array_equal(got[0], expected[0])
    op, resolved = catalog.resolve("bidirectional_gru", {"variant": "reset_after"})
    assert op.name == "bidirectional_gru_reset_after"
    with pytest.raises(ValueError, match="op 'gru' computes variant='notes'; got {'variant': 'reset_before'}"):
        be.run("gru", **{**inputs, "variant": "reset_before"})


def test_run_reports_unsupported_device_and_dtype():
    be = seqbench.backend("numpy")
    inputs = catalog.get("rnn").inputs({"T": 2, "B": 1, "I": 1, "H": 2})
    with pytest.raises(Unsupported, match="no device 'cuda' here"):
        be.run("rnn", device="cuda", **inputs)
    with pytest.raises(Unsupported, match="dtype float16 is not supported on cpu"):
        be.run("rnn", dtype="float16", **inputs)
    with pytest.raises(ValueError, match="dtype must be one of"):
        be.run("rnn", dtype="float8", **inputs)
    assert not be.supports("rnn", "cuda") and "no device" in be.supports("rnn", "cuda").reason


def test_backend_vjp_returns_the_reference_structure_in_the_dtype():
    be = seqbench.backend("numpy")
    op = catalog.get("stacked_lstm")
    inputs = op.inputs(op.shapes[0])
    grads = be.vjp("stacked_lstm", (None, None, None), dtype="float32", **inputs)
    assert set(grads) == {"x", "h0", "c0", "params"} and len(grads["params"]) == 2
    assert grads["x"].dtype == np.float32 and np.all(grads["x"] == 0)
    with pytest.raises(ValueError, match=r"cotangents\[0\] must be a 3-d array \(5, 3, 6\)"):
        be.vjp("stacked_lstm", (np.zeros(3), None, None), **inputs)


def test_results_are_merged_by_test_id_and_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "r" / "m.jsonl"
    results.merge_jsonl(path, [{"test_id": "a", "v": 1}, {"test_id": "b", "v": 2}])
    results.merge_jsonl(path, [{"test_id": "b", "v": 3}])
    assert sorted((r["test_id"], r["v"]) for r in results.read_jsonl(path)) == [("a", 1), ("b", 3)]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dumps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        results.merge_jsonl(path, [{"test_id": "c", "v": 4}])
    assert len(results.read_jsonl(path)) == 2  # the old file is intact
    assert sorted(os.listdir(path.parent)) == [".seqbench.lock", "m.jsonl"]  # and no temporary file is left behind


def test_corrupt_results_file_is_reported_with_its_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match="bad.jsonl:2: not a JSON line"):
        results.read_jsonl(path)


def test_backends_take_plain_lists_as_the_reference_does():
    op = catalog.get("rnn")
    inputs = op.inputs({"T": 3, "B": 2, "I": 2, "H": 3})
    as_lists = {**inputs, "x": inputs["x"].tolist(), "lengths": [3, 1]}
    expected = seqbench.reference.rnn(**as_lists)
    got = seqbench.backend("numpy").run("rnn", dtype="float64", **as_lists)
    np.testing.assert_array_equal(got[0], expected[0])


def test_the_large_lstm_shape_is_left_out_in_half_precision_on_the_cpu_unless_asked_for():
    from seqbench.conformance.cases import Selection, cases

    def large(sel):
        return {c.dtype for c in cases(sel) if c.op is not None and c.shape.get("T") == 256 and not c.skip}

    assert large(Selection(backends=("torch",), ops=("lstm",))) == {"float32", "float64"}
    assert large(Selection(backends=("torch",), ops=("lstm",), large=True)) == {"float16", "bfloat16", "float32",
                                                                                "float64"}
