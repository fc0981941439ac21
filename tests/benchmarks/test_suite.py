"""The asv suite in benchmarks/ and `seqbench bench`: static parameters, skips, real bodies, synchronization."""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from seqbench.jobs import asv, bench
from seqbench.selection import Selection
from seqbench import catalog
from seqbench.backends import registry
from seqbench.backends.protocol import Backend, BackendUnavailable

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("bench_recurrent", "bench_composite", "bench_embedding")
METHODS = ("time_forward", "time_forward_backward", "peakmem_forward", "track_device_peak_memory",
           "track_throughput", "track_gflops")


@pytest.fixture(scope="module")
def suite():
    """The benchmark modules, imported as asv imports them (package ``benchmarks`` from the repo root)."""
    sys.path.insert(0, str(ROOT))
    try:
        modules = {name: importlib.import_module(f"benchmarks.{name}") for name in MODULES}
        yield modules
    finally:
        sys.path.remove(str(ROOT))


def classes(suite):
    return {name: cls for module in suite.values() for name, cls in vars(module).items()
            if isinstance(cls, type) and not name.startswith("_")}


def run_method(instance, method, params):
    """What asv does for one parameter combination: class setup, the method's own setup, the method."""
    instance.setup(*params)
    getattr(type(instance), method).setup(*params)
    return getattr(instance, method)(*params)


# --- the suite's shape -------------------------------------------------------------------------

def test_every_catalog_op_has_one_benchmark_class_with_every_method(suite):
    found = classes(suite)
    assert sorted(found) == sorted(catalog.ops())
    for name, cls in found.items():
        for method in METHODS:
            assert callable(getattr(cls, method)), f"{name} lacks {method}"
        assert cls.param_names[:3] == ["backend", "device", "dtype"]
        assert len(cls.params) == len(cls.param_names)
    assert found["lstm"].param_names == ["backend", "device", "dtype", "seq_len", "hidden", "batch"]
    assert found["sequence_loss"].param_names[3:] == ["seq_len", "vocab", "batch"]
    assert getattr(suite["bench_recurrent"], "lstm").track_gflops.unit == "GFLOP/s"
    assert getattr(suite["bench_recurrent"], "lstm").track_device_peak_memory.unit == "bytes"


def _params_in_subprocess(env_extra: dict, block: str = "") -> dict:
    """Every class's params, computed in a fresh interpreter; ``block`` names modules made unimportable."""
    code = (
        "import sys, json\n"
        f"for name in {block.split(',') if block else []!r}: sys.modules[name] = None\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import benchmarks.bench_recurrent as r, benchmarks.bench_composite as c, benchmarks.bench_embedding as e\n"
        "print(json.dumps({k: v.params for m in (r, c, e) for k, v in vars(m).items()"
        " if isinstance(v, type) and not k.startswith('_')}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQBENCH_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**env, **env_extra},
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_parameter_lists_do_not_depend_on_what_is_installed():
    installed = _params_in_subprocess({})
    without_frameworks = _params_in_subprocess({}, block="torch,jax,cupy")
    assert installed == without_frameworks
    lstm = installed["lstm"]
    # every registered backend, available here or not, less those whose traits leave them out of the quick grid
    assert lstm[0] == [b for b in registry.installed() if "quick" not in registry.traits(b).left_out_of_grids]
    assert "torch-compile" not in lstm[0] and {"numpy", "torch-native", "cupy"} <= set(lstm[0])
    assert lstm[1] == ["cpu", "cuda", "cuda:tf32"] and lstm[2] == ["float32"]
    assert lstm[3:] == [[16, 64], [32], [8]]


def test_the_grid_comes_from_seqbench_grid():
    full = _params_in_subprocess({"SEQBENCH_GRID": "full"})["lstm"]
    grid = [b for b in registry.installed() if "full" not in registry.traits(b).left_out_of_grids]
    assert full[0] == grid and full[2] == ["float32", "float64"]
    assert full[3] == [16, 64, 256, 1024, 4096] and full[4] == [64, 256, 1024, 2048] and full[5] == [1, 8, 64, 512]
    mid = _params_in_subprocess({"SEQBENCH_GRID": "mid"})["lstm"]
    assert len(mid[3]) * len(mid[4]) * len(mid[5]) < len(full[3]) * len(full[4]) * len(full[5])


# --- skips ---------------------------------------------------------------------------------

class _Unavailable(Backend):
    name = "bench-test-unavailable"

    def __init__(self):
        raise BackendUnavailable("its framework is not installed")


@pytest.fixture
def unavailable_backend():
    registry.register(_Unavailable.name, _Unavailable)
    yield _Unavailable.name
    registry.unregister(_Unavailable.name)


def test_setup_skips_what_cannot_run_here_with_the_reason(suite, unavailable_backend):
    lstm = getattr(suite["bench_recurrent"], "lstm")()
    with pytest.raises(NotImplementedError, match="not installed"):
        lstm.setup(unavailable_backend, "cpu", "float32", 16, 32, 8)
    with pytest.raises(NotImplementedError, match="cuda"):
        lstm.setup("numpy", "cuda", "float32", 16, 32, 8)
    with pytest.raises(NotImplementedError, match="dtype float16"):
        lstm.setup("numpy", "cpu", "float16", 16, 32, 8)
    with pytest.raises(NotImplementedError, match="CPU cap"):
        lstm.setup("numpy", "cpu", "float64", 4096, 2048, 512)
    with pytest.raises(NotImplementedError, match="must be one of"):
        lstm.setup("no-such-backend", "cpu", "float32", 16, 32, 8)


def test_device_memory_is_skipped_on_the_cpu(suite):
    lstm = getattr(suite["bench_recurrent"], "lstm")()
    with pytest.raises(NotImplementedError, match="host memory"):
        run_method(lstm, "track_device_peak_memory", ("numpy", "cpu", "float32", 16, 32, 8))


def test_an_op_a_backend_does_not_implement_is_skipped(suite):
    try:
        native = registry.backend("torch-native")
    except BackendUnavailable as error:
        pytest.skip(str(error))
    reason = native.supports("gru", "cpu", "float32").reason
    assert reason
    gru = getattr(suite["bench_recurrent"], "gru")()
    with pytest.raises(NotImplementedError) as raised:
        gru.setup("torch-native", "cpu", "float32", 16, 32, 8)
    assert str(raised.value) == reason


# --- real bodies ---------------------------------------------------------------------------

@pytest.mark.parametrize("module, op, sizes", [
    ("bench_recurrent", "lstm", (16, 32, 8)),
    ("bench_composite", "bidirectional_gru", (8, 16, 4)),
    ("bench_recurrent", "sequence_loss", (8, 50, 4)),
])
def test_a_numpy_benchmark_runs_without_asv(suite, module, op, sizes):
    params = ("numpy", "cpu", "float32", *sizes)
    bench_class = getattr(suite[module], op)
    assert run_method(bench_class(), "time_forward", params) is None
    assert run_method(bench_class(), "time_forward_backward", params) is None
    run_method(bench_class(), "peakmem_forward", params)
    tokens = run_method(bench_class(), "track_throughput", params)
    gflops = run_method(bench_class(), "track_gflops", params)
    shape = suite["bench_recurrent"].common.bench_shape(catalog.get(op), dict(zip(bench_class.shape_keys, sizes)))
    assert tokens > 0 and gflops > 0
    assert tokens / gflops == pytest.approx(catalog.get(op).tokens(shape) / catalog.get(op).flops(shape) * 1e9,
                                            rel=0.9)


def test_an_embedding_benchmark_runs_and_counts_words(suite):
    cls = getattr(suite["bench_embedding"], "negative_sampling_lookup_loss")
    assert cls.param_names[3:] == ["vocab", "dim", "batch"]
    assert cls.track_throughput.unit == "words/s"
    assert run_method(cls(), "track_throughput", ("numpy", "cpu", "float32", 100, 8, 32)) > 0


def test_asv_runs_a_benchmark_as_asv_does(suite):
    """asv_runner's own loop: the class setup, then the method's setup, then timing (one combination)."""
    discovery = pytest.importorskip("asv_runner.discovery")
    cls = getattr(suite["bench_recurrent"], "rnn")
    index = next(i for i, p in enumerate(itertools.product(*cls.params))
                 if p[:3] == ("numpy", "cpu", "float32"))
    sys.path.insert(0, str(ROOT))
    try:
        benchmark = discovery.get_benchmark_from_name(str(ROOT / "benchmarks"), f"bench_recurrent.rnn.time_forward-{index}")
        assert benchmark.check(str(ROOT / "benchmarks"))
        benchmark.set_param_idx(index)  # check() walks the parameter points and leaves another one current
        assert benchmark.do_setup() is False  # not skipped
        result = benchmark.do_run()
        assert result["samples"] and all(s > 0 for s in result["samples"])
        skipped = discovery.get_benchmark_from_name(str(ROOT / "benchmarks"),
                                                    f"bench_recurrent.rnn.track_device_peak_memory-{index}")
        assert skipped.do_setup() is True
    finally:
        sys.path.remove(str(ROOT))


# --- synchronization -------------------------------------------------------------------------

class _AsyncBackend(Backend):
    """A backend whose calls only enqueue work, done in :meth:`synchronize` (like a CUDA stream)."""

    name = "bench-test-async"
    SECONDS_PER_STEP = 0.0005

    def __init__(self):
        self.queued = 0.0

    def implemented(self):
        return {"lstm"}

    def to_device(self, array, device, dtype):
        return np.asarray(array, dtype=dtype) if dtype else np.asarray(array)

    def to_numpy(self, array):
        return np.asarray(array)

    def forward_impl(self, op, device, dtype):
        def launch(**inputs):
            self.queued += inputs["x"].shape[0] * self.SECONDS_PER_STEP
            return ()

        return launch

    def vjp_impl(self, op, device, dtype):
        def launch(cotangents, **inputs):
            self.queued += 2 * inputs["x"].shape[0] * self.SECONDS_PER_STEP
            return {}

        return launch

    def synchronize(self, device):
        time.sleep(self.queued)
        self.queued = 0.0


@pytest.fixture
def async_backend():
    registry.register(_AsyncBackend.name, _AsyncBackend)
    yield _AsyncBackend.name
    registry.unregister(_AsyncBackend.name)


def _best_of(fn, n=5):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_timed_calls_include_the_device_work_of_an_async_backend(suite, async_backend):
    lstm_class = getattr(suite["bench_recurrent"], "lstm")
    timed = {}
    for T in (16, 256):
        params = (async_backend, "cpu", "float32", T, 8, 2)
        instance = lstm_class()
        run_method(instance, "time_forward", params)
        launch_only = _best_of(lambda: (instance.case.forward(), setattr(instance.case.backend, "queued", 0.0)))
        timed[T] = _best_of(lambda: instance.time_forward(*params))
        work = T * _AsyncBackend.SECONDS_PER_STEP
        assert launch_only < work / 4, "the fake backend's launch should be cheap"
        assert timed[T] >= work, f"time_forward ({timed[T]:.4f} s) misses the queued device work ({work:.4f} s)"
        run_method(instance, "time_forward_backward", params)
        assert _best_of(lambda: instance.time_forward_backward(*params)) >= 2 * work
        assert run_method(instance, "track_gflops", params) <= catalog.get("lstm").flops(
            instance.case.shape) / work / 1e9
    assert timed[256] > 8 * timed[16]  # grows with T like the work, not flat like the launch


# --- asv itself and `seqbench bench` ---------------------------------------------------------

def _asv_env(tmp_path):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQBENCH_")}
    return {**env, "HOME": str(home)}


def test_asv_check_passes(tmp_path):
    pytest.importorskip("asv", reason="asv is not installed (pip install 'seqbench[bench]')")
    out = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=ROOT, capture_output=True,
                         text=True, env=_asv_env(tmp_path), timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No problems found" in out.stdout


def bench_main(argv) -> int:
    """``seqbench bench ARGV`` in this process."""
    from seqbench import cli

    return cli.main(["bench", *argv])


def test_bench_refuses_unknown_names_and_empty_grids(capsys, monkeypatch, unavailable_backend):
    monkeypatch.chdir(ROOT)
    assert bench_main(["--op", "lstmm", "--dry-run"]) == 2
    assert "op must be one of" in capsys.readouterr().err
    assert bench_main(["--backend", "nonesuch", "--dry-run"]) == 2
    assert "--backend must be one of" in capsys.readouterr().err
    assert bench_main(["--backend", "torch-compile", "--dry-run"]) == 2
    assert "is left out of the quick grid: torch-compile compiles in every benchmark process" in capsys.readouterr().err
    assert bench_main(["--backend", unavailable_backend, "--dry-run"]) == 2
    assert "cannot run here: " in capsys.readouterr().err
    assert bench_main(["--backend", "numpy", "--device", "cuda", "--dry-run"]) == 2
    assert "nothing to benchmark on the quick grid for backend=numpy, device=cuda" in capsys.readouterr().err


def test_bench_refuses_without_asv(capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "asv" else real(name, *a))
    monkeypatch.chdir(ROOT)
    assert bench_main([]) == 2
    assert "asv is not installed" in capsys.readouterr().err


def test_bench_patterns_select_what_runs_here(capsys, monkeypatch):
    pytest.importorskip("asv")
    monkeypatch.chdir(ROOT)
    assert bench_main(["--op", "lstm", "--backend", "numpy", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "quick grid, 1 ops, 14 benchmark runs" in out and "numpy: cpu/float32" in out  # 10, 2 precision, 2 peaks
    common = asv.suite_common(ROOT / "asv.conf.json", {"benchmark_dir": "benchmarks"})
    selection, _ = bench.select(common, "quick", Selection(ops=("lstm",), backends=("numpy",)))
    pattern, peak, peak_end = bench.patterns(common, selection)
    assert re.search(peak, "bench_peak.matmul.track_gflops('cpu', 'float32')")
    assert not re.search(peak, "bench_peak.matmul.track_gflops('cuda', 'float32')")
    assert re.search(peak_end, "bench_zz_peak_end.matmul.track_gflops('cpu', 'float32')")

    def named(method, backend="numpy", device="cpu"):
        return f"bench_recurrent.lstm.{method}('{backend}', '{device}', 'float32', 16, 32, 8)"

    assert re.search(pattern, named("time_forward")) and re.search(pattern, named("track_gflops"))
    assert not re.search(pattern, named("track_device_peak_memory"))  # only skipped on the CPU
    assert not re.search(pattern, named("time_forward", backend="torch"))
    assert not re.search(pattern, named("time_forward", device="cuda"))
    assert not re.search(pattern, named("time_forward").replace("lstm", "stacked_lstm"))


def test_seqbench_bench_runs_asv_and_keeps_results(tmp_path):
    """A real, tiny sweep through asv (rnn, numpy): progress streams, results land in --results-dir."""
    pytest.importorskip("asv", reason="asv is not installed (pip install 'seqbench[bench]')")
    keep = (ROOT / ".git").exists() and shutil.which("git") is not None  # asv reads the commit from git
    results = tmp_path / "results"
    argv = ["--op", "rnn", "--backend", "numpy", "--machine", "bench-test", "--results-dir", str(results),
            *(["--set-commit-hash", "HEAD"] if keep else [])]
    code = f"import sys; from seqbench import cli; sys.exit(cli.main(['bench', *{argv!r}]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=_asv_env(tmp_path), timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "bench_recurrent.rnn.time_forward" in out.stdout and "wall time" in out.stdout
    assert json.loads((tmp_path / "home" / ".asv-machine.json").read_text())["bench-test"]
    if not keep:
        assert "results not kept" in out.stdout
        return
    (saved,) = [p for p in (results / "bench-test").glob("*.json") if p.name != "machine.json"]
    data = json.loads(saved.read_text())
    names = {name.split(".")[-1] for name in data["results"] if name.startswith("bench_recurrent.rnn.")}
    assert names == {"time_forward", "time_forward_backward", "peakmem_forward", "track_throughput", "track_gflops"}
    rows = {name: dict(zip(data["result_columns"], row)) for name, row in data["results"].items()}
    assert any(v > 0 for v in rows["bench_precision.rnn.track_error"]["result"] if v is not None)  # with the op
    kept = [s for s in rows["bench_recurrent.rnn.time_forward"]["samples"] if s is not None]
    assert kept and all(10 <= len(s) <= 20 for s in kept)  # the quick grid's samples, every one kept
    # asv runs a run's benchmarks sorted by name: the matmul rate first (before bench_recurrent), and again last
    started = {name: row["started_at"] for name, row in rows.items()}
    assert started["bench_peak.matmul.track_gflops"] < min(t for n, t in started.items() if "rnn" in n)
    assert started["bench_zz_peak_end.matmul.track_gflops"] == max(started.values())


#: one op of each kind of benchmark parameters (a cell, the loss, a pair loss on word ids, GloVe: each with its own
#: parameter axes; a network of cells has a cell's) and the device peak: every backend's benchmark code runs for
#: each under asv in CI
CI_OPS = ("rnn", "sequence_loss", "negative_sampling_lookup_loss", "glove_cost")


@pytest.mark.skipif(os.environ.get("CI") != "true",
                    reason="one op of each kind over the quick grid under asv takes minutes: it runs in CI (CI=true)")
def test_every_kind_of_benchmark_runs_under_asv_for_every_backend(tmp_path):
    """What CI guards: the quick grid of one op of each kind, every backend, runs under asv itself, none fails
    (the other ops differ only in the catalog entry, which conformance checks)."""
    pytest.importorskip("asv", reason="asv is not installed (pip install 'seqbench[bench]')")
    env = _asv_env(tmp_path)
    subprocess.run([sys.executable, "-m", "asv", "machine", "--yes", "--machine", "ci"], cwd=ROOT, env=env,
                   capture_output=True, check=True, timeout=120)
    config = asv.derived_config(ROOT / "asv.conf.json", asv.load_config(ROOT / "asv.conf.json"),
                                tmp_path / "results", tmp_path)  # the checkout's results/ stays as it is
    chosen = [f"--bench=^bench_[a-z]+\\.{op}\\." for op in CI_OPS] + ["--bench=^bench_peak\\."]
    out = subprocess.run([sys.executable, "-m", "asv", "run", "--python=same", "--quick", "--machine", "ci",
                          f"--config={config}", "--launch-method", "forkserver", *chosen], cwd=tmp_path,
                         env={**env, "SEQBENCH_GRID": "quick"}, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
    assert "failed" not in out.stdout.lower(), out.stdout[-5000:]
    assert all(f".{op}.time_forward " in out.stdout for op in CI_OPS) and "bench_peak.matmul.track_gflops" in out.stdout


def test_the_gpu_grid_times_the_passes_of_the_backends_that_fit_a_short_session():
    """The gpu grid: T 64/512 x H 256/1024 x B 1/16/64/256, two methods; jax and torch-compile in every dtype,
    torch's eager cells in float32 only, jax-highest left out."""
    common = asv.suite_common(ROOT / "asv.conf.json", {"benchmark_dir": "benchmarks"})
    params, names = common.params_of(catalog.get("lstm"), "gpu")
    assert names[3:] == ["seq_len", "hidden", "batch"] and params[3:] == [[64, 512], [256, 1024], [1, 16, 64, 256]]
    assert "torch-compile" in common.backends("gpu") and "jax-highest" not in common.backends("gpu")
    for name in ("jax", "torch-compile", "torch-native"):
        assert common.grid_dtypes("gpu", name) == ("float32", "float16", "bfloat16")
    assert common.grid_dtypes("gpu", "torch") == ("float32",)
    selection = {"lstm": [("torch-native", "cuda", "float16"), ("torch-native", "cuda:tf32", "float32")]}
    pattern, peak, _ = bench.patterns(common, selection, "gpu")
    call = "bench_recurrent.lstm.{}('torch-native', 'cuda', 'float16', 512, 1024, 16)"
    assert re.search(pattern, call.format("time_forward")) and re.search(pattern, call.format("time_forward_backward"))
    assert not re.search(pattern, call.format("track_gflops")) and not re.search(pattern, call.format("peakmem_forward"))
    assert re.search(peak, "bench_peak.matmul.track_gflops('cuda:tf32', 'float32')")
    assert bench.count(common, "gpu", selection) == 2 * 16 * 2 + 2 * 2  # the matmul peaks at the start and the end
