"""``--cluster ADDRESS``: a sweep split into shards that run as Ray tasks, gathered into one results folder.

``seqbench bench``, ``check`` and ``run`` take ``--cluster ADDRESS`` (a Ray
address such as ``ray://head:10001`` or ``auto``, or ``local`` to start a Ray
instance on this machine). The sweep is then

1. surveyed where it will run: one small task on a CPU worker, and one on a GPU
   worker when the cluster has GPUs, lists the units that can run there (the
   same selection ``seqbench bench``/``check`` make on one machine);
2. dealt into shards of about equal cost by the catalog's FLOP model
   (:mod:`seqbench.fleet.shards`): one per GPU for GPU work (a task holding
   ``num_gpus=1``), one per node for CPU work, or ``--shards N``;
3. run, each shard a Ray task running the existing asv suite (or conformance
   suite) for its units on its worker, under the worker's own machine name
   (``SEQBENCH_MACHINE`` there, else its host name) and with its GPU named in
   the machine record. Benchmark shards on one machine take turns per device
   (the sweep lock), so no timing is taken beside another sweep;
4. gathered: each shard's result files come back as it finishes and are merged
   into the local results folder (asv files point by point, conformance rows by
   test id), its log written to ``<results>/logs/``. A shard whose worker died
   is run again once; if it fails again (or raises) it is reported failed with
   the reason and every other shard's results are kept.

Ray is the engine (``pip install 'seqbench[cluster]'``); workers need seqbench
installed with the extras of their backends, and get the asv suite (this
checkout's tracked files, and a git repository of the recorded commit: asv
reads it) through Ray's ``working_dir`` (:mod:`seqbench.fleet.shipped`). A
local instance runs the tasks in this checkout. Who may reach the cluster:
:mod:`seqbench.fleet.access`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from seqbench.results import asv_files
from seqbench import console
from seqbench.fleet import access, shipped
from seqbench.selection import KINDS, kind

#: what installs the engine
INSTALL = "pip install 'seqbench[cluster]'"
#: environment variables a remote cluster's workers get from this machine (their own machine name excepted)
FORWARDED = ("SEQBENCH_", "ASV_PYTHONPATH")


@dataclass
class Gathered:
    """What a cluster sweep did: per shard its outcome, and everything gathered."""

    shards: list
    done: dict = field(default_factory=dict)  # shard index -> what its task returned
    failed: dict = field(default_factory=dict)  # shard index -> why it failed
    notes: list = field(default_factory=list)  # what the surveys left out, and why
    seconds: float = 0.0
    interrupted: str = ""
    logs: list = field(default_factory=list)


def connect(address: str, root: Path | None, log: Path, insecure: bool = False, commit: str = "HEAD") -> dict:
    """Start or join Ray; returns the cluster's resources. ``root``: the checkout whose asv suite the workers
    run (its tracked files and ``commit`` shipped to a remote cluster's workers), or None (the conformance
    suite: installed with seqbench). ``local`` listens on the loopback address only, with token authentication;
    a remote cluster must require a token (:mod:`seqbench.fleet.access`) unless ``insecure``."""
    if importlib.util.find_spec("ray") is None:
        raise ValueError(f"--cluster needs Ray, which is not installed in this Python: {INSTALL}")
    # who may reach the cluster, settled before Ray is imported here (it reads its settings then)
    if address == "local":
        access.local_only()
    else:
        access.check_remote(address, insecure, lambda line: print(line, file=sys.stderr))
    import ray

    # "local" starts a Ray instance here even where RAY_ADDRESS names a cluster
    options = {"address": address, "log_to_driver": False, "include_dashboard": False, "configure_logging": False}
    shipping = contextlib.nullcontext(None)
    if address == "local":
        options["_node_ip_address"] = access.LOOPBACK
    else:
        options["runtime_env"] = {"env_vars": {k: v for k, v in os.environ.items()
                                               if k.startswith(FORWARDED) and k != "SEQBENCH_MACHINE"}}
        if root:  # asv reads the commit from git: the copy's .git goes too, which Ray leaves out by default
            shipping = shipped.checkout_copy(root, commit)
            os.environ.setdefault("RAY_OVERRIDE_RUNTIME_ENV_DEFAULT_EXCLUDES", "__pycache__")
    log.parent.mkdir(parents=True, exist_ok=True)
    with shipping as folder, console.to_log(log):  # Ray's own start-up messages
        if folder:
            options["runtime_env"]["working_dir"] = str(folder)  # uploaded by ray.init
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ValueError(f"--cluster {address}: cannot connect to a Ray cluster there ({error}); see "
                             f"{log}") from None
    if address == "local":
        try:
            access.check_local(ray.util.get_node_ip_address())
        except ValueError:
            ray.shutdown()
            raise
    return ray.cluster_resources()


def shutdown() -> None:
    import ray

    ray.shutdown()


def shard_counts(resources: dict, asked: int | None, timed: bool) -> tuple[int, int]:
    """``(CPU shards, GPU shards)``: ``--shards`` for both, else one per GPU, and for CPU work one per node when
    it is ``timed`` (benchmarks on one machine take turns) or one per CPU (conformance cases run side by side)."""
    import ray

    gpus = int(resources.get("GPU", 0))
    if asked is not None:  # (≥ 1: the command line refuses less)
        return asked, asked if gpus else 0
    cpus = sum(1 for node in ray.nodes() if node.get("Alive")) if timed else int(resources.get("CPU", 1))
    return max(cpus, 1), gpus


def _remote(function, gpu: bool, retries: int = 0):
    import ray

    return ray.remote(function).options(num_cpus=1, num_gpus=1 if gpu else 0, max_retries=retries,
                                        retry_exceptions=False)


def survey(function, spec: dict, gpu_too: bool) -> tuple[list, list]:
    """``function(spec, kind)`` on a CPU worker (``kind`` "cpu") and, with ``gpu_too``, on a GPU worker
    ("cuda"); returns every unit they found and their notes on what cannot run."""
    import ray

    kinds = [k for k in KINDS if k == "cpu" or gpu_too]
    kinds = [k for k in kinds if not spec.get("devices") or any(kind(d) == k for d in spec["devices"])]
    found = ray.get([_remote(function, kind == "cuda").remote(spec, kind) for kind in kinds])
    units = [u for unit_list, _ in found for u in unit_list]
    notes = list(dict.fromkeys(n for _, note_list in found for n in note_list))
    if not gpu_too and any(d != "cpu" for d in spec.get("devices") or ()):
        notes.append("cuda: the cluster has no GPU (ray.cluster_resources() lists none)")
    return units, notes


def run_shards(plan: list, work, spec: dict, gather, title: str) -> Gathered:
    """Run ``work(spec, shard)`` for every shard of ``plan`` as a Ray task (again once if its worker dies),
    ``gather(shard, returned)`` each as it finishes; a bar counts the shards done."""
    import ray

    result = Gathered(plan)
    started = time.monotonic()
    pending = {_remote(work, shard.gpu, retries=1).remote(spec, shard): shard for shard in plan}
    with console.phase(title, total=len(plan)) as bar:
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)  # (Ctrl-C gets through)
                if not ready:
                    continue
                shard = pending.pop(ready[0])
                try:
                    returned = ray.get(ready[0])
                except ray.exceptions.RayError as error:
                    result.failed[shard.index] = _reason(error)
                    bar.advance(item=f"{shard.name} FAILED")
                    continue
                result.done[shard.index] = returned
                result.logs += gather(shard, returned)
                bar.advance(item=f"{shard.name} done on {returned['host']}")
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            result.interrupted = (f"interrupted with {len(pending)} of {len(plan)} shards running; the results of "
                                  f"the {len(result.done)} finished are kept")
        finally:
            result.seconds = time.monotonic() - started
        bar.done(result.interrupted.split(";")[0] if result.interrupted else
                 f"{len(result.done)} done, {len(result.failed)} failed")
    return result


def _reason(error) -> str:
    """The first line of why a shard's task failed, with what killed its worker when a worker died."""
    text = str(error).strip().splitlines()
    first = next((line for line in text if line.strip() and not line.startswith("ray.")), "") or type(error).__name__
    died = "worker died" if "Worker" in type(error).__name__ or "died" in str(error).lower() else ""
    return f"{type(error).__name__}: {first.strip()}" + (f" ({died}; it ran twice)" if died else "")


def plan_table(plan: list, gathered: Gathered | None = None) -> str:
    """The shards: what each holds, the estimated seconds and, after the sweep, where it ran and how it went."""
    rows = []
    for shard in plan:
        units = ", ".join(str(u) for u in shard.units[:3]) + (f", ... ({len(shard.units)} units)"
                                                            if len(shard.units) > 3 else "")
        line = [shard.name, units, f"{shard.cost:.0f} s"]
        if gathered is not None:
            done = gathered.done.get(shard.index)
            line += [done["host"] if done else "-", f"{done['seconds']:.0f} s" if done else "-",
                     done["status"] if done else f"FAILED: {gathered.failed[shard.index]}"
                     if shard.index in gathered.failed else "interrupted: not finished"]
        rows.append(line)
    head = ["shard", "units", "estimated"] + (["worker", "took", "status"] if gathered is not None else [])
    return console.table(rows, head)


def commit(root: Path, name: str = "HEAD") -> str:
    """The commit the results are recorded for (``--set-commit-hash``, default the checkout's HEAD), in full."""
    done = subprocess.run(["git", "rev-parse", "--verify", f"{name}^{{commit}}"], cwd=root, capture_output=True,
                          text=True)
    if done.returncode:
        raise ValueError(f"--cluster records results for a commit of the checkout, and {name!r} is not one in "
                         f"{root} ({done.stderr.strip() or 'not a git checkout'})")
    return done.stdout.strip()


def worker_root(spec: dict) -> Path:
    """The checkout a task runs in: this one on a local instance, Ray's copy of it (the task's working
    directory) on a remote cluster."""
    return Path(spec["root"]) if spec.get("local") else Path(os.getcwd())


def scratch(spec: dict) -> tempfile.TemporaryDirectory:
    """A shard's scratch folder, after giving the shard's processes the threads a run without Ray has: Ray sets
    ``OMP_NUM_THREADS`` to a task's CPUs (1) where it is unset, which would time every CPU benchmark on one
    thread (and change BLAS's summation order); it is set as on the driver (``spec["threads"]``), or unset."""
    if spec.get("threads"):
        os.environ["OMP_NUM_THREADS"] = spec["threads"]
    else:
        os.environ.pop("OMP_NUM_THREADS", None)
    return tempfile.TemporaryDirectory(prefix="seqbench-shard-")


def returned(files: dict, log: Path, seconds: float, status: str, **more) -> dict:
    """What a shard's task sends back: the result files, its log, where and how long it ran."""
    return {"files": files, "log": log.read_text() if log.exists() else "", "host": platform.node(),
            "seconds": seconds, "status": status, **more}


def write_log(logs: Path, prefix: str, shard, returned: dict) -> list:
    """A finished shard's log, written as ``<logs>/<prefix>-shard-K.log``; its path, for the summary."""
    log = logs / f"{prefix}-shard-{shard.index + 1}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(returned["log"])
    return [log]


def gather_files(results_dir: Path, logs: Path, prefix: str):
    """A ``gather`` for :func:`run_shards`: a shard's asv files merged into ``results_dir``, its log written."""
    def gather(shard, returned: dict) -> list:
        asv_files.merge_folder(results_dir, returned["files"])
        return write_log(logs, prefix, shard, returned)
    return gather


def files_under(folder: Path) -> dict:
    """Every JSON file under ``folder`` (asv's results: benchmarks.json, <machine>/*.json), by relative path."""
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.json"))
            if "html" not in p.relative_to(folder).parts}


def counts(gathered: Gathered, key: str) -> Counter:
    total = Counter()
    for done in gathered.done.values():
        total.update(done.get(key, {}))
    return total
