"""The seqbench command, run as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def seqbench(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "seqbench.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_list_shows_backends_with_availability_and_ops():
    out = seqbench("list")
    assert out.returncode == 0, out.stderr
    assert "numpy      available    devices: cpu" in out.stdout
    assert "lstm" in out.stdout and "gru_reset_after" in out.stdout
    for line in out.stdout.splitlines():
        if "unavailable" in line:
            assert line.split("unavailable", 1)[1].strip(), f"unavailable without a reason: {line}"


def test_check_narrowed_prints_a_table_and_writes_results(tmp_path):
    out = seqbench("check", "--backend", "numpy", "--op", "lstm,gru", "--dtype", "float32",
                   "--results-dir", str(tmp_path / "res"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "numpy/cpu/float32" in out.stdout and "lstm" in out.stdout
    assert "0 failed" in out.stdout
    rows = [json.loads(line) for line in next((tmp_path / "res").glob("*.jsonl")).read_text().splitlines()]
    assert {r["op"] for r in rows} == {"lstm", "gru"} and {r["kind"] for r in rows} == {"forward", "vjp"}
    assert all(r["passed"] and r["dtype"] == "float32" and r["err_eps"] <= r["budget_eps"] <= r["cap_eps"] for r in rows)
    # float32 numpy is the faithful float32 implementation itself: exactly 1x its error
    assert all(0 < r["ratio"] <= 1.0 for r in rows) and " x" in out.stdout


def test_run_checks_benchmarks_and_reports_on_the_cpu(tmp_path):
    out = seqbench("run", "--backend", "numpy", "--op", "rnn", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "numpy: available" in out.stdout and "numpy/cpu/float64" in out.stdout
    assert "[2/3] quick benchmark grid (asv)" in out.stdout and "seqbench bench: ok" in out.stdout
    report = tmp_path / "run" / "report" / "report.md"
    assert f"report written to {report.parent}/" in out.stdout
    text = report.read_text()
    assert "| rnn |" in text or "rnn" in text.split("## Recommendations", 1)[1]
    assert list((tmp_path / "run" / "results" / "conformance").glob("*.jsonl"))


def test_bad_arguments_get_a_clear_message():
    out = seqbench("check", "--op", "lstmm")
    assert out.returncode == 2
    assert "seqbench check: error: op must be one of" in out.stderr and "Traceback" not in out.stderr
    out = seqbench("check", "--backend", "nope")
    assert out.returncode == 2 and "seqbench check: error: backend must be one of" in out.stderr
