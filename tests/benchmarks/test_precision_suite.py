"""The precision suite (benchmarks/bench_precision.py): conformance errors per point as asv tracks, lower is
better, selected by `seqbench bench` with the op's run."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

import wrong_backends
from seqbench import catalog
from seqbench.backends import registry
from seqbench.jobs import asv, bench
from seqbench.precision import calibration
from seqbench.selection import Selection

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def suite():
    sys.path.insert(0, str(ROOT))
    try:
        yield importlib.import_module("benchmarks.bench_precision")
    finally:
        sys.path.remove(str(ROOT))


@pytest.fixture
def scaled():
    """The most accurate float32 backend possible (the reference, stored in float32) and one 1% off."""
    for cls in (wrong_backends.Rounding, wrong_backends.OnePercentOff):
        registry.register(cls.name, cls)
    yield wrong_backends.Rounding.name, wrong_backends.OnePercentOff.name
    for cls in (wrong_backends.Rounding, wrong_backends.OnePercentOff):
        registry.unregister(cls.name)


def tracks(suite, op, *params):
    point = getattr(suite, op)()
    point.setup(*params)
    return point.track_error(*params), point.track_ratio(*params)


def test_one_class_per_precision_op_on_the_backend_axis_lower_is_better(suite):
    common = suite.common
    for name in common.PRECISION["ops"]:
        cls = getattr(suite, name)
        assert cls.params == [list(common.backends()), list(common.DEVICES), ["float32"]]
        assert cls.param_names == ["backend", "device", "dtype"]
    assert suite.lstm.track_error.unit == "eps" and suite.lstm.track_ratio.unit == "x faithful"
    assert common.precision_methods("quick") == ("track_error", "track_ratio")
    assert common.precision_methods("gate") == () and common.precision_methods("gpu") == ()


def test_the_tracks_are_the_conformance_cases_worst(suite):
    op = catalog.get("rnn")
    numpy_backend = registry.backend("numpy")
    verdicts = [calibration.measure(numpy_backend, op, shape, "cpu", "float32", kind)[1]
                for shape in op.shapes for kind in calibration.KINDS]
    error, ratio = tracks(suite, "rnn", "numpy", "cpu", "float32")
    assert error == max(v.max_error for v in verdicts) and 0 < error < 20
    assert ratio == max(v.ratio for v in verdicts) and 0.5 < ratio < 2  # numpy is the faithful arithmetic


def test_wrong_arithmetic_is_a_step_up(suite, scaled):
    exact, off = scaled
    best_error, best_ratio = tracks(suite, "lstm", exact, "cpu", "float32")
    wrong_error, wrong_ratio = tracks(suite, "lstm", off, "cpu", "float32")
    assert best_error < 4 and best_ratio < 1.5
    assert wrong_error > 1e4 and wrong_ratio > 100  # 1% is about 84000 eps of float32


def test_setup_skips_what_cannot_run_here_with_the_reason(suite):
    with pytest.raises(NotImplementedError, match="cuda"):
        tracks(suite, "lstm", "numpy", "cuda", "float32")
    with pytest.raises(NotImplementedError, match="must be one of"):
        tracks(suite, "lstm", "no-such-backend", "cpu", "float32")


def test_seqbench_bench_selects_the_precision_tracks_with_the_op(monkeypatch):
    pytest.importorskip("asv")
    monkeypatch.chdir(ROOT)
    common = asv.suite_common(ROOT / "asv.conf.json", {"benchmark_dir": "benchmarks"})
    selection, _ = bench.select(common, "quick", Selection(ops=("lstm", "sequence_loss"), backends=("numpy",)))
    lstm, loss = bench.patterns(common, selection)[:2]
    for method in common.PRECISION["methods"]:
        assert re.search(lstm, f"bench_precision.lstm.{method}('numpy', 'cpu', 'float32')")
        assert not re.search(lstm, f"bench_precision.lstm.{method}('torch', 'cpu', 'float32')")
        assert not re.search(loss, f"bench_precision.sequence_loss.{method}('numpy', 'cpu', 'float32')")
    assert re.search(lstm, "bench_recurrent.lstm.time_forward('numpy', 'cpu', 'float32', 16, 32, 8)")
    gate, _ = bench.select(common, "gate", Selection(ops=("lstm",), backends=("numpy",)))
    assert "bench_precision" not in bench.patterns(common, gate, "gate")[0]
    assert bench.count(common, "gate", gate) == 1 + 2  # the forward time and the two matmul peaks
