"""Faults do not take a run down: backends that crash, hang, run out of memory or poison CUDA; runs that are
interrupted or run side by side; results folders holding files seqbench did not write (or not wholly).

Misbehaving backends are third-party plug-ins (``tests/plugins/faulty_backends.py``) registered through the
entry point of a distribution made in a temporary folder; every run is a real ``seqbench`` process, as a
user or CI starts it, and a crashing backend really crashes its process.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqbench.jobs import asv
from seqbench.results import records as results

import faulty_backends  # noqa: E402
from plugin_site import PLUGINS, entry_point_site  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    site = entry_point_site(tmp_path_factory.mktemp("site"), "faulty_backends", faulty_backends.BACKENDS)
    path = os.pathsep.join([str(site), str(PLUGINS), os.environ.get("PYTHONPATH", "")])
    # asv drops PYTHONPATH from its benchmark processes and takes ASV_PYTHONPATH instead
    return {**os.environ, "PYTHONPATH": path, "ASV_PYTHONPATH": path, "SEQBENCH_MACHINE": "faults"}


def seqbench(env, *args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", "seqbench", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def rows(folder: Path) -> dict:
    return {r["test_id"]: r for r in results.read_jsonl(folder / "faults.jsonl")}


@pytest.mark.parametrize(("backend", "ops", "failed", "why"), [
    ("segfaulting", "rnn,lstm", "test_forward[lstm-segfaulting-cpu-float32-*", "crashed its worker process "
                                                                              "(killed by SIGSEGV)"),
    ("exiting", "rnn", "test_forward[rnn-exiting-cpu-float32-T32-B8-I16-H32]", "crashed its worker process "
                                                                               "(exit status 3)"),
    ("out-of-memory", "rnn", "test_forward[rnn-out-of-memory-cpu-float32-*", "Unable to allocate 8.00 TiB"),
])
def test_a_case_that_kills_its_process_or_runs_out_of_memory_fails_and_the_run_goes_on(
        env, tmp_path, backend, ops, failed, why):
    out = seqbench(env, "check", "--backend", backend, "--op", ops, "--dtype", "float32",
                   "--results-dir", str(tmp_path))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("FAILED ")]
    prefix = failed.rstrip("*")
    assert lines and all(line.startswith(f"FAILED {prefix}") and why in line for line in lines), out.stdout
    saved = rows(tmp_path)
    bad = {k: r for k, r in saved.items() if not r["passed"]}
    assert bad and all(k.startswith(prefix) for k in bad)  # the faulty cases fail, with a row saying why
    assert all(r["passed"] for k, r in saved.items() if k not in bad)  # every other case ran, and passed
    assert len(saved) > len(bad)


HANGING = "test_forward[gru-hanging-cpu-float32-T32-B8-I16-H32]"


def test_a_case_past_the_time_limit_hangs_fails_with_a_row_and_the_run_goes_on(env, tmp_path):
    """A case still running at the default limit (made 4 s here) hangs by the project's measure: a finding
    against the backend, filed as a failed row that says so."""
    start = time.monotonic()
    code = ("import sys; from seqbench import cli; from seqbench.jobs import check; check.TIMEOUT['cpu'] = 4.0; "
            "sys.exit(cli.main(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", code, "check", "--backend", "hanging", "--op", "gru", "--dtype",
                          "float32", "--results-dir", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                         env=env, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    assert time.monotonic() - start < 120
    assert f"FAILED {HANGING}: timed out after 4 s (--timeout); the worker was stopped" in out.stdout, out.stdout
    saved = rows(tmp_path)
    assert not saved[HANGING]["passed"] and saved[HANGING]["fault"].startswith("timed out after 4 s")
    assert sum(r["passed"] for r in saved.values()) == len(saved) - 1 == 5
    assert not results.unchecked_path(tmp_path, "faults").exists()


def test_a_case_a_shorter_timeout_stops_is_not_checked_and_files_no_row(env, tmp_path):
    """``--timeout 4``, under the default limit: the setting stopped the case, so it has no verdict. It is no
    FAIL row against the backend; the summary, the exit status and the unchecked list say it was not checked,
    and the report calls its conformance incomplete."""
    out = seqbench(env, "check", "--backend", "hanging", "--op", "gru", "--dtype", "float32", "--timeout", "4",
                   "--results-dir", str(tmp_path))
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"NOT CHECKED {HANGING}: timed out after 4 s (--timeout, under the 300 s" in out.stdout, out.stdout
    assert "FAILED" not in out.stdout and "1 cases stopped by --timeout have no verdict" in out.stdout
    saved = rows(tmp_path)
    assert HANGING not in saved and len(saved) == 5 and all(r["passed"] for r in saved.values())
    listed = json.loads(results.unchecked_path(tmp_path, "faults").read_text())["cases"]
    assert [(c["test_id"], c["reason"][:22]) for c in listed] == [(HANGING, "timed out after 4 s (-")]
    from seqbench.reports import load

    (reason,) = load.load([tmp_path]).checks["conformance_reason"]  # gru on hanging/cpu/float32
    assert reason.startswith("conformance incomplete: 1 of its cases were not checked (timed out after 4 s"), reason


def test_device_memory_and_a_poisoned_cuda_context_stay_with_their_case(env, tmp_path):
    """On the (fake) GPU: an out-of-memory error fails its cases only; an illegal memory access, after which
    the process's CUDA context is unusable, fails its case only: the next cases run in a fresh worker."""
    out = seqbench(env, "check", "--backend", "out-of-memory,poisoned-cuda", "--op", "lstm", "--device", "cuda",
                   "--results-dir", str(tmp_path))
    assert out.returncode == 1, out.stdout + out.stderr
    failures = [line for line in out.stdout.splitlines() if line.startswith("FAILED ")]
    assert "FAILED test_forward[lstm-poisoned-cuda-cuda-float32-T32-B8-I16-H32]: RuntimeError: CUDA error: an " \
           "illegal memory access was encountered" in failures
    assert sum("poisoned-cuda" in line for line in failures) == 1, out.stdout
    assert all("CUDA out of memory" in line for line in failures if "out-of-memory" in line)
    saved = rows(tmp_path)
    assert all(r["passed"] for k, r in saved.items() if "poisoned-cuda" in k and "T32" not in k)


def test_concurrent_checks_into_one_folder_lose_nothing(env, tmp_path):
    runs = [subprocess.Popen([sys.executable, "-m", "seqbench", "check", "--backend", "numpy", "--op", op,
                              "--results-dir", str(tmp_path)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for op in ("rnn", "gru", "lstm")]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stdout.read()
    ops = {r["op"] for r in rows(tmp_path).values()}
    assert ops == {"rnn", "gru", "lstm"} and len(rows(tmp_path)) == 2 * 2 * (3 + 3 + 4)


WRITER = """
import sys
from pathlib import Path
from seqbench.results import records as results
k = sys.argv[1]
for i in range(20):
    results.merge_jsonl(Path(sys.argv[2]) / "m.jsonl", [{"test_id": f"{k}-{i}-{j}"} for j in range(10)])
"""


def test_concurrent_writers_of_one_results_file_take_turns(tmp_path):
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(k), str(tmp_path)]) for k in range(8)]
    assert [w.wait(timeout=120) for w in writers] == [0] * 8
    assert len(results.read_jsonl(tmp_path / "m.jsonl")) == 8 * 20 * 10  # not one row lost


def test_a_term_signal_stops_a_command_as_ctrl_c_does(capsys, monkeypatch):
    """SIGTERM (a CI runner's stop, ``kill``) takes the path of SIGINT, which the next test follows whole."""
    from seqbench import cli, console

    def stopped(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # (not reached: the handler raises at once)
        return 0

    command = argparse.Namespace(func=stopped, command="check")
    monkeypatch.setattr(cli, "parser", lambda: argparse.Namespace(parse_args=lambda argv: command))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert cli.main([]) == console.INTERRUPTED
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    assert "seqbench check: interrupted" in capsys.readouterr().err


@pytest.mark.parametrize("sig", [signal.SIGINT], ids=["SIGINT"])
def test_an_interrupted_check_keeps_what_it_did_and_a_rerun_completes_it(env, tmp_path, sig):
    marks = tmp_path / "marks"
    slow = {**env, "SEQBENCH_TEST_SLOW": "0.4", "SEQBENCH_TEST_MARKS": str(marks)}
    command = [sys.executable, "-m", "seqbench", "check", "--backend", "slow", "--results-dir", str(tmp_path / "r")]
    run = subprocess.Popen(command, env=slow, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while len(list(marks.glob("*"))) < 3 and time.monotonic() < deadline:  # 3 forward passes: 2 cases done
        time.sleep(0.1)
    run.send_signal(sig)
    out = run.communicate(timeout=60)[0]
    assert run.returncode == 130, out
    assert "interrupted" in out and "run the same command again" in out, out
    kept = rows(tmp_path / "r")
    assert 1 <= len(kept) < 12 and all(r["passed"] for r in kept.values())  # readable, and what ran is there
    unchecked = json.loads((tmp_path / "r" / "faults.unchecked.json").read_text())["cases"]
    assert len(kept) + len(unchecked) == 12  # rnn: 2 dtypes x 3 shapes x forward and vjp
    report = seqbench(env, "report", str(tmp_path / "r"), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stdout + report.stderr
    assert "## Conformance not finished" in (tmp_path / "report" / "report.md").read_text()
    again = seqbench(env, "check", "--backend", "slow", "--results-dir", str(tmp_path / "r"))
    assert again.returncode == 0, again.stdout
    assert len(rows(tmp_path / "r")) == 12 and not (tmp_path / "r" / "faults.unchecked.json").exists()


def test_a_second_benchmark_sweep_on_the_machine_is_refused(env, tmp_path):
    pytest.importorskip("asv")
    cache = {**env, "SEQBENCH_CACHE_DIR": str(tmp_path)}
    os.environ["SEQBENCH_CACHE_DIR"], saved = str(tmp_path), os.environ.get("SEQBENCH_CACHE_DIR")
    try:
        with asv.machine_lock(["cpu"], "results"):
            out = seqbench(cache, "bench", "--op", "rnn", "--backend", "numpy")
    finally:
        os.environ.pop("SEQBENCH_CACHE_DIR") if saved is None else os.environ.update(SEQBENCH_CACHE_DIR=saved)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"another benchmark sweep is running on this machine (pid {os.getpid()}: seqbench bench" in out.stderr


def test_an_interrupted_sweep_keeps_the_ops_it_finished(env, tmp_path):
    pytest.importorskip("asv")
    home = tmp_path / "home"
    home.mkdir()
    sweep = {**env, "HOME": str(home), "SEQBENCH_CACHE_DIR": str(tmp_path / "cache"), "SEQBENCH_PREIMPORT": "0"}
    command = [sys.executable, "-m", "seqbench", "bench", "--op", "rnn,gru", "--backend", "numpy", "--machine",
               "faults", "--results-dir", str(tmp_path / "r"), "--set-commit-hash", "HEAD", "--log",
               str(tmp_path / "asv.log")]
    run = subprocess.Popen(command, env=sweep, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    saved = []
    while not saved and time.monotonic() < deadline and run.poll() is None:
        saved = [p for p in (tmp_path / "r" / "faults").glob("*.json") if p.name != "machine.json"]
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    out = run.communicate(timeout=120)[0]
    assert saved, out
    if run.returncode == 0:
        pytest.skip("the sweep finished before the signal reached it")
    assert run.returncode == 130, out
    assert "benchmarks interrupted during gru (op 2 of 2); results of rnn kept in" in out, out
    data = json.loads(saved[0].read_text())  # readable, and it holds the finished op
    assert any(name.startswith("bench_recurrent.rnn.") for name in data["results"])


def test_the_report_leaves_out_foreign_truncated_and_newer_files_and_says_so(tmp_path):
    import synthetic

    root = synthetic.write(tmp_path / "results")
    (root / "conformance" / "notes.jsonl").write_text('{"hello": "another tool"}\n')
    (root / "conformance" / "newer.jsonl").write_text(json.dumps({"schema": results.SCHEMA + 1, "machine": "x"}) + "\n")
    (root / "conformance" / "cut.jsonl").write_text('{"test_id": "a", "machine": "cpubox", "backe')
    asv_file = next(p for p in (root / "cpubox").glob("*.json") if p.name != "machine.json")
    (root / "cpubox" / "ffffffff-existing-py.json").write_text(asv_file.read_text()[:100])
    (root / "gpubox" / "machine.json").write_text("not json")
    out = subprocess.run([sys.executable, "-m", "seqbench", "report", str(root), "--out", str(tmp_path / "report")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    for name, why in (("notes.jsonl", "not seqbench conformance results"), ("newer.jsonl", "written by a newer seqbench"),
                      ("cut.jsonl", "not JSON lines"), ("ffffffff-existing-py.json", "a truncated or foreign file"),
                      ("machine.json", "not an asv machine file")):
        assert any(name in line and why in line for line in out.stderr.splitlines()), (name, out.stderr)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Files left out" in md and "cpubox" in md  # what could be read is reported


def test_a_benchmark_that_crashes_fails_and_the_sweep_goes_on(env, tmp_path):
    """asv runs each benchmark in a process of its own: a segfaulting forward pass fails those benchmarks,
    the sweep finishes the others, names what failed, and exits non-zero."""
    pytest.importorskip("asv")
    home = tmp_path / "home"
    home.mkdir()
    sweep = {**env, "HOME": str(home), "SEQBENCH_CACHE_DIR": str(tmp_path / "cache"), "SEQBENCH_PREIMPORT": "0"}
    out = seqbench(sweep, "bench", "--op", "rnn,lstm", "--backend", "segfaulting", "--machine", "faults",
                   "--results-dir", str(tmp_path / "r"), "--set-commit-hash", "HEAD", "--log", str(tmp_path / "asv.log"))
    assert out.returncode != 0, out.stdout + out.stderr
    failed = out.stdout[out.stdout.index("benchmarks failed ("):]
    assert "bench_recurrent.lstm.time_forward" in failed and "bench_recurrent.rnn." not in failed, out.stdout
    log = (tmp_path / "asv.log").read_text()
    assert "bench_recurrent.rnn.time_forward" in log and "bench_recurrent.lstm.time_forward_backward" in log
    saved = [p for p in (tmp_path / "r" / "faults").glob("*.json") if p.name != "machine.json"]
    data = json.loads(saved[0].read_text())
    assert any(name.startswith("bench_recurrent.rnn.") for name in data["results"])  # the rest ran, and was kept
