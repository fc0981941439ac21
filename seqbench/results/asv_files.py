"""asv's result files: read into flat rows, and merged point by point.

A results folder holds ``benchmarks.json`` (each benchmark's ``param_names``
and type) and one folder per machine: ``<machine>/machine.json`` beside
``<commit>-<env>.json`` files (API version 2). A results file stores a
benchmark as one row whose columns are named by ``result_columns``: ``params``
(one list of values per axis, each value a Python ``repr``), and per point of
the axes' product (``itertools.product`` order) a value in ``result``,
``stats_*`` and ``samples``; ``version``, ``started_at``, ``duration`` and
``profile`` are one per benchmark. A point that did not run is ``NaN`` or
``null``, a per-point column with nothing in it is ``null``, and trailing
empty columns are left out.

A published dashboard kept among the results (``seqbench publish`` into
``results/dashboard/``: asv's page, its ``index.json`` and ``graphs/``) is
not results: :func:`scan`, which every loader of a results folder uses, leaves
out the files of any folder holding a published page (:func:`is_dashboard`).

:func:`read` gives one flat row per (file, benchmark, point). :func:`merge_folder`
merges results folders into one (the shards of a sweep, run apart; sweeps of
other backends or grids at the same commit) point by point, over the union of
each benchmark's parameter values: no merge loses a measured point. Different
machines are different folders and need no merging, as ``asv publish`` and
``seqbench report`` expect.
"""

from __future__ import annotations

import ast
import fnmatch
import itertools
import json
import math
import os
from pathlib import Path

from seqbench.results.records import locked, write_atomic

#: columns of a benchmark row with one value per parameter point (besides every ``stats_*``)
PER_POINT = ("result", "samples")
#: benchmark types by the method's prefix, as asv names them
TYPES = (("time_", "time"), ("peakmem_", "peakmemory"), ("mem_", "memory"), ("track_", "track"))


# --- reading --------------------------------------------------------------------------------------------------

#: the folder ``seqbench publish`` writes the committed results' dashboard into, beside ``report/`` (the sample
#: report links to its page)
DASHBOARD = "dashboard"


def is_dashboard(folder: Path) -> bool:
    """Whether ``folder`` holds a page ``asv publish`` made (``index.html`` beside its ``index.json``)."""
    return (Path(folder) / "index.html").is_file() and (Path(folder) / "index.json").is_file()


def scan(root: Path, pattern: str) -> list[Path]:
    """The files under ``root`` whose name matches ``pattern`` (as ``rglob`` finds them, sorted), less those in a
    published dashboard's folder (:func:`is_dashboard`) and below it."""
    found = []
    for folder, subfolders, names in os.walk(root):
        if is_dashboard(Path(folder)):
            subfolders[:] = []
            continue
        subfolders.sort()
        found += [Path(folder) / name for name in names if fnmatch.fnmatchcase(name, pattern)]
    return sorted(found)


def read(dirs, skipped: list | None = None, unlisted_names=()) -> tuple[dict, list[dict]]:
    """The asv results under ``dirs`` (paths): ``(machines, points)``.

    ``machines``: machine name -> its ``machine.json``. ``points``: one dict per (results file, benchmark,
    parameter point) with ``source`` (the folder of ``dirs`` it was found under), ``machine``, ``commit``,
    ``date``, ``env``, ``benchmark`` (split into ``suite`` and
    ``method``), ``type``, ``params`` (name -> value) and the point's ``result`` (``NaN`` when not measured), its
    ``stats_*`` and ``samples`` where the file has them, and its benchmark's ``started_at`` (milliseconds since the
    epoch; None where the file has none). Parameters a benchmark list does not name are named
    ``unlisted_names`` when there are as many, else ``param0``, ``param1``, ... A file that cannot be read is left
    out with the reason appended to ``skipped``.
    """
    skipped = [] if skipped is None else skipped
    machines, points = {}, []
    found = {p.parent: str(d) for d in reversed(list(dirs)) for p in scan(Path(d), "machine.json")}
    for folder in sorted(found):
        try:
            info = json.loads((folder / "machine.json").read_text())
            if not isinstance(info, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            skipped.append((folder / "machine.json", f"not an asv machine file ({error}): its folder is left out"))
            continue
        machines[info.get("machine", folder.name)] = info
        points += [{**p, "source": found[folder]} for p in machine_points(folder, skipped, unlisted_names)]
    return machines, points


def machine_points(folder: Path, skipped: list, unlisted_names=()) -> list[dict]:
    """The points (:func:`read`) of every results file of one machine's folder."""
    try:
        listed = benchmark_list(folder.parent)
    except (OSError, ValueError) as error:
        skipped.append((folder.parent / "benchmarks.json", f"not asv's benchmark list ({error}): "
                                                           "parameter names guessed"))
        listed = {}
    points = []
    for path in sorted(folder.glob("*.json")):
        if path.name in ("machine.json", "benchmarks.json"):
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            skipped.append((path, f"not JSON ({error}): a truncated or foreign file"))
            continue
        if not isinstance(data, dict) or "result_columns" not in data:
            skipped.append((path, "not an asv results file of API version 2 (no result_columns)"))
            continue
        file = {"machine": data.get("params", {}).get("machine", folder.name), "commit": data.get("commit_hash"),
                "date": data.get("date"), "env": data.get("env_name")}
        for name, row in rows(data).items():
            axes = row.get("params") or []
            names = listed.get(name, {}).get("param_names") or (
                list(unlisted_names) if len(unlisted_names) == len(axes) else [f"param{i}" for i in range(len(axes))])
            suite, _, method = name.rpartition(".")
            results = [] if row.get("result") is None else point_values(row, "result")  # null: nothing ran
            more = {c: point_values(row, c) for c in row if is_per_point(c) and c != "result"}
            for i, (combo, result) in enumerate(zip(itertools.product(*axes), results)):
                points.append({
                    **file, "benchmark": name, "suite": suite or name, "method": method,
                    "type": listed.get(name, {}).get("type") or type_of(method),
                    "params": {n: _literal(v) for n, v in zip(names, combo)},
                    "result": _number(result), "started_at": row.get("started_at"),
                    **{c: values[i] for c, values in more.items()},
                })
    return points


def benchmark_list(root: Path) -> dict:
    """``benchmarks.json`` of a results folder: benchmark name -> its description (empty when there is none)."""
    path = Path(root) / "benchmarks.json"
    if not path.is_file():
        return {}
    return {name: meta for name, meta in json.loads(path.read_text()).items() if isinstance(meta, dict)}


def rows(data: dict) -> dict[str, dict]:
    """The benchmarks of a results file: name -> its row as a dict by column (left-out columns absent)."""
    return {name: dict(zip(data["result_columns"], row)) for name, row in data.get("results", {}).items()}


def is_per_point(column: str) -> bool:
    return column in PER_POINT or column.startswith("stats_")


def point_values(row: dict, column: str) -> list:
    """The values of a per-point column, one per point of the row's parameter product (``None`` where empty)."""
    count = math.prod(len(axis) for axis in row.get("params") or [])
    values = row.get(column)
    if values is None:
        return [None] * count
    return values if isinstance(values, list) else [values]  # (an unparametrized benchmark's bare value)


def type_of(method: str) -> str:
    """A benchmark's type from its method name (``time_forward`` is a ``time``)."""
    return next((kind for prefix, kind in TYPES if method.startswith(prefix)), "track")


def latest(points: list[dict]) -> dict[tuple, dict]:
    """The newest point (by its commit's date) of each ``(machine, suite, method, parameter point)``, measured
    ones first: a later sweep that did not run a point (narrowed to other backends, or it was skipped there)
    leaves the last measurement of it standing."""
    newest = {}
    for p in sorted(points, key=lambda p: (measured(p["result"]), p["date"] or 0)):
        newest[point_key(p)] = p
    return newest


def point_key(point: dict) -> tuple:
    """What makes a point the same measurement across results files: ``(machine, suite, method, parameters)``."""
    return point["machine"], point["suite"], point["method"], tuple(sorted(point["params"].items(), key=str))


def measured(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


# --- merging --------------------------------------------------------------------------------------------------

def merge_folder(dest: Path, files: dict[str, str]) -> list[str]:
    """Merge ``files`` (path relative to a results folder -> text, as a shard returns them) into ``dest``;
    returns the paths written. ``benchmarks.json`` is merged by name, ``machine.json`` replaced, result files
    merged point by point; the folder is locked for the whole merge."""
    dest = Path(dest)
    merged = {}
    with locked(dest / "benchmarks.json"):
        for name, text in sorted(files.items()):  # all merged before any is written: a refusal changes nothing
            target, incoming = dest / name, json.loads(text)
            if target.exists() and Path(name).name != "machine.json":
                present = json.loads(target.read_text())
                incoming = (merge_benchmarks(present, incoming) if Path(name).name == "benchmarks.json"
                            else merge_results(present, incoming))
            merged[name] = incoming
        for name, data in merged.items():
            write_atomic(dest / name, json.dumps(data, indent=1) + "\n")
    return list(merged)


def merge_benchmarks(present: dict, incoming: dict) -> dict:
    """``benchmarks.json``: the union of the benchmarks both describe (the incoming description wins)."""
    return {**present, **incoming}


def merge_results(present: dict, incoming: dict) -> dict:
    """One asv results file (API version 2) from two; a benchmark in both is merged by :func:`merge_row`."""
    if present.get("result_columns") != incoming.get("result_columns"):
        raise ValueError("asv result files with different result_columns cannot be merged: "
                         f"{present.get('result_columns')} and {incoming.get('result_columns')}")
    columns = incoming["result_columns"]
    merged = {**present, **incoming, "results": dict(present.get("results", {}))}
    merged["durations"] = {**present.get("durations", {}), **incoming.get("durations", {})}
    before = rows(present)
    for name, row in rows(incoming).items():
        if name in before:
            row = merge_row(before[name], row, name)
        merged["results"][name] = _stored(row, columns)
    return merged


def merge_row(old: dict, new: dict, name: str = "") -> dict:
    """One benchmark's row (a dict by column) from two, losing no measured point.

    Each parameter axis is the union of both (the present values, then the new ones), and every per-point
    column is re-indexed into the union's product: a point takes the incoming measurement where it has one,
    else the present point, else the incoming (unmeasured) one; a point in neither is null. The benchmark's
    duration is the sum of both, its start the later one; other columns are the incoming ones where set.
    """
    axes = [old.get("params") or [], new.get("params") or []]
    if len(axes[0]) != len(axes[1]):
        raise ValueError(f"benchmark {name} has {len(axes[0])} parameter axes in one file and {len(axes[1])} in "
                         "the other: its points cannot be merged")
    union = [a + [v for v in b if v not in a] for a, b in zip(*axes)]
    index = [{combo: i for i, combo in enumerate(itertools.product(*a))} for a in axes]
    incoming_results = point_values(new, "result")
    sources = []  # per point of the union: (0 present / 1 incoming, its index there), or None
    for combo in itertools.product(*union):
        i, j = index[0].get(combo), index[1].get(combo)
        sources.append((1, j) if j is not None and measured(incoming_results[j]) else
                       (0, i) if i is not None else (1, j) if j is not None else None)
    row = {}
    for column in dict.fromkeys([*old, *new]):
        if is_per_point(column):
            values = (point_values(old, column), point_values(new, column))
            points = [values[s[0]][s[1]] if s else None for s in sources]
            row[column] = None if all(v is None for v in points) else points  # asv's empty column
        elif column == "params":
            row[column] = union
        elif column == "started_at":
            row[column] = max(old.get(column) or 0, new.get(column) or 0)
        elif column == "duration":
            row[column] = (old.get(column) or 0) + (new.get(column) or 0)
        else:
            row[column] = new[column] if new.get(column) is not None else old.get(column)
    return row


def _stored(row: dict, columns: list) -> list:
    """A benchmark's row as asv stores it: values in ``columns`` order, trailing empty columns left out."""
    values = [row.get(c) for c in columns]
    while values and values[-1] is None:
        values.pop()
    return values
