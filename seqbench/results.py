"""Result records: flat rows of scalars, written as JSON lines, atomically.

One row per measurement, so ``pandas.read_json(path, lines=True)`` reads a
results file with no glue. Files are replaced atomically (write a temporary
file beside the target, then ``os.replace``), so an interrupted run never
leaves a corrupt file, and a narrowed run merges into what is there instead
of erasing other backends' rows.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def merge_jsonl(path: str | Path, rows: list[dict], key: str = "test_id") -> list[dict]:
    """Replace the rows of ``path`` that share ``key`` with ``rows``, keep the others; atomic."""
    new_keys = {row[key] for row in rows}
    merged = [row for row in read_jsonl(path) if row.get(key) not in new_keys] + rows
    write_jsonl_atomic(path, merged)
    return merged
