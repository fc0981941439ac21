"""The seqbench command, run as a user runs it (subprocesses, output not a terminal, as in a log)."""

import json
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from seqbench import reports
from seqbench import run as main_job
from seqbench.backends import registry
from seqbench.backends.protocol import Backend, Traits
from seqbench.backends.registry import Status
from seqbench.jobs import bench, check
from seqbench.results import records as results
from seqbench.selection import Selection

ROOT = Path(__file__).resolve().parents[1]


def seqbench(*args, cwd=ROOT, module="seqbench"):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_version_and_python_dash_m():
    out = seqbench("--version")
    assert out.returncode == 0 and re.fullmatch(r"seqbench \d+\.\d+\.\d+\n", out.stdout)
    out = seqbench("--help")
    assert out.returncode == 0 and "``" not in out.stdout
    for command in ("list", "check", "bench", "report", "select", "run", "embed"):
        help_text = seqbench(command, "--help").stdout
        assert "``" not in help_text and ":func:" not in help_text, command  # no RST markup in help
        assert help_text.count("\n\n") >= 2, f"{command} --help has no description"


def test_list_shows_backends_with_availability_and_ops_in_columns():
    out = seqbench("list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = lines[0]
    assert header.split() == ["backend", "status", "devices", "versions,", "or", "why", "not"]
    numpy = next(line for line in lines if line.startswith("numpy "))
    assert numpy.index("available") == header.index("status") and numpy.index("cpu") == header.index("devices")
    for line in lines:
        if " unavailable " in line:
            assert line.split("unavailable", 1)[1].strip(" -"), f"unavailable without a reason: {line}"
    assert any(line.startswith("lstm ") for line in lines) and any(line.startswith("gru_reset_after ") for line in lines)


def test_check_narrowed_prints_a_table_and_writes_results(tmp_path):
    out = seqbench("check", "--backend", "numpy", "--op", "lstm,gru", "--dtype", "float32",
                   "--results-dir", str(tmp_path / "res"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "numpy/cpu/float32" in out.stdout and "lstm" in out.stdout
    assert "0 failed" in out.stdout and "PytestAssertRewriteWarning" not in out.stdout + out.stderr
    rows = [json.loads(line) for line in next((tmp_path / "res").glob("*.jsonl")).read_text().splitlines()]
    assert {r["op"] for r in rows} == {"lstm", "gru"} and {r["kind"] for r in rows} == {"forward", "vjp"}
    assert all(r["passed"] and r["dtype"] == "float32" and r["err_eps"] <= r["budget_eps"] <= r["cap_eps"] for r in rows)
    # float32 numpy is the faithful float32 implementation itself: at most 1x its error
    assert all(0 < r["ratio"] <= 1.0 for r in rows) and " x" in out.stdout
    log = tmp_path / "res" / "logs" / "conformance.log"
    assert f"pytest's output: {log}" in out.stdout and "passed" in log.read_text()


def test_check_of_a_selection_all_skipped_shows_why_and_fails_outside_the_checkout(tmp_path):
    """torch-native's GRU is the reset_after variant: every case of the notes' GRU is skipped, so nothing was
    checked; the reasons are shown, counted, and the run does not pass."""
    out = seqbench("check", "--backend", "torch-native", "--op", "gru", "--dtype", "float32",
                   "--results-dir", str(tmp_path / "res"), cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "skipped 7: torch-native: nn.GRU computes the GRU variant 'reset_after'" in out.stdout  # 3 shapes x 2 + 1
    assert "nothing was checked: all 7 cases of this selection were skipped here (why: above)" in out.stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["check", "--op", "lstmm"], "(did you mean 'lstm'?)"),
    (["check", "--backend", "nope"], "--backend must be one of"),
    (["check", "--dtype", "float8"], "--dtype must be one of ['float64', 'float32', 'float16', 'bfloat16'], got 'float8'"),
    (["check", "--device", "tpu"], "--device must be one of ['cpu', 'cuda', 'cuda:tf32'] (also indexed, e.g. cuda:1)"),
    (["run", "--device", "tpu"], "--device must be one of ['cpu', 'cuda', 'cuda:tf32'] (also indexed, e.g. cuda:1), "
                                 "got 'tpu'"),
    (["bench", "--device", "tpu"], "--device must be one of ['cpu', 'cuda', 'cuda:tf32'] (also indexed, e.g. cuda:1)"),
    (["bench", "--backend", "nope"], "--backend must be one of"),
    (["check", "--timeout", "-1"], "argument --timeout: must be a positive number of seconds, got -1"),
    (["check", "--timeout", "nan"], "argument --timeout: must be a positive number of seconds, got nan"),
    (["check", "--timeout", "soon"], "argument --timeout: must be a positive number of seconds, got 'soon'"),
    (["run", "--timeout", "0"], "argument --timeout: must be a positive number of seconds, got 0"),
    (["run", "--timeout", "inf"], "argument --timeout: must be a positive number of seconds, got inf"),
    (["check", "--cluster", "local", "--shards", "0"], "argument --shards: must be a positive integer, got 0"),
    (["run", "--cluster", "local", "--shards", "-1"], "argument --shards: must be a positive integer, got -1"),
    (["bench", "--cluster", "local", "--shards", "2.5"], "argument --shards: must be a positive integer, got '2.5'"),
    (["select", "--op", "lstm", "--seq-len", "-5"], "argument --seq-len: must be a positive integer, got -5"),
    (["select", "--op", "lstm", "--kind", "vjp"], "argument --kind: invalid choice: 'vjp'"),
])
def test_nonsense_is_refused_in_one_line(argv, message, capsys):
    """In this process (the command's own main; a subprocess would only add the frameworks' import time)."""
    from seqbench import cli

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = cli.main(argv)
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    out = capsys.readouterr()
    assert code == 2, out.out + out.err
    assert message in out.err and "Traceback" not in out.err, out.err


NO_GPU = pytest.mark.skipif(bool(results.gpu_names()), reason="a CUDA GPU is here: --device cuda is not refused")


@pytest.mark.parametrize("argv", [
    pytest.param(["--device", "cuda"], marks=NO_GPU),
    pytest.param(["--device", "cuda:tf32", "--op", "lstm"], marks=NO_GPU),
    ["--backend", "numpy", "--device", "cuda"],  # numpy has the CPU only, GPU or not
])
def test_check_refuses_a_device_that_is_not_here_as_run_does(argv, tmp_path):
    out = seqbench("check", *argv, "--results-dir", str(tmp_path / "res"), cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    device = argv[argv.index("--device") + 1]
    assert f"seqbench check: error: --device {device}: not here (devices here: cpu" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "res").exists()  # refused before anything ran


def test_run_on_a_tiny_grid_prints_a_short_summary(tmp_path):
    """The main job as a user runs it, output into a log: one line per phase, a summary, the paths."""
    out = seqbench("run", "--backend", "numpy", "--op", "rnn", "--out", str(tmp_path / "seqbench-run"))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) <= 40, out.stdout  # a person reads it: no asv tables, no pytest dots
    assert not any("n/a" in line or "····" in line for line in lines)
    assert [line.split()[0] for line in lines if "━" in line] == ["conformance", "benchmarks", "report"], lines
    assert "no CUDA GPU here: conformance and benchmarks run on the CPU only" in out.stdout
    assert re.search(r"^numpy\s+ok 12/12 x", out.stdout, re.M), out.stdout  # 2 dtypes x 3 shapes x 2 passes
    assert re.search(r"^cpu\s+rnn\s+forward\s+T=16 H=32 B=8\s+numpy", out.stdout, re.M), out.stdout
    report = tmp_path / "seqbench-run" / "report" / "report.html"
    logs = tmp_path / "seqbench-run" / "logs"
    assert f"Report: {report}" in out.stdout and report.is_file()
    assert f"Logs: {logs / 'conformance-cpu.log'}, {logs / 'asv-cpu.log'}" in out.stdout
    assert "bench_recurrent.rnn.time_forward" in (logs / "asv-cpu.log").read_text()
    assert re.search(r"^Wall time: conformance cpu \d+:\d\d, benchmarks cpu \d+:\d\d, report \d+:\d\d, total", out.stdout,
                     re.M)
    # select and report read what run wrote, from the folder it works in
    answer = seqbench("select", "--op", "rnn", "--seq-len", "100000", cwd=tmp_path)
    assert answer.returncode == 2, answer.stdout + answer.stderr  # outside the measured range: no winner named
    assert f"from {Path('seqbench-run') / 'results'}:" in answer.stdout
    assert "outside the measured range (T=100000 is 1.56e+03x the largest measured T=64): no winner named" \
        in answer.stdout
    answer = seqbench("select", "--op", "rnn", "--seq-len", "100000", "--extrapolate", cwd=tmp_path)
    assert answer.returncode == 0 and " ms EXTRAPOLATED" in answer.stdout, answer.stdout + answer.stderr


# --- the GPU parts, through fakes: a machine whose backends list cuda and cuda:tf32 ---------------------


class SlowCompiler(Backend):
    """A plug-in whose traits leave it out of the main job."""

    traits = Traits(left_out_of_main_job="compiles each cell for minutes")


@pytest.fixture
def gpu_machine(monkeypatch):
    statuses = [Status("numpy", True, "", ["cpu"]), Status("gpu-fake", True, "", ["cpu", "cuda", "cuda:tf32"]),
                Status("slow-fake", True, "", ["cpu", "cuda"]), Status("cupy", False, "cupy: no CUDA device")]
    monkeypatch.setattr(registry, "backends", lambda: statuses)
    registry.register("slow-fake", SlowCompiler)
    yield
    registry.unregister("slow-fake")


def _sel(**kw):
    return Selection(**{k: tuple(v) for k, v in kw.items()})


def test_run_plans_every_device_here_and_narrows(gpu_machine):
    backends, groups, notes = main_job.plan(_sel())
    assert backends == ["gpu-fake", "numpy"] and groups == {"cpu": ["cpu"], "cuda": ["cuda", "cuda:tf32"]}
    assert notes == ["cupy: unavailable (no CUDA device)", "slow-fake: left out (compiles each cell for minutes)"]
    assert main_job.plan(_sel(devices=["cuda:tf32"]))[1] == {"cuda": ["cuda:tf32"]}
    assert main_job.plan(_sel(devices=["cuda"]))[1] == {"cuda": ["cuda", "cuda:tf32"]}
    assert main_job.plan(_sel(backends=["slow-fake"]))[0] == ["slow-fake"]


def test_run_without_a_gpu_says_so_and_refuses_cuda_when_asked(monkeypatch):
    monkeypatch.setattr(registry, "backends", lambda: [Status("numpy", True, "", ["cpu"])])
    assert main_job.plan(_sel())[2] == ["no CUDA GPU here: conformance and benchmarks run on the CPU only"]
    with pytest.raises(ValueError, match=r"--device cuda: not here \(devices here: cpu\)"):
        main_job.plan(_sel(devices=["cuda"]))


def test_run_checks_then_benchmarks_each_device_group_and_reports_both(gpu_machine, monkeypatch, tmp_path, capsys):
    calls = []

    def run_suite(sel, results_dir, log, title, exitfirst=False, timeout=None):
        calls.append(("check", title, sel.devices, sel.quick))
        rows = [{"backend": "gpu-fake", "device": d, "dtype": "float32", "op": "lstm", "passed": True,
                 "max_err_eps": 1.0, "ratio": 1.0} for d in ("cuda", "cuda:tf32") if "cuda" in title]
        rows += [{"backend": "numpy", "device": "cpu", "dtype": "float32", "op": "lstm", "passed": True,
                  "max_err_eps": 1.0, "ratio": 0.9}] if "cpu" in title else []
        return check.Outcome(rows=rows, passed=len(rows), skipped=Counter(), log=log)

    def sweep(request):
        calls.append(("bench", request.grid, request.selection.devices, request.selection.ops))
        return bench.Sweep(request.grid, 1, [], counts=Counter(ok=1), log=request.log)

    monkeypatch.setattr(check, "run_suite", run_suite)
    monkeypatch.setattr(bench, "sweep", sweep)
    monkeypatch.setattr(main_job, "recommendations", lambda results: ["Fastest conforming backend: (fake)"])
    monkeypatch.setattr(reports, "write_report", lambda folders, out: Path(out) / "report.html")
    code = main_job.main(_sel(), tmp_path / "out")
    out = capsys.readouterr().out
    assert code == 0, out
    assert calls == [
        ("check", "conformance cpu", ("cpu",), True),
        ("bench", "quick", ("cpu",), ("rnn", "lstm", "gru", "gru_reset_after")),
        ("check", "conformance cuda", ("cuda", "cuda:tf32"), True),
        ("bench", "gpu", ("cuda", "cuda:tf32"), ("lstm",)),
    ]
    assert re.search(r"^gpu-fake\s+-\s+ok 1/1 x1\s+ok 1/1 x1$", out, re.M), out
    assert "conformance-cuda.log" in out and "asv-cuda.log" in out


def test_run_exits_non_zero_when_a_phase_it_was_asked_for_could_not_run(gpu_machine, monkeypatch, tmp_path, capsys):
    """Conformance passes, but nothing of the GPU group can be benchmarked: the run says so and exits 1."""
    def run_suite(sel, results_dir, log, title, exitfirst=False, timeout=None):
        return check.Outcome(rows=[], passed=1, skipped=Counter(), log=log)

    def sweep(request):
        if request.grid == "gpu":
            raise bench.BenchError("nothing to benchmark on the gpu grid")
        return bench.Sweep(request.grid, 1, [], counts=Counter(ok=1), log=request.log)

    monkeypatch.setattr(check, "run_suite", run_suite)
    monkeypatch.setattr(bench, "sweep", sweep)
    monkeypatch.setattr(main_job, "recommendations", lambda results: [])
    monkeypatch.setattr(reports, "write_report", lambda folders, out: Path(out) / "report.html")
    code = main_job.main(_sel(), tmp_path / "out")
    out = capsys.readouterr().out
    assert code == 1, out
    assert "benchmarks cuda: not run (nothing to benchmark on the gpu grid)" in out
    assert "benchmarks cuda: not run (see above)" in out
