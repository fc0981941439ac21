"""Sweeps over a Ray cluster (``--cluster``): the shard plan and real sweeps on a local Ray
instance with CPU workers: the same rows as without the cluster, and a worker that dies is run again once."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqbench.jobs import asv
from seqbench import catalog, cli, reports
from seqbench.fleet import engine as cluster, sweeps as cluster_sweeps, shards
from seqbench.backends import registry
from seqbench.results import records as results
from seqbench.results import asv_files

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from heads import needs_ray  # noqa: E402


# --- the shard plan -------------------------------------------------------------------------------------------


def _units(costs, gpu=False, op=None):
    return [shards.Unit("bench", op or f"op{k}", f"b{k}", ("cuda" if gpu else "cpu",), "float32", c)
            for k, c in enumerate(costs)]


def test_units_are_dealt_longest_first_to_the_least_loaded_shard():
    plan = shards.deal(_units([1, 6, 3, 5, 2, 4]), cpu_shards=3, gpu_shards=0)
    assert [[u.cost for u in s.units] for s in plan] == [[6, 1], [5, 2], [4, 3]]
    start = shards.ASV_START_S  # each op is one asv run of its own
    assert [s.index for s in plan] == [0, 1, 2] and [s.cost for s in plan] == [7 + 2 * start] * 3
    assert shards.wall_time(plan, cpu_workers=3) == 7 + 2 * start
    assert shards.wall_time(plan, cpu_workers=1) == 3 * (7 + 2 * start)  # on one machine they take turns


def test_a_unit_goes_where_it_ends_cheapest_with_the_start_of_its_run_counted():
    units = _units([36, 3], op="gru") + _units([30], op="lstm")
    plan = shards.deal(units, cpu_shards=2, gpu_shards=0)
    # the small gru unit joins the gru run (36 + 3 + one start) rather than start a second one beside lstm's
    assert [[(u.op, u.cost) for u in s.units] for s in plan] == [[("gru", 36), ("gru", 3)], [("lstm", 30)]]
    apart = shards.deal(_units([3, 3, 3, 3], op="lstm"), cpu_shards=2, gpu_shards=0)
    assert [len(s.units) for s in apart] == [2, 2]  # on two workers two starts are cheaper than twice the work


def test_gpu_units_go_to_gpu_shards_and_need_one():
    plan = shards.deal(_units([1, 1]) + _units([9, 9], gpu=True), cpu_shards=1, gpu_shards=2)
    assert [(s.gpu, s.cost - shards.ASV_START_S * len(s.units)) for s in plan] == [(False, 2), (True, 9), (True, 9)]
    with pytest.raises(ValueError, match="no GPU"):
        shards.deal(_units([1], gpu=True), cpu_shards=2, gpu_shards=0)
    assert len(shards.deal(_units([1]), cpu_shards=4, gpu_shards=0)) == 1  # empty shards are dropped


def test_the_cost_follows_the_flop_model():
    lstm = catalog.get("lstm")
    small, large = ({"T": T, "B": 8, "I": 256, "H": 256} for T in (64, 4096))
    cheap = shards.bench_unit(lstm, "torch", "cpu", "float32", [small], ["time_forward"])
    dear = shards.bench_unit(lstm, "torch", "cpu", "float32", [large], ["time_forward"])
    t_small, t_large = (lstm.flops(shape) / shards.RATE["cpu"] for shape in (small, large))
    assert 10 * t_small < 1 < 3 * t_large  # a small shape samples 10 calls, a large one 3 (at least a second)
    assert dear.cost - cheap.cost == pytest.approx((2 + 3) * t_large - (2 + 10) * t_small)
    backward = shards.bench_unit(lstm, "torch", "cpu", "float32", [large], ["time_forward_backward"])
    assert backward.cost > dear.cost
    compiled = shards.bench_unit(lstm, "jax", "cuda", "float32", [small], ["time_forward"])
    assert compiled.cost > shards.bench_unit(lstm, "torch", "cuda", "float32", [small], ["time_forward"]).cost


def test_a_shard_runs_exactly_its_units():
    units = [shards.Unit("check", op, be, devs) for op, be, devs in
             (("rnn", "torch", ("cpu",)), ("lstm", "torch", ("cpu",)), ("rnn", "torch", ("cuda", "cuda:tf32")))]
    shard = shards.Shard(0, False, units)
    assert shard.check_groups() == {("torch", ("cpu",)): ["rnn", "lstm"], ("torch", ("cuda", "cuda:tf32")): ["rnn"]}
    bench_units = [shards.Unit("bench", "rnn", "numpy", ("cpu",), "float32"),
                   shards.Unit("bench", "rnn", "jax", ("cpu",), "float64")]
    assert shards.Shard(0, False, bench_units).bench_points() == {"rnn": [("numpy", "cpu", "float32"),
                                                                          ("jax", "cpu", "float64")]}


# --- the command line refuses what cannot be -----------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["bench", "--cluster", "local", "--machine", "m"], "--machine names one machine"),
    (["bench", "--cluster", "local", "--op", "training"], "--op training trains on one machine"),
    (["bench", "--cluster", "local", "--set-commit-hash", "no-such-commit"], "'no-such-commit' is not one"),
])
def test_cluster_options_that_cannot_work_are_refused(capsys, monkeypatch, argv, message):
    monkeypatch.chdir(ROOT)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_without_ray_the_message_says_how_to_install_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    assert cli.main(["check", "--cluster", "local", "--backend", "numpy", "--results-dir", str(tmp_path)]) == 2
    assert "pip install 'seqbench[cluster]'" in capsys.readouterr().err


# --- real sweeps on a local Ray instance -------------------------------------------------------------------------


def _seqbench(tmp_path, *args, token: str = "") -> subprocess.Popen:
    """A ``seqbench`` command, started (with Ray's token ``token``, where given); :func:`_finished` waits for it."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SEQBENCH_", "RAY_AUTH"))}, "HOME": str(home),
           **({"RAY_AUTH_TOKEN": token} if token else {}),
           "SEQBENCH_MACHINE": "box", "SEQBENCH_CACHE_DIR": str(tmp_path / "cache"),
           "SEQBENCH_PREIMPORT": "0"}  # numpy only: asv's fork server need not import torch and jax
    return subprocess.Popen([sys.executable, "-m", "seqbench", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _finished(command: subprocess.Popen) -> str:
    out = command.communicate(timeout=600)[0]
    assert command.returncode == 0, out
    return out


def _measured(folder: Path) -> dict:
    points = {}
    for p in asv_files.read([folder])[1]:
        key = (p["machine"], p["suite"], p["method"], tuple(sorted(p["params"].items())))
        assert key not in points  # nothing duplicated
        points[key] = p["result"]
    return {k: v for k, v in points.items() if not math.isnan(v)}


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="asv records the commit from git: needs a git checkout")
def test_a_sharded_benchmark_sweep_measures_what_the_plain_sweep_measures(tmp_path, ray_head):
    pytest.importorskip("asv", reason="asv is not installed (pip install 'seqbench[bench]')")
    narrow = ["--op", "embedding_lookup,softmax_prob,glove_cost", "--backend", "numpy"]  # one shape each
    plain, sharded = tmp_path / "plain", tmp_path / "sharded"
    # side by side: the shards wait for the plain sweep's lock on this machine's CPU, so no timing overlaps
    first = _seqbench(tmp_path, "bench", *narrow, "--set-commit-hash", "HEAD", "--results-dir", str(plain),
                      "--log", str(tmp_path / "asv.log"))
    out = _finished(_seqbench(tmp_path, "bench", *narrow, "--cluster", ray_head.address, "--shards", "3",
                              "--results-dir", str(sharded), token=ray_head.token))
    _finished(first)
    assert "3 units in 3 shards" in out and "3 done, 0 failed" in out, out
    assert sorted(p.name for p in (sharded / "logs").glob("asv-shard-*.log")) == [
        "asv-shard-1.log", "asv-shard-2.log", "asv-shard-3.log"]
    assert _measured(sharded).keys() == _measured(plain).keys()
    from seqbench.reports import load

    keys = ["machine", "device", "backend", "op", "kind", "dtype", "V", "d", "B", "conformance_passed"]
    rows = [load.load([folder]).benchmarks[keys].astype(str).sort_values(keys).values.tolist()
            for folder in (plain, sharded)]
    assert rows[0] == rows[1] and len(rows[0]) == 6  # the report's rows: 3 ops x 2 passes


def test_a_sharded_check_gives_the_rows_of_the_plain_check(tmp_path):
    needs_ray()
    narrow = ["--backend", "numpy", "--op", "embedding_lookup,softmax_prob,glove_cost", "--dtype", "float32"]
    first = _seqbench(tmp_path, "check", *narrow, "--results-dir", str(tmp_path / "plain"))  # side by side
    out = _finished(_seqbench(tmp_path, "check", *narrow, "--cluster", "local", "--shards", "3",
                              "--results-dir", str(tmp_path / "sharded")))
    _finished(first)
    assert "3 units in 3 shards" in out and "0 failed" in out, out
    verdicts = [{r["test_id"]: (r["passed"], r["max_err_eps"]) for r in results.read_jsonl(tmp_path / f / "box.jsonl")}
                for f in ("plain", "sharded")]
    assert verdicts[0] == verdicts[1] and len(verdicts[0]) == 14


def test_a_shard_whose_worker_dies_runs_again_once_and_nothing_is_lost_or_duplicated(ray_head, tmp_path, monkeypatch):
    import dying_shards

    monkeypatch.setenv("RAY_AUTH_TOKEN", ray_head.token)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # (connect sets it; put back after)
    resources = cluster.connect(ray_head.address, None, tmp_path / "ray.log")  # (before Ray is imported here)
    try:
        import ray.cloudpickle

        ray.cloudpickle.register_pickle_by_value(dying_shards)  # the workers need not import it
        ops = ["embedding_lookup", "softmax_prob", "glove_cost"]
        spec = {"backends": ["numpy"], "devices": [], "dtypes": ["float32"], "ops": {"cpu": ops}, "large": False,
                "quick": False, "timeout": None, "threads": None, "die": {0: "once", 1: "always"},
                "markers": str(tmp_path)}
        plan, _ = cluster_sweeps.plan(cluster_sweeps.check_survey, spec, resources, 3, "check")
        assert len(plan) == 3
        folder = tmp_path / "results"
        gather = cluster_sweeps.gather_rows(folder, folder / "logs")
        gathered = cluster.run_shards(plan, dying_shards.dies, spec, gather, "conformance (cluster)")
        outcome = cluster_sweeps.check_outcome(plan, gathered, folder / "logs")
        rows = results.read_jsonl(folder / "box.jsonl")  # the workers' machine
        assert len(rows) == len({r["test_id"] for r in rows})  # nothing twice
        dead = {u.op for u in plan[1].units}
        assert {r["op"] for r in rows} == {r["op"] for r in outcome.rows} == set(ops) - dead  # shard 0's came back
        assert sorted(gathered.done) == [0, 2] and list(gathered.failed) == [1]
        assert "WorkerCrashedError" in gathered.failed[1] and "it ran twice" in gathered.failed[1]
        assert [message for _, message in outcome.failed] == [f"its shard failed: {gathered.failed[1]}"]
        assert "FAILED" in cluster.plan_table(plan, gathered)
    finally:
        cluster.shutdown()


# --- heterogeneous workers: each machine names its GPU; sweeps on different GPUs of one machine run side by side


def test_the_machine_record_names_the_gpus_and_the_report_reads_it(tmp_path, monkeypatch):
    pytest.importorskip("asv", reason="asv is not installed (pip install 'seqbench[bench]')")
    from seqbench.reports import conformance_rows, load

    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\nprintf 'NVIDIA H100 80GB HBM3\\nNVIDIA H100 80GB HBM3\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{smi.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path))
    asv.ensure_machine("gpubox")
    record = json.loads((tmp_path / ".asv-machine.json").read_text())["gpubox"]
    assert record["gpu"] == "2 x NVIDIA H100 80GB HBM3" and record["cpu"]
    empty = conformance_rows.summarize_conformance(conformance_rows.load_conformance([]))  # no conformance rows: the record names it
    assert load._device_name(empty, {"gpubox": record}, "gpubox", "cuda:tf32") == "2 x NVIDIA H100 80GB HBM3"
    assert load._device_name(empty, {"gpubox": record}, "gpubox", "cpu") == record["cpu"]


def test_sweeps_take_turns_per_device(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    assert asv.lock_keys({"cpu"}, False) == ["cpu"] and asv.lock_keys({"cuda"}, False) == ["gpu-2"]
    assert asv.lock_keys({"cpu", "cuda"}, False) == ["cpu", "gpu-2"]
    assert asv.lock_keys(set(), True) == ["cpu"]  # the trainers' suite runs on the CPU too
    with asv.machine_lock(["gpu-2"], "r"):
        with asv.machine_lock(["gpu-3"], "r"), asv.machine_lock(["cpu"], "r"):
            pass  # another GPU, or the CPU: side by side
        with pytest.raises(asv.BenchError, match="another benchmark sweep is running .* seqbench bench on gpu-2"):
            with asv.machine_lock(["gpu-2"], "r"):
                pass


def test_the_main_job_on_a_cluster_checks_then_benchmarks_every_device_the_workers_have(monkeypatch, tmp_path, capsys):
    """``seqbench run --cluster``, the engine faked: the checks (the main job's quick selection) and then the
    benchmarks (quick grid on CPU workers, gpu grid of the LSTM on GPU workers) as shards, then the summary."""
    from seqbench.jobs import check
    from seqbench import run

    planned = []

    def plan(survey, spec, resources, asked, what):
        planned.append((what, spec["ops"], spec.get("grid"), spec["quick"], spec["backends"]))
        return [shards.Shard(0, False, [shards.Unit("check", "rnn", "numpy", ("cpu",))])], [f"{what}: a note"]

    def run_shards(plan_, work, spec, gather, title):
        rows = [{"test_id": "t1", "backend": "numpy", "device": "cpu", "dtype": "float32", "op": "rnn",
                 "passed": True, "max_err_eps": 1.0, "ratio": 1.0, "time": "2026-11-27T00:00:00+00:00"}]
        returned = {"outcome": check.Outcome(rows=rows, passed=1), "machine": "worker-1", "files": {}, "log": "",
                    "host": "worker-1", "seconds": 1.0, "status": "1 passed", "counts": {"ok": 3}}
        gathered = cluster.Gathered(plan_, done={0: returned})
        gathered.logs = gather(plan_[0], returned)
        return gathered

    monkeypatch.setattr(cluster, "connect", lambda address, root, log, insecure, commit: {"CPU": 4.0, "GPU": 2.0})
    monkeypatch.setattr(cluster, "shutdown", lambda: None)
    monkeypatch.setattr(cluster, "run_shards", run_shards)
    monkeypatch.setattr(cluster_sweeps, "plan", plan)
    monkeypatch.setattr(run, "recommendations", lambda results: ["Fastest conforming backend: (fake)"])
    monkeypatch.setattr(reports, "write_report", lambda folders, out: Path(out) / "report.html")
    monkeypatch.chdir(ROOT)
    assert cli.main(["run", "--cluster", "ray://head:10001", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    every = [n for n in registry.names() if not registry.traits(n).left_out_of_main_job]
    assert planned == [
        ("check", {"cpu": list(run.RUN_OPS), "cuda": list(run.RUN_OPS)}, None, True, every),
        ("benchmark", {"cpu": list(run.RUN_OPS), "cuda": ["lstm"]}, run.GRID, False, every)]
    assert "seqbench run --cluster ray://head:10001: 4 CPUs, 2 GPUs" in out and "check: a note" in out
    assert results.read_jsonl(tmp_path / "out" / "results" / "conformance" / "worker-1.jsonl")[0]["test_id"] == "t1"
    assert (tmp_path / "out" / "logs" / "conformance-shard-1.log").exists()
    assert "Fastest conforming backend: (fake)" in out and "Wall time: conformance" in out
