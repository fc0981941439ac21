"""The ``cupy`` backend: unavailable with its reason where there is no GPU; on a GPU, its own checks.

Without a CUDA device (or without CuPy) the backend must be listed as
unavailable with the reason and asking for it must raise
``BackendUnavailable`` — never crash. The GPU tests below run only where the
backend is available (the conformance suite then checks every op, dtype and
shape on its own); they cover what the conformance suite does not: the path
choice between the persistent and the step-by-step kernels, that both agree,
and atomics under heavy contention.
"""

from __future__ import annotations

import math
import subprocess
import sys
import types

import pytest

import seqbench
from seqbench.precision import calibration, faithful, tolerance, training_check
from seqbench import catalog
from seqbench.backends import registry
from seqbench.backends.cupy import backend as cupy_backend
from seqbench.backends.cupy.planner import PERSISTENT_MAX_B, auto_takes_persistent
from seqbench.backends.protocol import BackendUnavailable, tree_leaves


def _reason() -> str:
    """Why the cupy backend is unavailable here ("" when it is available)."""
    try:
        registry.backend("cupy")
    except BackendUnavailable as error:
        return str(error)
    return ""


def _gpu_available() -> bool:
    return not _reason()


# ---- everywhere -------------------------------------------------------------------------------


def test_listed_with_a_reason_or_available(monkeypatch):
    # list only this backend: loading every other one (torch, jax) here would take seconds
    monkeypatch.setattr(registry, "names", lambda: ["cupy"])
    (status,) = registry.backends()
    assert status.name == "cupy"
    if status.available:
        assert status.devices and status.devices[0] == "cuda"
        assert "cupy" in status.versions
    else:
        assert status.reason.startswith("cupy: "), status.reason
        whys = ("no CUDA device", "no NVIDIA GPU/driver", "not importable", "did not compile")
        assert any(why in status.reason for why in whys), status.reason


def test_asking_for_it_raises_the_reason_when_unavailable():
    if _gpu_available():
        pytest.skip("a CUDA device is present: the backend is available")
    with pytest.raises(BackendUnavailable, match="^cupy: ") as error:
        seqbench.backend("cupy")
    assert str(error.value) == _reason()


def test_conformance_lists_it_as_one_skipped_case_with_the_reason():
    from seqbench.conformance.cases import Selection, cases

    if _gpu_available():
        pytest.skip("a CUDA device is present: conformance runs the backend for real")
    (case,) = cases(Selection(backends=("cupy",)))
    assert case.skip == _reason() and case.id == "cupy-unavailable"


def test_importing_the_modules_does_not_import_cupy():
    code = ("import importlib, pkgutil, sys, seqbench.backends.cupy as family; "
            "[importlib.import_module(f'{family.__name__}.{m.name}') for m in pkgutil.iter_modules(family.__path__)]; "
            "print('cupy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def _fake_cupy(count=None, error=None):
    def get_device_count():
        if error is not None:
            raise error
        return count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime), __version__="0")


INSUFFICIENT = RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")


@pytest.mark.parametrize(("fake", "driver", "reason"), [
    (None, True, "cupy is not importable"),
    (_fake_cupy(error=INSUFFICIENT), True, "no CUDA device: RuntimeError: cudaErrorInsufficientDriver"),
    (_fake_cupy(error=INSUFFICIENT), False, "no NVIDIA GPU/driver on this machine"),  # not CUDA's misleading words
    (_fake_cupy(count=0), True, "no CUDA device: cupy.cuda.runtime.getDeviceCount() returned 0"),
])
def test_unavailable_reasons(monkeypatch, fake, driver, reason):
    """No CuPy, a driver error, no driver at all, zero devices: each a BackendUnavailable with its reason."""
    monkeypatch.setitem(sys.modules, "cupy", fake)  # None: `import cupy` raises ImportError
    monkeypatch.setattr(cupy_backend, "_nvidia_driver", lambda: driver)
    with pytest.raises(BackendUnavailable) as error:
        cupy_backend.CupyBackend()
    assert str(error.value).startswith(reason), str(error.value)


def test_implements_the_recurrent_ops_and_embedding_objectives():
    wanted = {"rnn", "lstm", "gru", "gru_reset_after"} | {f"{kind}_{cell}" for kind in ("bidirectional", "stacked")
                                                         for cell in ("rnn", "lstm", "gru")}
    functions = set(cupy_backend.CupyBackend._FUNCTIONS)
    implemented = {name for name, op in catalog.ops().items() if op.function in functions}
    assert wanted <= implemented
    assert {"negative_sampling_loss", "negative_sampling_lookup_loss", "glove_cost"} <= implemented


def test_float16_left_out_where_its_kernels_did_not_compile_says_why():
    """A device whose float16 kernels failed to compile offers no float16, and asking for it gives the error."""
    be = cupy_backend.CupyBackend.__new__(cupy_backend.CupyBackend)  # no GPU here: the state __init__ would set
    be._count, be.compiler = 1, "nvrtc"
    be._kernels = {0: types.SimpleNamespace(half=False, half_error="CompileException: cuda_fp16.h: not found")}
    assert "float16" not in be.dtypes("cuda")
    support = be.supports("lstm", "cuda", "float16")
    assert not support and "float16 kernels did not compile with nvrtc" in support.reason
    assert "cuda_fp16.h: not found" in support.reason


# ---- on a GPU ---------------------------------------------------------------------------------

gpu = pytest.mark.skipif(not _gpu_available(), reason=f"no usable cupy backend here: {_reason()}")


def _inputs(op_name, shape, dtype, seed=0):
    op = catalog.get(op_name)
    return op, faithful.round_tree(op.inputs(shape, seed), dtype)


@gpu
@pytest.mark.parametrize("op_name", ["rnn", "lstm", "gru", "gru_reset_after"])
@pytest.mark.parametrize("B", [1, 16, 33])
def test_every_path_agrees_with_the_reference(op_name, B):
    be = seqbench.backend("cupy")
    shape = {"T": 24, "B": B, "I": 40, "H": 300, "ragged": True}
    op, inputs = _inputs(op_name, shape, "float32")
    paths = ("auto", "graph", "fused") + (("persistent",) if B <= PERSISTENT_MAX_B else ())
    results = {}
    try:
        for path in paths:
            be.recurrent_path = path
            results[path] = be.run(op_name, device="cuda", dtype="float32", **inputs)
            taken = set(be.last_paths)
            if path == "auto":
                U = math.ceil(shape["H"] / be._planners[0].sms)
                assert taken == {"persistent" if auto_takes_persistent(B, U) else "graph"}, (B, taken)
            else:
                assert taken == {path}, (path, taken, be.graph_status())
    finally:
        be.recurrent_path = "auto"
    for path, outputs in results.items():
        verdict = calibration.check(op, shape, "float32", "forward", dict(zip(op.outputs, outputs)))
        assert verdict.passed, f"{op_name} {path}: {verdict.worst}"


@gpu
@pytest.mark.parametrize("op_name", ["lstm", "gru", "bidirectional_gru"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_graphs_are_replayed_and_replays_equal_the_host_loop(op_name, dtype):
    """Calls repeated on the same inputs replay their captured graphs (forward and backward); replays
    agree with the host loop (the same kernels; the captured GEMMs are cuBLAS's through its C API,
    the host loop's CuPy's) and conform."""
    graph, fused = seqbench.backend("cupy-graph"), seqbench.backend("cupy-fused")
    op = catalog.get(op_name)
    shape = {"T": 40, "B": 64, "I": 48, "H": 128, "ragged": True}
    inputs, cotangents, _ = calibration.reference_case(op, shape, dtype, "vjp")
    before = graph.graph_status()
    run = graph.prepare(op_name, "cuda", dtype, inputs, cotangents)
    results = [graph._to_numpy_tree(run()) for _ in range(3)]
    after = graph.graph_status()
    assert not after["error"], after
    assert after["replays"] > before["replays"], f"no graph was replayed: {before} -> {after}"
    expected = fused.vjp(op_name, cotangents, device="cuda", dtype=dtype, **inputs)
    for got in results:
        for (path, a), (_, b) in zip(tree_leaves(got), tree_leaves(expected)):
            assert tolerance.error_in_eps(a, b, dtype) <= 64, f"{op_name} {dtype} {path}"
    verdict = calibration.check(op, shape, dtype, "vjp", results[-1])
    assert verdict.passed, verdict.worst


@gpu
def test_persistent_kernel_at_the_issue_sizes():
    """B ≤ 16, H = 1024 (float32 LSTM): the persistent kernel fits (or says why) and matches the fused path."""
    be = seqbench.backend("cupy")
    op, inputs = _inputs("lstm", {"T": 8, "B": 16, "I": 256, "H": 1024}, "float32")
    be.recurrent_path = "auto"
    auto = be.run("lstm", device="cuda", dtype="float32", **inputs)
    paths = be.last_paths
    be.recurrent_path = "fused"
    try:
        fused = be.run("lstm", device="cuda", dtype="float32", **inputs)
    finally:
        be.recurrent_path = "auto"
    for a, f in zip(auto, fused):
        assert tolerance.error_in_eps(a, f, "float32") < 1e3
    print(f"lstm B=16 H=1024 float32 ran on {paths}")


@gpu
def test_negative_sampling_atomics_under_contention():
    """Every pair updates the same few rows: the atomics must add up to the reference's scatter."""
    be = seqbench.backend("cupy")
    op, shape = catalog.get("negative_sampling_lookup_loss"), {"V": 3, "d": 64, "B": 4096, "K": 15}
    inputs, cotangents, _ = calibration.reference_case(op, shape, "float64", "vjp")
    grads = be.vjp(op.name, cotangents, device="cuda", dtype="float64", **inputs)
    verdict = calibration.check(op, shape, "float64", "vjp", grads)
    assert verdict.passed, verdict.worst


@gpu
def test_measurements():
    be = seqbench.backend("cupy")
    be.reset_peak_memory("cuda")
    op, inputs = _inputs("lstm", {"T": 16, "B": 64, "I": 32, "H": 128}, "float32")
    be.run("lstm", device="cuda", dtype="float32", **inputs)
    be.synchronize("cuda")
    assert be.peak_memory("cuda") > 0
    assert be.device_name("cuda")
    assert be.math_mode("cuda", "float64") == "ieee"


@gpu
@pytest.mark.parametrize("model", training_check.STEPS)
def test_trainer_steps_equal_the_reference_update(model):
    verdict = training_check.check_step(seqbench.backend("cupy"), "cuda", "float32", model)
    assert verdict.passed, f"{model}: {verdict.worst}"


def test_auto_takes_the_persistent_kernel_only_where_it_was_measured_faster():
    """batch 1 with at most two units per block (H ≤ 2·#SMs); the graph path everywhere else."""
    assert auto_takes_persistent(1, 2) and auto_takes_persistent(1, 1)
    assert not auto_takes_persistent(1, 8)  # H = 1024 on 132 SMs
    assert not auto_takes_persistent(16, 2)
