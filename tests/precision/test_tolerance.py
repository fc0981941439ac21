"""The tolerance model fails wrong answers in every precision and math mode, and passes faithful ones.

Wrong backends are third-party plug-ins (``tests/plugins/wrong_backends.py``)
found through the ``seqbench.backends`` entry point of a distribution made
in a temporary folder, and checked by the conformance suite as a user's
``pytest --pyargs seqbench.conformance --seqbench-backend=...`` would.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from seqbench.precision import calibration, faithful, tolerance
from seqbench import catalog
from seqbench.backends import registry

import wrong_backends  # noqa: E402
from plugin_site import entry_point_site  # noqa: E402

RECURRENT = "rnn,lstm,gru_reset_after,bidirectional_rnn,bidirectional_lstm,stacked_gru"
EMBEDDING = "sequence_loss,softmax_prob,negative_sampling_lookup_loss,glove_cost"
#: what a scaled backend must fail: a cell, a bidirectional and a stacked network, the loss and two embedding ops
SCALED = "rnn,bidirectional_lstm,stacked_gru,sequence_loss,softmax_prob,glove_cost"


@pytest.fixture(scope="module")
def entry_points(tmp_path_factory):
    """A distribution declaring the plug-ins in the ``seqbench.backends`` entry-point group, on ``sys.path``."""
    site = entry_point_site(tmp_path_factory.mktemp("site"), "wrong_backends", wrong_backends.BACKENDS)
    sys.path.insert(0, str(site))
    yield
    sys.path.remove(str(site))
    for cls in wrong_backends.BACKENDS:
        registry.unregister(cls.name)


def conformance(pytester, backend, *options):
    result = pytester.runpytest_inprocess(
        "--pyargs", "seqbench.conformance", f"--seqbench-backend={backend}", "-p", "no:cacheprovider",
        "-k", "test_forward or test_vjp", *options)
    return result, result.parseoutcomes()


def test_plugins_are_found_through_the_entry_point(entry_points):
    assert {cls.name for cls in wrong_backends.BACKENDS} <= set(registry.names())
    assert registry.backend("one-percent-off").devices() == ["cpu", "cpu:tf32"]


@pytest.mark.parametrize(("backend", "options"), [
    ("one-percent-off", ["--seqbench-dtype=float16"]),
    ("one-percent-off", ["--seqbench-device=cpu:tf32"]),
    ("ten-percent-off", ["--seqbench-dtype=bfloat16"]),
    ("1e-5-off", ["--seqbench-dtype=float32"]),
], ids=["float16-1%", "tf32-1%", "bfloat16-10%", "float32-1e-5"])
def test_a_scaled_backend_fails_every_case(entry_points, pytester, backend, options):
    result, outcomes = conformance(pytester, backend, f"--seqbench-op={SCALED}", *options)
    assert outcomes.get("failed", 0) > 0 and "passed" not in outcomes, outcomes


def test_a_wrong_reverse_direction_gradient_fails_and_is_named(entry_points, pytester):
    result, outcomes = conformance(pytester, "wrong-reverse-gradient", "--seqbench-op=bidirectional_rnn,bidirectional_lstm")
    # forward is right everywhere; every gradient case fails, in every precision and math mode
    vjp_cases = 2 * (2 * 4 + 2)  # two ops × (4 dtypes × 2 shapes on cpu + 2 shapes on cpu:tf32)
    assert (outcomes.get("passed"), outcomes.get("failed")) == (vjp_cases, vjp_cases), outcomes
    result.stdout.fnmatch_lines(["*bidirectional_rnn vjp on wrong-reverse-gradient/cpu/float16: 'params_bwd/*"])


def test_a_faithful_rounding_backend_passes_every_case(entry_points, pytester):
    result, outcomes = conformance(pytester, "rounding", f"--seqbench-op={RECURRENT},{EMBEDDING}")
    assert outcomes.get("passed", 0) > 100 and "failed" not in outcomes, outcomes


# --- the model's parts --------------------------------------------------------------------------


def test_the_faithful_arrays_round_like_the_precision():
    x, y = np.float32(1 / 3), np.float32(2 / 3)
    a, b = faithful.rounded(np.array([x]), "float16"), faithful.rounded(np.array([y]), "float16")
    assert type(a + b).__name__ == "Rounded_float16"
    assert float((a * b)[0]) == float(np.float16(np.float16(x) * np.float16(y)))  # rounded after the product
    assert float(np.tanh(a)[0]) == float(np.float16(np.tanh(np.float16(x))))
    # bfloat16: 8 significant bits; 1 + 2^-9 is not representable, 1 + 2^-7 is
    assert float(faithful.rounded(np.array([1 + 2**-9]), "bfloat16")[0]) == 1.0
    assert float(faithful.rounded(np.array([1 + 2**-7]), "bfloat16")[0]) == 1 + 2**-7
    # float32 accumulation in a float16 matmul: 4096 ones add up to 4096, not to float16's 2048 stall
    ones = faithful.rounded(np.ones((1, 4096)), "float16")
    assert float((ones @ ones.T)[0, 0]) == 4096.0
    # TF32: matmul inputs lose mantissa bits below 2^-10, storage and other arithmetic stay float32
    t = faithful.rounded(np.array([[1 + 2**-12]]), "tf32")
    assert float((t @ np.ones((1, 1)))[0, 0]) == 1.0 and float((t * 1.0)[0, 0]) == 1 + 2**-12
    assert float(np.einsum("ij,jk->ik", t, np.ones((1, 1)))[0, 0]) == 1.0


def test_a_scatter_add_stores_every_update():
    """``np.add.at`` into a float16 gradient rounds after each update, in order, as a framework's ``+=``."""
    grad = faithful.rounded(np.zeros((2, 1)), "float16")
    np.add.at(grad, np.array([0] * 4000 + [1] * 10), faithful.rounded(np.full((4010, 1), 0.1), "float16"))
    sequential = np.float16(0)
    for _ in range(4000):
        sequential = np.float16(sequential + np.float16(0.1))
    assert float(grad[0, 0]) == float(sequential) == 256.0  # float16 stalls: 256 + 0.1 rounds to 256
    assert abs(float(grad[1, 0]) - 1.0) < 1e-2


def test_errors_measure_the_worst_entry_and_the_typical_one():
    r = np.linspace(-1, 1, 1001)
    scaled = tolerance.errors(r * 1.01, r, "float16")
    assert scaled["l2"] == pytest.approx(0.01 / tolerance.EPS["float16"])
    one_entry = r.copy()
    one_entry[500] += 0.05  # an entry near zero, off by 5% of the array's scale
    e = tolerance.errors(one_entry, r, "float16")
    assert e["max"] > 50 and e["l2"] < 3  # the worst-entry measure catches what the typical one averages away
    assert tolerance.errors(np.full(3, np.nan), np.ones(3), "float32")["max"] == math.inf
    assert tolerance.errors(np.ones(2), np.ones(3), "float32")["l2"] == math.inf


def test_tf32_runs_are_measured_and_capped_in_tf32_eps():
    assert tolerance.precision("float32", "tf32") == "tf32"
    assert tolerance.precision("float32", "tf32 (precision=default)") == "tf32"
    assert tolerance.precision("float32", "ieee") == "float32"
    assert tolerance.precision("float64", "tf32") == "float64"
    op = catalog.get("lstm")
    shape = op.shapes[-1]
    assert tolerance.cap(op, shape, "tf32", "forward") * tolerance.EPS["tf32"] > \
        100 * tolerance.cap(op, shape, "float32", "forward") * tolerance.EPS["float32"]
    r = np.linspace(-1, 1, 101)
    assert tolerance.error_in_eps(r + 1e-4, r, "tf32") < tolerance.error_in_eps(r + 1e-4, r, "float32") / 1000


@pytest.mark.parametrize("precision", ["float16", "bfloat16", "tf32", "float32"])
def test_caps_bound_every_budget_near_the_error_analysis(precision):
    """float16 at the recurrent conformance shape (T = 32, fan-in 48): outputs capped near 1e-2 relative."""
    op = catalog.get("lstm")
    shape = {"T": 32, "B": 8, "I": 16, "H": 32}
    cap = tolerance.cap(op, shape, precision, "forward")
    if precision == "float16":
        assert cap * tolerance.EPS["float16"] == pytest.approx(1.1e-2, rel=0.05)
    verdict = tolerance.judge({"y": {"max": 0.0, "l2": 0.0, "size": 8192}}, {"y": {"max": 1e9, "l2": 1e9}}, cap)
    assert all(c.budget == cap for c in verdict.checks)  # a huge calibration cannot loosen the cap


def test_faithful_errors_sit_under_the_caps():
    """The caps leave room above a faithful implementation, in every precision (worst leaf ≤ 0.7 of the cap)."""
    for precision in ("float16", "bfloat16", "tf32"):
        for name in ("lstm", "bidirectional_rnn", "softmax_prob", "glove_cost"):
            op = catalog.get(name)
            shape = op.shapes[-1]
            for kind in calibration.KINDS:
                cap = tolerance.cap(op, shape, precision, kind)
                controls = calibration.control_errors(op, shape, precision, kind).values()
                worst = max(e[m] for e in controls for m in tolerance.METRICS)
                assert worst <= 0.7 * cap, (name, precision, kind, worst, cap)


def test_calibrations_are_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(calibration, "_MEMORY", {})
    op, shape = catalog.get("rnn"), {"T": 3, "B": 2, "I": 2, "H": 3}
    first = calibration.control_errors(op, shape, "float16", "vjp")
    assert len(list(tmp_path.rglob("*.json"))) == 1
    monkeypatch.setattr(calibration, "_MEMORY", {})
    monkeypatch.setattr(calibration, "_calibrate", lambda *a: pytest.fail("recomputed a cached calibration"))
    assert calibration.control_errors(op, shape, "float16", "vjp") == first
    (next(tmp_path.rglob("*.json"))).write_text("{trunc")  # a half-written file is recomputed, not trusted
    monkeypatch.setattr(calibration, "_MEMORY", {})
    with pytest.raises(pytest.fail.Exception, match="recomputed"):
        calibration.control_errors(op, shape, "float16", "vjp")


def test_float64_is_calibrated_by_float32_in_eps():
    op, shape = catalog.get("gru"), {"T": 4, "B": 2, "I": 3, "H": 5}
    assert calibration.control_errors(op, shape, "float64", "forward") == \
        calibration.control_errors(op, shape, "float32", "forward")
