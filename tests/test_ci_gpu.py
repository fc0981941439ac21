""".ci/gpu, the GPU session in one command: every step under its limit, its log and its line in the summary, all
under one folder; a step stopped at its limit is said and the next still runs; an unknown step is refused. Run
here as its dry run (DRY_RUN=1: the same steps on the CPU)."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def session(tmp_path, steps: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / ".ci" / "gpu")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DRY_RUN": "1", "GPU_OUT": str(tmp_path / "s"), "STEPS": steps, **env})


def test_steps_write_their_logs_and_the_summary_under_one_folder(tmp_path):
    done = session(tmp_path, "probes tests", STEP_SECONDS_tests="0.1")
    summary = (tmp_path / "s" / "summary.md").read_text()
    assert done.returncode == 1, done.stdout + done.stderr  # a step stopped at its limit counts as not done
    assert "| probes | seqbench probe --device cpu" in summary and "| 0 (ok) |" in summary
    assert "| tests | python3 -m pytest" in summary and "| 124 (stopped at its limit, what it measured kept) |" in summary
    assert summary.index("| probes |") < summary.index("| tests |")  # in the order asked
    assert "no backend here has a probe" in (tmp_path / "s" / "logs" / "probes.log").read_text()
    assert (tmp_path / "s" / "results").is_dir() and done.stdout.rstrip().endswith(f"{tmp_path / 's'}/summary.md")


def test_an_unknown_step_is_refused_with_the_steps_there_are(tmp_path):
    done = session(tmp_path, "probes nope")
    assert done.returncode == 2 and "unknown step nope (steps: probes check32 lstm32 tests" in done.stderr
    assert not (tmp_path / "s" / "logs" / "probes.log").exists()  # refused before any step ran
