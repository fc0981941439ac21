"""Driving asv for ``seqbench bench``: the config and the suite, the machine record, the sweep locks, the command
line, and asv's output followed line by line.

Every asv run writes into a scratch results folder (a derived config); the
sweep then merges what it kept into the results folder it was asked for
(:mod:`seqbench.results.asv_files`), so asv never rewrites another sweep's
points and a sweep that keeps nothing writes nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from seqbench.results.records import gpu_names


class BenchError(ValueError):
    """``seqbench bench`` cannot start; the message says why and what to do."""


def require_asv() -> None:
    if importlib.util.find_spec("asv") is None:
        raise BenchError(f"asv is not installed in this Python ({sys.executable}); "
                         "pip install 'seqbench[bench]' (asv >= 0.6)")


def find_config(path: str | None = None) -> Path:
    """The asv config: ``path``, or ``asv.conf.json`` in the current directory or one above it."""
    if path:
        config = Path(path)
        if not config.is_file():
            raise BenchError(f"no asv config at {config}")
        return config.resolve()
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "asv.conf.json").is_file():
            return folder / "asv.conf.json"
    raise BenchError("no asv.conf.json in this directory or above: run seqbench bench in the seqbench "
                     "repository (the asv suite lives in its benchmarks/), or pass --config")


def load_config(config: Path) -> dict:
    from asv import util

    return util.load_json(str(config), js_comments=True)


def results_dir(config: Path, conf: dict) -> Path:
    """The config's results folder."""
    return (config.parent / conf.get("results_dir", "results")).resolve()


def suite_common(config: Path, conf: dict):
    """The suite's ``benchmarks/common.py`` (grids and axes), loaded from its file."""
    path = config.parent / conf.get("benchmark_dir", "benchmarks") / "common.py"
    if not path.is_file():
        raise BenchError(f"no benchmark suite at {path.parent} (benchmark_dir of {config})")
    spec = importlib.util.spec_from_file_location("_seqbench_suite_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def derived_config(config: Path, conf: dict, results: Path, folder: Path) -> Path:
    """A copy of the config in ``folder`` with absolute paths and ``results`` as its results folder."""
    root = config.parent
    derived = dict(conf)
    derived.update(
        repo=str((root / conf.get("repo", ".")).resolve()),
        benchmark_dir=str((root / conf.get("benchmark_dir", "benchmarks")).resolve()),
        results_dir=str(results.resolve()),
        html_dir=str((results / "html").resolve()),
        env_dir=str((root / conf.get("env_dir", "env")).resolve()),
    )
    (folder / "asv.conf.json").write_text(json.dumps(derived, indent=2))
    return folder / "asv.conf.json"


def _machine_file() -> Path:
    return Path(os.path.expanduser("~/.asv-machine.json"))


def ensure_machine(name: str | None) -> None:
    """Record the asv machine in ``~/.asv-machine.json`` (so asv never prompts): asv's own defaults for what is
    missing (CPU, OS, memory), and the GPUs ``nvidia-smi`` lists, which asv keeps into each results folder's
    ``machine.json`` for the report."""
    from asv.machine import Machine, MachineCollection

    path = _machine_file()
    known = {}
    if path.is_file():
        try:
            known = {k: v for k, v in json.loads(path.read_text()).items() if k != "version"}
        except ValueError:
            known = {}
    node = platform.node()
    key = name or (node if node in known or len(known) != 1 else next(iter(known)))
    info = {**Machine.get_defaults(), **known.get(key, {}), "machine": key}
    gpus = gpu_names()
    if gpus:
        info["gpu"] = gpus
    if info != known.get(key):
        MachineCollection.save(key, info, _path=str(path))


def machine(name: str | None) -> str | None:
    """The asv machine results are filed under: ``name`` (``--machine``), else ``SEQBENCH_MACHINE`` (the name
    conformance rows carry, so that the report joins the two), else asv's default, the host name."""
    return name or os.environ.get("SEQBENCH_MACHINE") or None


def lock_keys(devices: set, training: bool) -> list[str]:
    """What a sweep times on: ``cpu``, and the GPUs visible to it (``gpu``, or ``gpu-<CUDA_VISIBLE_DEVICES>``
    where that names some), so sweeps on different GPUs of one machine may run side by side."""
    keys = {"cpu"} if training or "cpu" in devices or not devices else set()
    if any(d != "cpu" for d in devices):
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").replace(",", "-").strip()
        keys.add(f"gpu-{visible}" if visible else "gpu")
    return sorted(keys)


@contextlib.contextmanager
def machine_lock(keys, target: str, wait: bool = False):
    """One sweep at a time on a device of a machine (they would slow each other down): a second one is
    refused, naming the first, or with ``wait`` (a shard of a cluster sweep) waits its turn. The locks are files
    ``bench-<key>.lock`` under ``$SEQBENCH_CACHE_DIR`` (default ``~/.cache/seqbench``); ``target`` says where
    the holder's results go."""
    root = os.environ.get("SEQBENCH_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                       Path.home() / ".cache") / "seqbench"
    Path(root).mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for key in keys:  # in sorted order, so two sweeps never each hold one the other waits for
            handle = stack.enter_context(open(Path(root) / f"bench-{key}.lock", "a+"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise BenchError(f"another benchmark sweep is running on this machine ({holder}); sweeps run one "
                                 f"at a time so that they do not slow each other down: wait for it to finish") from None
            stack.callback(fcntl.flock, handle, fcntl.LOCK_UN)
            stack.callback(handle.truncate, 0)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}: seqbench bench on {key}, started "
                         f"{time.strftime('%H:%M:%S')}, results to {target}")
            handle.flush()
        yield


def command(run_config: Path, patterns: list[str], commit: str | None, machine_name: str | None,
            launch_method: str | None = None, show_stderr: bool = False) -> list[str]:
    """The ``asv run`` command line of one run of the sweep. It keeps every timing sample (``--record-samples``: the
report's significance tests); each grid sets how many the suite takes (``benchmarks/common.py``), asv's ``--quick``
(one sample) is never used."""
    launch = launch_method or ("forkserver" if hasattr(os, "fork") else "spawn")
    line = [sys.executable, "-m", "asv", "run", "--python=same", "--record-samples", f"--config={run_config}",
            f"--launch-method={launch}"]
    if machine_name:
        line.append(f"--machine={machine_name}")
    if commit:
        line.append(f"--set-commit-hash={commit}")
    if show_stderr:
        line.append("--show-stderr")
    for pattern in patterns:
        line += ["--bench", pattern]
    return line


def shown(grid: str, line: list[str]) -> str:
    """A command line as a user would type it (the suite reads its grid from ``SEQBENCH_GRID``)."""
    return f"SEQBENCH_GRID={grid} {shlex.join(line)}"


#: asv's line for a finished benchmark: ``[ 40.00%] ··· bench_recurrent.rnn.time_forward    ok`` (or ``2/6 failed``:
#: some of its parameter points failed)
_PROGRESS = re.compile(r"^\[\s*([\d.]+)%\]\s+·+\s+((?:\.\.\.|bench_)\S+)\s+(\S.*?)\s*$")


class Followed:
    """What the lines of asv's output said: finished benchmarks by status, and the names of those that failed."""

    def __init__(self):
        self.counts = Counter()
        self.failed = []

    def line(self, text: str) -> tuple[float, str] | None:
        """Take one line; ``(percent done, benchmark)`` when it reports a finished benchmark."""
        finished = _PROGRESS.match(text)
        if not finished:
            return None
        status = "failed" if "failed" in finished.group(3) else finished.group(3)
        self.counts[status] += 1
        if status == "failed":
            self.failed.append(finished.group(2))
        return float(finished.group(1)), finished.group(2)


def stream(line: list[str], grid: str, cwd: Path, start: float, followed: Followed, sink=None, progress=None) -> int:
    """Run asv, its output to ``sink`` (a log; ``progress(percent, benchmark)`` follows each finished benchmark)
    or the terminal, each line timed from ``start``; returns asv's exit status."""
    env = {**os.environ, "SEQBENCH_GRID": grid}  # the suite reads its grid from here
    if env.get("PYTHONPATH") and not env.get("ASV_PYTHONPATH"):  # asv drops PYTHONPATH: plug-ins found on it
        env["ASV_PYTHONPATH"] = env["PYTHONPATH"]                  # stay on the benchmark processes' axis
    if sink:
        sink.write(f"$ {shown(grid, line)}\n")
    with subprocess.Popen(line, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                          cwd=cwd, env=env, start_new_session=True) as process:  # stopped as one group
        try:
            for text in process.stdout:
                elapsed = time.monotonic() - start
                stamped = f"{int(elapsed // 60):3d}:{int(elapsed % 60):02d} {text}" if text.startswith("[") else text
                finished = followed.line(text)
                if sink is None:
                    print(stamped, end="", flush=True)
                    continue
                sink.write(stamped)
                if finished and progress:
                    progress(*finished)
        except KeyboardInterrupt:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)  # asv, its fork server and its benchmark processes
            raise
    return process.returncode
