"""The CUDA kernels' math on the CPU, against the NumPy reference (no GPU needed).

``backends/cupy/kernels/host_harness.cu`` is built once per session (nvcc, else
g++) into a shared library and loaded with ctypes. Two levels:

* one step of each cell (RNN, LSTM, both GRUs) and the embedding terms:
  preactivations computed with NumPy, the pointwise math of ``cell_math.cuh``
  run on the host, compared with the reference's ``step``/``step_vjp``;
* whole ops: the cupy backend's own code (:mod:`seqbench.backends.cupy.recurrent`,
  :mod:`seqbench.backends.cupy.cells`, :mod:`seqbench.backends.cupy.embedding`) run with NumPy arrays and the
  kernels of ``rnn_cells.cu``/``embedding.cu`` compiled for the host, over
  every catalog shape, forward and gradients, judged as the conformance suite judges;
  the recurrent ops once more with their forward through the persistent
  kernel (``persistent_lstm.cu``), its blocks run one after the other as if
  the device had 5 SMs (so blocks own several units, the last one padding).

What only a GPU can check: CuPy's launches, the grid-wide barrier and memory
visibility of the persistent kernel, atomics under contention, and speed.
"""

from __future__ import annotations

import ctypes
import importlib
import subprocess
import time
import types

import numpy as np
import pytest

from seqbench.precision import calibration, faithful, tolerance, training_check
from seqbench import catalog
from seqbench.backends.cupy import cells, embedding, recurrent
from seqbench.backends.cupy.context import Context
from seqbench.backends.cupy.graphs import StepGraphs
from seqbench.backends.cupy.host_kernels import HostKernels
from seqbench.backends.cupy.planner import PERSISTENT_ROWS, persistent_geometry
from seqbench.backends.cupy.toolchain import host_build_command
from seqbench.backends.protocol import tree_leaves, tree_map
from seqbench.reference.primitives import mv

# the cell modules (seqbench.reference re-exports functions of the same names)
rnn, lstm, gru = (importlib.import_module(f"seqbench.reference.{name}") for name in ("rnn", "lstm", "gru"))

DTYPES = ("float32", "float64")


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    """The host build of the kernels, compiled once per test session."""
    try:
        command = host_build_command(tmp_path_factory.mktemp("host_harness") / "libseqbench_host.so")
    except FileNotFoundError as error:
        pytest.skip(f"cannot build the host harness: {error}")
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, f"building the host harness failed:\n$ {' '.join(command)}\n{done.stderr}"
    print(f"host harness built in {time.perf_counter() - start:.1f}s with {command[0]}")
    return HostKernels(command[command.index("-o") + 1])


class Math:
    """The cm_* functions of the host harness on NumPy arrays of one dtype."""

    def __init__(self, host, dtype):
        self.host, self.dtype = host, np.dtype(dtype)

    def __call__(self, name, *arrays, out_shapes=(), scalars=()):
        outs = [np.zeros(shape, self.dtype) for shape in out_shapes]
        ins = [np.ascontiguousarray(a, dtype=np.int32 if np.asarray(a).dtype.kind in "ib" else self.dtype)
               for a in arrays]
        n = ins[0].shape[-1] if ins else 0
        fn = self.host.function(f"cm_{name}", self.dtype.name)
        fn(ctypes.c_int(n), *(ctypes.c_void_p(a.ctypes.data) for a in ins),
           *(self.host._arg(self.dtype.type(s)) for s in scalars), *(ctypes.c_void_p(o.ctypes.data) for o in outs))
        return outs


def cast(tree, dtype):
    return tree_map(lambda a: a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a, tree)


def assert_close(actual, expected, dtype, what, eps_budget=64.0):
    err = tolerance.error_in_eps(actual, expected, dtype)
    assert err <= eps_budget, f"{what}: {err:.3g} eps from the reference (budget {eps_budget})"


def _cell_setup(cell, I, H, B, dtype, seed=0):
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    p = {name: rng.uniform(-k, k, shape) for name, shape in cell.param_shapes(I, H).items()}
    x, h, C = rng.standard_normal((B, I)), 0.5 * rng.standard_normal((B, H)), 0.5 * rng.standard_normal((B, H))
    dh, dC = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    return faithful.round_tree((p, x, h, C, dh, dC), dtype)  # as the conformance suite rounds inputs


# ---- one step, pointwise -----------------------------------------------------------------------


def test_sigmoid_is_stable_and_exact(host):
    a = np.array([-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0])
    for dtype in DTYPES:
        (s,) = Math(host, dtype)("sigmoid", a, out_shapes=[a.shape])
        assert np.all(np.isfinite(s))
        assert_close(s, 1 / (1 + np.exp(-a.clip(-700, 700))), dtype, f"sigmoid {dtype}", 2)
        (ls,) = Math(host, dtype)("log_sigmoid", a, out_shapes=[a.shape])
        assert_close(ls, -np.logaddexp(0, -a), dtype, f"log sigmoid {dtype}", 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rnn_step(host, dtype):
    p, x, h_prev, _, dh, _ = _cell_setup(rnn.CELL, 5, 7, 3, dtype)
    m = Math(host, dtype)
    (h_ref,), cache = rnn.step(p, x, (h_prev,))
    a = mv(p["W_h"], h_prev) + mv(p["W_x"], x) + p["b"]
    (h,) = m("rnn_forward", a.ravel(), out_shapes=[a.size])
    assert_close(h.reshape(a.shape), h_ref, dtype, "rnn h")
    (da,) = m("rnn_backward", h, dh.ravel(), out_shapes=[a.size])
    da = da.reshape(a.shape)
    (dh_prev_ref,), dx_ref, grads = rnn.step_vjp(p, cache, (dh,))
    assert_close(da @ p["W_h"], dh_prev_ref, dtype, "rnn dh_prev")
    assert_close(da @ p["W_x"], dx_ref, dtype, "rnn dx")
    assert_close(da.T @ h_prev, grads["W_h"], dtype, "rnn dW_h")


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_step(host, dtype):
    p, x, h_prev, C_prev, dh, dC = _cell_setup(lstm.CELL, 5, 7, 3, dtype)
    m = Math(host, dtype)
    (h_ref, C_ref), cache = lstm.step(p, x, (h_prev, C_prev))
    a = np.stack([mv(p[f"W_{g}h"], h_prev) + mv(p[f"W_{g}x"], x) + p[f"b_{g}"] for g in lstm.GATES])  # (4, B, H)
    n = h_prev.size
    gates, C, h = m("lstm_forward", a.reshape(4, n), C_prev.ravel(), out_shapes=[(4, n), n, n])
    for k, name in enumerate(("f", "i", "o", "C_tilde")):
        assert_close(gates[k].reshape(h_prev.shape), cache[3 + k], dtype, f"lstm {name}")
    assert_close(C.reshape(C_ref.shape), C_ref, dtype, "lstm C")
    assert_close(h.reshape(h_ref.shape), h_ref, dtype, "lstm h")

    da, dC_prev = m("lstm_backward", gates, C_prev.ravel(), dh.ravel(), dC.ravel(), out_shapes=[(4, n), n])
    (dh_prev_ref, dC_prev_ref), dx_ref, grads = lstm.step_vjp(p, cache, (dh, dC))
    da = da.reshape(4, *h_prev.shape)
    assert_close(dC_prev.reshape(C_prev.shape), dC_prev_ref, dtype, "lstm dC_prev")
    assert_close(sum(da[k] @ p[f"W_{g}h"] for k, g in enumerate(lstm.GATES)), dh_prev_ref, dtype, "lstm dh_prev")
    assert_close(sum(da[k] @ p[f"W_{g}x"] for k, g in enumerate(lstm.GATES)), dx_ref, dtype, "lstm dx")
    for k, g in enumerate(lstm.GATES):
        assert_close(da[k].T @ h_prev, grads[f"W_{g}h"], dtype, f"lstm dW_{g}h")
        assert_close(da[k].sum(0), grads[f"b_{g}"], dtype, f"lstm db_{g}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gru_notes_step(host, dtype):
    p, x, h_prev, _, dh, _ = _cell_setup(gru.CELLS["notes"], 5, 7, 3, dtype)
    m = Math(host, dtype)
    (h_ref,), cache = gru.step_notes(p, x, (h_prev,))
    _, _, z_ref, r_ref, h_tilde_ref = cache
    n = h_prev.size
    shape = h_prev.shape
    a_zr = np.stack([mv(p["W_zh"], h_prev) + mv(p["W_zx"], x), mv(p["W_rh"], h_prev) + mv(p["W_rx"], x)])
    z, r, rh = m("gru_notes_forward_1", a_zr.reshape(2, n), h_prev.ravel(), out_shapes=[n, n, n])
    a_h = mv(p["W_hh"], rh.reshape(shape).astype(float)) + mv(p["W_hx"], x)
    h_tilde, h = m("gru_notes_forward_2", a_h.ravel(), z, h_prev.ravel(), out_shapes=[n, n])
    for got, want, name in ((z, z_ref, "z"), (r, r_ref, "r"), (h_tilde, h_tilde_ref, "h~"), (h, h_ref, "h")):
        assert_close(got.reshape(shape), want, dtype, f"gru notes {name}")

    da_z, da_h, dh_direct = m("gru_notes_backward_1", z, h_tilde, h_prev.ravel(), dh.ravel(), out_shapes=[n, n, n])
    da_z, da_h = da_z.reshape(shape), da_h.reshape(shape)
    d_rh = da_h @ p["W_hh"]
    da_r, dh_reset = m("gru_notes_backward_2", r, h_prev.ravel(), d_rh.ravel(), out_shapes=[n, n])
    da_r = da_r.reshape(shape)
    (dh_prev_ref,), dx_ref, grads = gru.step_notes_vjp(p, cache, (dh,))
    dh_prev = dh_direct.reshape(shape) + dh_reset.reshape(shape) + da_z @ p["W_zh"] + da_r @ p["W_rh"]
    assert_close(dh_prev, dh_prev_ref, dtype, "gru notes dh_prev")
    assert_close(da_z @ p["W_zx"] + da_r @ p["W_rx"] + da_h @ p["W_hx"], dx_ref, dtype, "gru notes dx")
    for name, da, v in (("W_zh", da_z, h_prev), ("W_rh", da_r, h_prev), ("W_hh", da_h, rh.reshape(shape)),
                        ("W_hx", da_h, x)):
        assert_close(da.T @ v, grads[name], dtype, f"gru notes d{name}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gru_reset_after_step(host, dtype):
    p, x, h_prev, _, dh, _ = _cell_setup(gru.CELLS["reset_after"], 5, 7, 3, dtype)
    m = Math(host, dtype)
    (h_ref,), cache = gru.step_reset_after(p, x, (h_prev,))
    _, _, z_ref, r_ref, n_ref, h_tilde_ref = cache
    size, shape = h_prev.size, h_prev.shape
    a = np.stack([
        mv(p["W_zx"], x) + p["b_zx"] + mv(p["W_zh"], h_prev) + p["b_zh"],
        mv(p["W_rx"], x) + p["b_rx"] + mv(p["W_rh"], h_prev) + p["b_rh"],
        mv(p["W_hx"], x) + p["b_hx"],
    ])
    n = mv(p["W_hh"], h_prev) + p["b_hh"]
    z, r, h_tilde, h = m("gru_reset_after_forward", a.reshape(3, size), n.ravel(), h_prev.ravel(),
                         out_shapes=[size] * 4)
    for got, want, name in ((z, z_ref, "z"), (r, r_ref, "r"), (h_tilde, h_tilde_ref, "h~"), (h, h_ref, "h")):
        assert_close(got.reshape(shape), want, dtype, f"gru reset_after {name}")

    (out,) = m("gru_reset_after_backward", z, r, n.ravel(), h_tilde, h_prev.ravel(), dh.ravel(), out_shapes=[(5, size)])
    da_z, da_r, da_h, dn, dh_direct = (o.reshape(shape) for o in out)
    (dh_prev_ref,), dx_ref, grads = gru.step_reset_after_vjp(p, cache, (dh,))
    assert_close(dh_direct + dn @ p["W_hh"] + da_z @ p["W_zh"] + da_r @ p["W_rh"], dh_prev_ref, dtype,
                 "gru reset_after dh_prev")
    assert_close(da_z @ p["W_zx"] + da_r @ p["W_rx"] + da_h @ p["W_hx"], dx_ref, dtype, "gru reset_after dx")
    for name, value in (("W_hh", dn.T @ h_prev), ("b_hh", dn.sum(0)), ("b_hx", da_h.sum(0)), ("W_zh", da_z.T @ h_prev),
                        ("b_rx", da_r.sum(0))):
        assert_close(value, grads[name], dtype, f"gru reset_after d{name}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_terms(host, dtype):
    from seqbench.reference.glove import weighting
    from seqbench.reference.word2vec import log_sigmoid

    m = Math(host, dtype)
    s = tolerance.round_to(np.array([-40.0, -3.0, -0.5, 0.0, 0.25, 2.0, 40.0]), dtype)
    for positive in (0, 1):
        term, grad = m("ns_terms", s, np.full(s.shape, positive), out_shapes=[s.size, s.size])
        sign = 1 if positive else -1
        assert_close(term, -log_sigmoid(sign * s), dtype, f"negative-sampling term (positive={positive})", 4)
        assert_close(grad, -sign / (1 + np.exp(sign * s)), dtype, f"its derivative (positive={positive})", 4)
    x = np.array([0.5, 3.0, 99.0, 100.0, 250.0])
    dot, b_i, b_j = (tolerance.round_to(np.linspace(-1, 1, x.size) * c, dtype) for c in (1.0, 0.3, -0.2))
    f, r = m("glove_terms", dot, b_i, b_j, x, out_shapes=[x.size, x.size], scalars=(100.0, 0.75))
    assert_close(f, weighting(x), dtype, "GloVe f(x)", 4)
    assert_close(r, dot + b_i + b_j - np.log(x), dtype, "GloVe residual", 8)


# ---- whole ops: the backend's code on the host kernels -----------------------------------------

HOST_FUNCTIONS = recurrent.FUNCTIONS + embedding.FUNCTIONS
PERSISTENT_SMS = 5  # the emulated device's SM count: H = 32 gives U = 7 units per block, 5 blocks, 3 padding units
CASES = [
    pytest.param(op, shape, dtype, path, id=f"{op.name}-{path}-{dtype}-{catalog.shape_id(shape)}")
    for op in catalog.ops().values() if op.function in HOST_FUNCTIONS
    for path in (("fused", "persistent", "graph") if op.function in recurrent.FUNCTIONS else ("kernel",))
    for shape in op.shapes
    for dtype in (("float64",) if path == "graph" else DTYPES)  # graphs change the launching, not the arithmetic
]


def _run(ctx, op, inputs, cotangents=None):
    if op.function in recurrent.FUNCTIONS:
        if cotangents is None:
            return recurrent.recurrent_forward(ctx, op.function, inputs)
        return recurrent.recurrent_vjp(ctx, op.function, cotangents, inputs)
    if cotangents is None:
        return embedding.embedding_forward(ctx, op.function, inputs)
    return embedding.embedding_vjp(ctx, op.function, cotangents, inputs)


class Spy:
    """Counts the forward sequences the persistent kernel ran."""

    def __init__(self, persistent):
        self.persistent, self.ran = persistent, 0

    def __call__(self, *args):
        ran = self.persistent(*args)
        self.ran += bool(ran)
        return ran


@pytest.mark.parametrize(("op", "shape", "dtype", "path"), CASES)
def test_op_on_host_kernels(host, op, shape, dtype, path):
    """Forward and vjp of the backend's code over host-built kernels, judged as the conformance suite judges."""
    graphs = host.graphs() if path == "graph" else None
    ctx = host.context(PERSISTENT_SMS if path == "persistent" else None, graphs=graphs)
    if path == "persistent":
        ctx.persistent = spy = Spy(ctx.persistent)
    inputs, _, expected = calibration.reference_case(op, shape, dtype, "forward")
    actual = _run(ctx, op, cast(inputs, dtype))
    assert len(actual) == len(expected)
    verdict = calibration.check(op, shape, dtype, "forward", dict(zip(op.outputs, map(np.asarray, actual))))
    assert verdict.passed, f"{op.name} forward: {verdict.worst}"

    inputs, cotangents, expected_grads = calibration.reference_case(op, shape, dtype, "vjp")
    device_cotangents = tuple(np.asarray(c, dtype=dtype) for c in cotangents)
    grads = _run(ctx, op, cast(inputs, dtype), device_cotangents)
    expected_paths = [path for path, _ in tree_leaves(expected_grads)]
    assert sorted(map(str, expected_paths)) == sorted(str(path) for path, _ in tree_leaves(grads)), "gradient structure"
    verdict = calibration.check(op, shape, dtype, "vjp", tree_map(np.asarray, grads))
    assert verdict.passed, f"{op.name} gradients: {verdict.worst}"
    if path == "persistent":
        passes = 2 if op.function in ("bidirectional", "stacked") else 1
        assert spy.ran == 2 * passes, "every forward sequence should have run the persistent kernel"
    if path == "graph":
        assert set(ctx.paths) == {"graph"} and not graphs.error, (ctx.paths, graphs.error)
        assert graphs.captures >= 3, "the forward and backward loops should have run from captured graphs"


@pytest.mark.parametrize("kernel", sorted(PERSISTENT_ROWS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_persistent_shared_memory_formula(host, kernel, dtype):
    """The planner's shared-memory size is the kernel's (PersistentSmem::bytes)."""
    for B, H, sms in ((1, 6, 5), (16, 1024, 132), (3, 256, 108), (16, 700, 114)):
        grid, U, smem = persistent_geometry(kernel, B, H, sms, dtype)
        assert (grid - 1) * U < H <= grid * U and grid <= sms
        assert smem == host.persistent_smem_bytes(kernel, dtype, B, H, U), (B, H, sms)


def test_tied_negative_sampling_shares_one_gradient(host):
    """Tied matrices: one array and one gradient buffer, updated by both the input and the output rows."""
    op = catalog.get("negative_sampling_lookup_loss")
    inputs = op.inputs({"V": 6, "d": 4, "B": 8, "K": 3, "tied": True})
    grads = embedding.embedding_vjp(host.context(), op.function, (np.float64(1.0),), inputs)
    assert set(grads) == {"E_in"}
    assert_close(grads["E_in"], op.reference_vjp((1.0,), **inputs)["E_in"], "float64", "tied dE", 64)


# ---- the trainers' update steps on the host kernels ------------------------------------------------


class HostSteps:
    """The cupy backend's trainer steps (:mod:`seqbench.backends.cupy.embedding`) on the host build, as a backend."""

    def __init__(self, host):
        self.ctx = host.context()

    def training_steps(self, device, dtype):
        from seqbench.backends.protocol import TrainingSteps

        return TrainingSteps(lambda state, *batch: embedding.negative_sampling_step(self.ctx, state, *batch),
                             lambda state, *batch: embedding.glove_step(self.ctx, state, *batch))

    def to_device(self, array, device, dtype):
        return np.ascontiguousarray(array, dtype=dtype)

    def to_numpy(self, array):
        return np.asarray(array)

    def math_mode(self, device, dtype):
        return "ieee"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", training_check.STEPS)
def test_trainer_steps_on_the_host_kernels_equal_the_reference_update(host, model, dtype):
    verdict = training_check.check_step(HostSteps(host), "cuda", dtype, model)
    w = verdict.worst
    assert verdict.passed, f"{model} {dtype}: {w.leaf} {w.metric} {w.error:.3g} eps > budget {w.budget:.3g}"


# ---- step loops from graphs: a replay re-reads the buffers, a capture freezes the arguments -----


def _lstm_buffers(rng, T=5, B=3, I=4, H=6, dtype="float64"):
    spec = cells.cell_spec("lstm")
    params = {name: rng.uniform(-0.5, 0.5, shape) for name, shape in lstm.param_shapes(I, H).items()}
    P = cells.pack(np, spec, params)
    buffers = dict(xp_all=rng.standard_normal((T, B, 4 * H)), hs=np.zeros((T + 1, B, H)),
                   cs=np.zeros((T + 1, B, H)), y=np.zeros((T, B, H)), saved=np.zeros((T, B, 4 * H)), rh=None,
                   lengths=np.array([T, 2, 0][:B], dtype=np.int32))
    return spec, P, {k: v if v is None or v.dtype.kind == "i" else v.astype(dtype) for k, v in buffers.items()}


def test_a_replayed_step_loop_reads_the_buffers_current_values(host):
    """The second call on the same buffers replays the graph, and computes what the host loop computes
    on the buffers' new contents (inputs are read at replay, not frozen at capture)."""
    rng = np.random.default_rng(3)
    spec, P, b = _lstm_buffers(rng)
    graphs = host.graphs()
    ctx = host.context(graphs=graphs)
    scratch = {}  # the loop's scratch at the same address each call, as CuPy's memory pool hands it back
    ctx.xp = types.SimpleNamespace(
        empty=lambda shape, dtype: scratch.setdefault((shape, dtype), np.empty(shape, dtype)))
    for call in range(2):
        b["xp_all"][...] = rng.standard_normal(b["xp_all"].shape)
        b["hs"][0], b["cs"][0] = rng.standard_normal(b["hs"][0].shape), rng.standard_normal(b["cs"][0].shape)
        expected = {k: v.copy() for k, v in b.items() if v is not None}
        cells._forward_steps(host.context(), spec, P, *(expected.get(k) for k in b), "float64")
        assert cells._forward_steps(ctx, spec, P, *b.values(), "float64") == "graph"
        for name in ("hs", "cs", "y", "saved"):
            np.testing.assert_array_equal(b[name], expected[name], err_msg=f"call {call}: {name}")
    assert (graphs.captures, graphs.replays) == (1, 1)


def test_a_loop_reading_a_device_value_during_capture_goes_stale_on_replay(host):
    """The recording engine catches what a CUDA graph would get wrong: host work inside the loop
    happens once, at capture. (The check the graph path's conformance relies on can fail.)"""
    graphs = host.graphs()
    a, out = np.arange(1.0, 5.0), np.zeros(4)

    def loop():  # wrong: the scale is read on the host
        host.gemm(a[None, :], np.eye(4) * float(a[0]), out[None, :])

    for first in (1.0, 3.0):
        a[0] = first
        graphs(("scaled",), (a, out), loop)
        stale = not np.array_equal(out, a * a[0])
    assert stale, "the replay used the scale frozen at capture"


def test_step_graphs_key_tag_and_every_buffer_and_drop_the_least_recently_used():
    captured, launched = [], []
    graphs = StepGraphs(
        capture=lambda loop: captured.append(loop) or len(captured), launch=launched.append,
        eager=lambda loop: loop(), layout=lambda a: (id(a), a.shape), capacity=2)
    a, b, c = np.zeros(2), np.zeros(2), np.zeros(3)
    assert graphs(("forward", "lstm"), (a, None), lambda: None) == "graph"
    graphs(("forward", "lstm"), (a, None), lambda: None)  # replay
    graphs(("backward", "lstm"), (a, None), lambda: None)  # another tag: captured
    graphs(("forward", "lstm"), (b, None), lambda: None)  # another buffer: captured; drops the oldest
    graphs(("forward", "lstm"), (a, None), lambda: None)  # dropped before: captured again
    assert launched == [1, 1, 2, 3, 4] and (graphs.captures, graphs.replays) == (4, 1)
    graphs(("forward", "lstm"), (c, None), lambda: None)
    assert len(graphs._graphs) == 2


def test_a_failed_capture_runs_the_loop_eagerly_and_says_why():
    ran = []

    def refuse(loop):
        raise RuntimeError("capture refused")

    graphs = StepGraphs(
        capture=refuse, launch=None, eager=lambda loop: loop(), layout=id)
    assert graphs(("forward", "rnn"), (), lambda: ran.append(1)) == "fused"
    assert graphs(("forward", "rnn"), (), lambda: ran.append(2)) == "fused"
    assert ran == [1, 2] and graphs.error == "RuntimeError: capture refused"


class KeyCheck:
    """A step-graph engine that runs each loop eagerly and asserts that every array a launch or GEMM in it
    touches shares memory with a buffer of the loop's key: a graph replays only where those are unchanged."""

    def __init__(self, host):
        self.host, self.keyed, self.loops = host, None, 0

    def _touch(self, arrays):
        for a in arrays:
            if isinstance(a, np.ndarray) and self.keyed is not None:
                assert any(np.shares_memory(a, b) for b in self.keyed), f"{a.shape} {a.dtype} is not in the key"

    def launch(self, name, dtype, n, *args):
        self._touch(args)
        self.host.launch(name, dtype, n, *args)

    def gemm(self, a, b, out):
        self._touch((a, b, out))
        self.host.gemm(a, b, out)

    def __call__(self, tag, buffers, loop):
        self.keyed, self.loops = [b for b in buffers if b is not None], self.loops + 1
        try:
            loop()
        finally:
            self.keyed = None
        return "graph"

    def context(self):
        return Context(np, self.launch, self.launch, gemm=self.gemm, graphs=self)


@pytest.mark.parametrize("op", [op for op in catalog.ops().values() if op.function in recurrent.FUNCTIONS],
                         ids=lambda op: op.name)
def test_every_array_a_step_loop_touches_is_in_its_graph_key(host, op):
    check = KeyCheck(host)
    shape = op.shapes[0]
    inputs, cotangents, _ = calibration.reference_case(op, shape, "float64", "vjp")
    _run(check.context(), op, inputs, tuple(np.asarray(c) for c in cotangents))
    assert check.loops >= 2


def test_an_array_missing_from_a_graph_key_is_caught(host):
    check, keyed, other = KeyCheck(host), np.zeros((2, 2)), np.zeros((2, 2))
    with pytest.raises(AssertionError, match="not in the key"):
        check(("t",), (keyed,), lambda: check.gemm(keyed, other, keyed))
