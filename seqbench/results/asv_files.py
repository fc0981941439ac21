"""Merging asv result folders: the shards of one sweep, run apart, into one results folder.

asv files results per machine (``<machine>/<commit>-<env>.json``) and stores a
parametrized benchmark as one row whose columns (``result``, ``stats_*``, ...)
hold a value per point of the parameter product; a point that did not run is
``NaN`` (``null``). Two shards of one machine and commit measured different
points of the same benchmark, so their files are merged point by point: a
point measured in the incoming file replaces the one in place, every other
point is kept. Different machines are different folders and need no merging,
as ``asv publish`` and ``seqbench report`` expect.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from seqbench.results.records import locked, write_atomic

#: columns of a benchmark row that are one number per benchmark, not one per parameter point
_SCALAR = ("params", "version", "started_at", "duration")


def merge_folder(dest: Path, files: dict[str, str]) -> list[str]:
    """Merge ``files`` (path relative to a results folder -> text, as a shard returns them) into ``dest``;
    returns the paths written. ``benchmarks.json`` is merged by name, ``machine.json`` replaced, result files
    merged point by point; the folder is locked for the whole merge."""
    dest = Path(dest)
    written = []
    with locked(dest / "benchmarks.json"):
        for name, text in sorted(files.items()):
            target = dest / name
            incoming = json.loads(text)
            if target.exists() and Path(name).name != "machine.json":
                present = json.loads(target.read_text())
                incoming = (merge_benchmarks(present, incoming) if Path(name).name == "benchmarks.json"
                            else merge_results(present, incoming))
            write_atomic(target, json.dumps(incoming, indent=1) + "\n")
            written.append(name)
    return written


def merge_benchmarks(present: dict, incoming: dict) -> dict:
    """``benchmarks.json``: the union of the benchmarks both describe (the incoming description wins)."""
    return {**present, **incoming}


def merge_results(present: dict, incoming: dict) -> dict:
    """One asv results file (API version 2) from two: per benchmark and parameter point, the incoming
    measurement where it has one, else the present one."""
    if present.get("result_columns") != incoming.get("result_columns"):
        raise ValueError("asv result files with different result_columns cannot be merged: "
                         f"{present.get('result_columns')} and {incoming.get('result_columns')}")
    columns = incoming["result_columns"]
    merged = {**present, **incoming, "results": dict(present.get("results", {}))}
    merged["durations"] = {**present.get("durations", {}), **incoming.get("durations", {})}
    for name, row in incoming.get("results", {}).items():
        old = present.get("results", {}).get(name)
        new = dict(zip(columns, row))
        if old is None or dict(zip(columns, old)).get("params") != new.get("params"):
            merged["results"][name] = row  # new, or its parameter axes changed: the incoming one stands
            continue
        merged["results"][name] = _merge_row(dict(zip(columns, old)), new, columns)
    return merged


def _merge_row(old: dict, new: dict, columns: list) -> list:
    points = new.get("result") if isinstance(new.get("result"), list) else None
    if points is None:  # an unparametrized benchmark: one value, the incoming one if measured
        return [new.get(c) if _measured(new.get("result")) else old.get(c) for c in columns]
    taken = [_measured(v) for v in points]
    row = {}
    for column in columns:
        a, b = old.get(column), new.get(column)
        if column in _SCALAR:
            row[column] = (max(a or 0, b or 0) if column == "started_at" else
                           (a or 0) + (b or 0) if column == "duration" else b)
        elif isinstance(a, list) or isinstance(b, list):
            a = a if isinstance(a, list) else [None] * len(points)
            b = b if isinstance(b, list) else [None] * len(points)
            row[column] = [y if t else x for x, y, t in zip(a, b, taken)]
        else:
            row[column] = b if b is not None else a
    while columns and row.get(columns[-1]) is None and len(row) > 1:  # asv leaves trailing empty columns out
        row.pop(columns[-1])
        columns = columns[:-1]
    return [row[c] for c in columns]


def _measured(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
