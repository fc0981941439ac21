"""Result records: flat rows of scalars, written as JSON lines, atomically.

One row per measurement, so ``pandas.read_json(path, lines=True)`` reads a
results file with no glue. Files are replaced atomically (write a temporary
file beside the target, then ``os.replace``), so an interrupted run never
leaves a corrupt file, and a narrowed run merges into what is there instead
of erasing other backends' rows.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import platform
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

#: the version of the result-row format; readers skip rows of a newer one, saying so
SCHEMA = 1


def machine_name() -> str:
    """The machine key results are filed under (``SEQBENCH_MACHINE`` overrides the host name)."""
    return os.environ.get("SEQBENCH_MACHINE") or platform.node() or "unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> str:
    """The NVIDIA GPUs of this machine as ``nvidia-smi`` names them (``"8 x NVIDIA H100 80GB HBM3"``), or ""."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    names = [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []
    return ", ".join(f"{names.count(n)} x {n}" if names.count(n) > 1 else n for n in dict.fromkeys(names))


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON line ({error.msg})") from None
    return rows


def write_jsonl_atomic(path: str | Path, rows: list[dict]) -> None:
    """Write ``rows`` to ``path`` as JSON lines; the file is replaced in one step."""
    write_atomic(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path``: a temporary file beside it, then one rename, so readers never see half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@contextmanager
def locked(path: str | Path):
    """An exclusive lock on the folder of ``path`` (its ``.seqbench.lock``) for one read-modify-write:
    concurrent writers take turns, so none loses another's rows."""
    lock = Path(path).parent / ".seqbench.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def merge_jsonl(path: str | Path, rows: list[dict], key: str = "test_id") -> list[dict]:
    """Replace the rows of ``path`` that share ``key`` with ``rows``, keep the others; atomic, locked."""
    new_keys = {row[key] for row in rows}
    with locked(path):
        merged = [row for row in read_jsonl(path) if row.get(key) not in new_keys] + rows
        write_jsonl_atomic(path, merged)
    return merged


#: the reason of a case an interrupted run did not reach (a list written before reasons were kept has none)
NOT_REACHED = "not reached: the run was interrupted"


def unchecked_path(results_dir: str | Path, machine: str | None = None) -> Path:
    """A machine's (by default this one's) list of conformance cases a run left without a verdict (interrupted
    before them, or stopped by a ``--timeout``), each with its ``reason``."""
    return Path(results_dir) / f"{machine or machine_name()}.unchecked.json"


def save_conformance(results_dir: str | Path, rows: list[dict], unreached: list[dict] = (),
                     machine: str | None = None) -> None:
    """Merge ``rows`` into a machine's results file (this one's, or ``machine``'s: a cluster worker's) and keep
    its list of unchecked cases true: cases that now have a row leave it, ``unreached`` ones join it (it is
    removed when empty)."""
    machine = machine or machine_name()
    if rows:
        merge_jsonl(Path(results_dir) / f"{machine}.jsonl", rows)
    path = unchecked_path(results_dir, machine)
    checked = {row["test_id"] for row in rows}
    with locked(path):
        try:
            known = json.loads(path.read_text())["cases"] if path.exists() else []
        except (ValueError, KeyError, TypeError):
            known = []  # unreadable: rewritten from what this run knows
        cases = {c["test_id"]: c for c in known + list(unreached) if c.get("test_id") not in checked}
        if not cases:
            path.unlink(missing_ok=True)
            return
        write_atomic(path, json.dumps({"about": "conformance cases a seqbench check left without a verdict (each "
                                                "case's reason); a run that checks them removes them", "schema": SCHEMA,
                                       "cases": sorted(cases.values(), key=lambda c: c["test_id"])}, indent=1))


def fault_row(case: dict, why: str) -> dict:
    """The result row of a case that could not be judged (its backend raised, crashed or hung): failed, with
    ``fault`` saying why. ``case`` names ``test_id``, ``backend``, ``device``, ``dtype``, ``op``, ``kind``."""
    return {
        "test_id": case["test_id"], "machine": machine_name(), "backend": case["backend"],
        "device": case["device"], "dtype": case["dtype"], "op": case["op"], "kind": case["kind"],
        "shape": case.get("shape"), "passed": False, "fault": why, "max_err_eps": None, "err_eps": None,
        "budget_eps": None, "ratio": None, "schema": SCHEMA,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
