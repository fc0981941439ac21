"""A plug-in is treated like a built-in: a third party's package (``tests/plugins/traited``), installed with pip, is
listed, checked, benchmarked by ``bench`` and ``run`` without any environment variable, labelled by its declared
implementation, costed by its declared compile time, its trainer benchmarked; and sweeps of it and of built-ins,
in either order and with or without it installed, keep every point in one results folder."""

import importlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seqbench.backends import registry

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(__file__).parent / "plugins" / "traited"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The plug-in package installed with pip into a folder of its own (put on PYTHONPATH to use it)."""
    work = tmp_path_factory.mktemp("plugin")
    shutil.copytree(PACKAGE, work / "src")  # pip builds in the source folder: keep the checkout clean
    target = work / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(work / "src")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


@pytest.fixture
def installed(site):
    """The plug-in visible to this process, as if pip had installed it into this environment."""
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield site
    sys.path.remove(str(site))
    for name in ("myfast", "myslow"):
        registry.unregister(name)
    sys.modules.pop("seqbench_traited", None)


def env(tmp_path: Path, site: Path | None) -> dict:
    """The environment of a user's shell: the plug-in installed (on PYTHONPATH) or not, no SEQBENCH_ variable,
    a home of its own (asv's machine file)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SEQBENCH_", "PYTHONPATH"))}
    return {**clean, "HOME": str(home), "SEQBENCH_CACHE_DIR": str(tmp_path / "cache"),
            **({"PYTHONPATH": str(site)} if site else {})}


def seqbench(environment: dict, *argv, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqbench", *argv], capture_output=True, text=True, cwd=cwd,
                          env=environment, timeout=900)


def measured(results: Path, machine: str) -> dict:
    """``{backend: measured points}`` of the rnn's benchmarks in a results folder (every file of the machine)."""
    counts = {}
    for path in (results / machine).glob("*.json"):
        if path.name == "machine.json":
            continue
        data = json.loads(path.read_text())
        columns = data["result_columns"]
        for name, row in data["results"].items():
            if not name.startswith("bench_recurrent.rnn."):
                continue
            row = dict(zip(columns, row))
            for point, value in zip(itertools.product(*row["params"]), row["result"]):
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    backend = point[0].strip("'")
                    counts[backend] = counts.get(backend, 0) + 1
    return counts


# --- in this process: the traits reach the grid, the shard plan, the main job's plan -------------------------


def test_the_plugins_traits_reach_the_grid_and_the_shard_plan(installed):
    from seqbench.fleet import shards
    from seqbench.jobs import asv

    common = asv.suite_common(ROOT / "asv.conf.json", {"benchmark_dir": "benchmarks"})
    assert "myfast" in common.backends("quick") and "myslow" not in common.backends("quick")
    assert "myfast" not in common.backends("full") and "myslow" in common.backends("full")
    assert common.grid_dtypes("mid", "myfast") == ("float32",) and common.grid_dtypes("mid", "numpy") == (
        "float32", "float64")
    assert "myfast" in common.trainers() and "myslow" not in common.trainers()  # myslow's steps are numpy's
    # its declared compile time is what the shard plan costs beside the work
    assert shards.process_cost("myfast", "cpu", 0.0) - shards.process_cost("numpy", "cpu", 0.0) == pytest.approx(7.0)
    assert registry.traits("myfast").implementation == "hand-fused NumPy (test plug-in)"


def test_the_main_job_leaves_out_what_the_plugin_asks_it_to_unless_named(installed):
    from seqbench import run
    from seqbench.selection import Selection

    backends, _, notes = run.plan(Selection())
    assert "myfast" in backends and "myslow" not in backends
    assert "myslow: left out (compiles for an hour; seqbench check --backend myslow checks it)" in notes
    assert run.plan(Selection(backends=("myslow",)))[0] == ["myslow"]


def test_bench_refuses_a_plugin_its_grid_leaves_out_with_the_plugins_reason(installed, capsys, monkeypatch):
    from seqbench import cli

    monkeypatch.chdir(ROOT)
    assert cli.main(["bench", "--backend", "myslow", "--dry-run"]) == 2
    assert "backend 'myslow' is left out of the quick grid: myslow is too slow for the quick grid" in \
        capsys.readouterr().err


# --- as a user runs it: a shell with the plug-in installed -------------------------------------------------


def test_the_plugin_is_listed_benchmarked_and_labelled_without_an_environment_variable(site, tmp_path):
    pytest.importorskip("asv", reason="asv is not installed (pip install 'seqbench[bench]')")
    shell = env(tmp_path, site)
    listed = seqbench(shell, "list")
    assert re.search(r"^myfast\s+available", listed.stdout, re.M), listed.stdout + listed.stderr
    results = tmp_path / "results"
    out = seqbench(shell, "bench", "--backend", "myfast,numpy", "--op", "rnn", "--machine", "plug",
                   "--set-commit-hash", "HEAD", "--results-dir", str(results))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "myfast: cpu/float32" in out.stdout and "failed" not in out.stdout
    assert measured(results, "plug") == {"myfast": 10, "numpy": 10}  # 5 methods x 2 shapes each
    checked = seqbench(shell, "check", "--backend", "myfast,numpy", "--op", "rnn", "--dtype", "float32",
                       "--results-dir", str(results / "conformance"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"^op .*myfast/cpu/float32", checked.stdout, re.M) and ", 0 failed" in checked.stdout, \
        checked.stdout
    report = seqbench(shell, "report", str(results), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stdout + report.stderr
    table = (tmp_path / "report" / "benchmarks.csv").read_text()  # a row per point, with its implementation
    assert re.search(r"^.*myfast.*hand-fused NumPy \(test plug-in\)", table, re.M), table[:2000]


def test_sweeps_in_either_order_with_or_without_the_plugin_keep_every_point(site, tmp_path):
    """The sweeps that used to delete each other's points: a built-in's without the plug-in installed (a backend
    axis without it), the plug-in's (an axis with it), the built-in's again; and the reverse order."""
    pytest.importorskip("asv", reason="asv is not installed (pip install 'seqbench[bench]')")
    plain, plugged = env(tmp_path, None), env(tmp_path, site)
    for order, folder in (((plain, "numpy"), (plugged, "myfast"), (plain, "numpy")), tmp_path / "a"), \
                         (((plugged, "myfast"), (plain, "numpy"), (plugged, "myfast")), tmp_path / "b"):
        seen = []
        for shell, backend in order:
            out = seqbench(shell, "bench", "--backend", backend, "--op", "rnn", "--machine", "plug",
                           "--set-commit-hash", "HEAD", "--results-dir", str(folder))
            assert out.returncode == 0, out.stdout + out.stderr
            seen.append(measured(folder, "plug"))
        assert seen[-1] == {"numpy": 10, "myfast": 10}, seen  # every point of every sweep, none twice
        assert all(count <= seen[-1][b] for counts in seen for b, count in counts.items())


def test_a_sweep_that_keeps_nothing_writes_nothing(tmp_path):
    pytest.importorskip("asv", reason="asv is not installed (pip install 'seqbench[bench]')")
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".git", ".venv", "results", "*.egg-info",
                                                                  "__pycache__", "seqbench-run"))
    out = seqbench(env(tmp_path, None), "bench", "--backend", "numpy", "--op", "rnn", "--machine", "plug",
                   cwd=checkout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "results not kept" in out.stdout
    assert not (checkout / "results").exists()  # no benchmarks.json, no machine.json
