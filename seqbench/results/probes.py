"""Probe findings on disk: ``<results-dir>/<machine>.probes.json``, a JSON list of entries (one per machine,
backend, device and probe: the question, the rows measured, the answer, versions and date), written by
``seqbench probe`` and read by the report. Saving merges: an entry probed again replaces its old self, every
other entry is kept."""

from __future__ import annotations

import json
import math
from pathlib import Path

from . import records

SUFFIX = ".probes.json"


def path(results_dir, machine: str | None = None) -> Path:
    """The probe file of ``machine`` (this one by default) in ``results_dir``."""
    return Path(results_dir) / f"{machine or records.machine_name()}{SUFFIX}"


def read(file) -> list[dict]:
    """The entries of one probe file; a ValueError naming the file when it is not one."""
    try:
        entries = json.loads(Path(file).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{file}: not a probe file ({error})") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "probe" in e for e in entries):
        raise ValueError(f"{file}: not a probe file (a JSON list of probe entries)")
    return entries


def save(results_dir, entries: list[dict]) -> Path:
    """Merge ``entries`` into this machine's probe file (same machine, backend, device and probe replaced)."""
    target = path(results_dir)
    key = lambda e: (e["machine"], e["backend"], e["device"], e["probe"])  # noqa: E731
    with records.locked(target):
        new = {key(e) for e in entries}
        kept = [e for e in (read(target) if target.exists() else []) if key(e) not in new]
        records.write_atomic(target, json.dumps(kept + entries, indent=1, sort_keys=True) + "\n")
    return target


def figure(value) -> str:
    """A row's value as shown: four significant digits, or "did not run" (NaN: a setting that failed)."""
    return "did not run" if value is None or isinstance(value, float) and math.isnan(value) else f"{value:.4g}"
