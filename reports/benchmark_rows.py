"""asv points -> benchmark rows: one dict per (machine, benchmark, parameter point, kind of pass) with its metrics.

The points come from :func:`seqbench.results.asv_files.read`; their parameters
are read under the catalog's shape keys (``seq_len`` is ``T``:
:mod:`seqbench.catalog.axes`), and each row's op and catalog shape are what the
benchmark ran, so the report can apply the op's FLOP and byte models.
"""

from __future__ import annotations

import math
import re

from seqbench import catalog
from seqbench.catalog import axes
from seqbench.results import asv_files

#: FLOPs of a pass relative to the catalog's forward model. A backward pass is
#: taken as twice the forward (the usual estimate: two matmuls per forward one).
PASS_FLOPS = {"forward": 1.0, "vjp": 2.0, "backward": 2.0, "forward_backward": 3.0, "train": 3.0}
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
#: the benchmarks that measure a device's matmul rate at the start of a sweep (benchmarks/bench_peak.py) and at its
#: end (benchmarks/bench_zz_peak_end.py): the roofline's peak, and the drift between the two
PEAK_BENCHMARK = "bench_peak."
PEAK_END_BENCHMARK = "bench_zz_peak_end."
#: the precision suite (benchmarks/bench_precision.py): conformance errors per commit for asv's dashboard; the
#: report reads precision from the conformance rows themselves
PRECISION_BENCHMARK = "bench_precision."
#: asv's statistics of a time point (its ``stats_*`` columns), carried into the row of its kind without the prefix:
#: the 99% confidence interval of the median, the quartiles, the number of samples
STATS = ("ci_99_a", "ci_99_b", "q_25", "q_75", "repeat")


def unlisted_names() -> tuple:
    """The parameter names of a results folder without ``benchmarks.json``: the recurrent suites'."""
    return ("backend", "device", "dtype", *(name for _, name in axes.shape_axes(catalog.get("rnn"))))


def with_shape_keys(points: list[dict]) -> list[dict]:
    """``points`` with their parameters named by catalog shape keys where they are sizes (``seq_len`` -> ``T``)."""
    return [{**p, "params": {axes.shape_key(n): v for n, v in p["params"].items()}} for p in points]


def _metric(point, kinds) -> tuple[str, str | None]:
    """``(metric column, kind of pass or None for every kind)`` of one asv point."""
    method, kind = point["method"], point["type"]
    if kind == "time":
        return "time_s", method.removeprefix("time_") or "forward"
    if kind == "peakmemory":
        return "peak_host_memory", method.removeprefix("peakmem_") or None
    metric = method.removeprefix("track_")
    for k in sorted(kinds, key=len, reverse=True):
        if metric.endswith("_" + k):
            metric, kind_of = metric[: -len(k) - 1], k
            break
    else:  # a track without a pass in its name measures the forward pass (benchmarks/common.py)
        kind_of = "forward" if "forward" in kinds else None
    if "memory" in metric:
        return "peak_device_memory", kind_of
    return "track_" + metric, kind_of


def measurements(points: list[dict]) -> list[dict]:
    """asv points pivoted to one dict per (machine, suite, parameter point, kind of pass), latest commit first.

    A row of a kind carries its time benchmark's ``samples`` (seconds, or None where asv kept none), its
    :data:`STATS` (NaN where absent; an infinite interval: too few samples) and its ``started_at`` (milliseconds
    since the epoch, as asv stores it); a row without a time benchmark starts when its first benchmark did.
    """
    groups: dict = {}
    newest = asv_files.latest(points)
    for (machine, suite, _, params), p in newest.items():
        groups.setdefault((machine, suite, params), []).append(p)
    also = elsewhere(points, newest)
    rows = []
    for (machine, suite, params), group in groups.items():
        kinds = sorted({p["method"].removeprefix("time_") for p in group if p["type"] == "time"})
        by_kind = {k: {} for k in kinds or [""]}
        for p in group:
            metric, kind = _metric(p, kinds)
            for k in (list(by_kind) if kind is None else [kind]):
                by_kind.setdefault(k, {})[metric] = p["result"]
            if p["type"] == "time":
                by_kind[kind].update(_timing(p))
        latest = max(group, key=lambda p: p["date"] or 0)
        started = min((p["started_at"] for p in group if p.get("started_at")), default=None)
        for kind, metrics in by_kind.items():
            rows.append({"machine": machine, "benchmark": suite, "kind": kind, "commit": latest["commit"],
                         "date": latest["date"], "source": latest.get("source"),
                         "also": also.get((machine, suite, f"time_{kind}", params), []),
                         "samples": None, **dict.fromkeys(STATS, math.nan),
                         "started_at": started, **dict(params), **metrics})
    return rows


def elsewhere(points: list[dict], newest: dict) -> dict:
    """Per (machine, suite, method, parameter point) of a time: the same point measured in other results
    folders than the newest one's (``source``, ``commit``, ``date``, ``time_s``), for answers to show."""
    found: dict = {}
    for p in points:
        key = asv_files.point_key(p)
        chosen = newest.get(key)
        if p["type"] == "time" and chosen is not None and p.get("source") != chosen.get("source") \
                and asv_files.measured(p["result"]):
            found.setdefault(key, []).append({"source": p.get("source"), "commit": p["commit"], "date": p["date"],
                                              "time_s": p["result"]})
    return found


def _timing(point: dict) -> dict:
    """A time point's samples, statistics and start, as :func:`measurements` carries them."""
    samples = point.get("samples")
    return {"samples": None if samples is None else [_seconds(v) for v in samples],
            **{s: _seconds(point.get("stats_" + s)) for s in STATS},
            "started_at": point.get("started_at")}


def _seconds(value) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def peak_rates(rows: list[dict]) -> dict[tuple, dict]:
    """The matmul rates measured per (machine, device, dtype): ``{"start": row, "end": row}`` of the
    :data:`PEAK_BENCHMARK` and :data:`PEAK_END_BENCHMARK` rows (``track_gflops``, ``started_at``), either absent."""
    rates: dict = {}
    for r in rows:
        for which, prefix in (("start", PEAK_BENCHMARK), ("end", PEAK_END_BENCHMARK)):
            if r["benchmark"].startswith(prefix) and r.get("track_gflops", math.nan) > 0:
                rates.setdefault((r["machine"], str(r.get("device")), r.get("dtype")), {})[which] = r
    return rates


def ran(rows: list[dict]) -> list[dict]:
    """Rows of the (machine, benchmark, backend, device, dtype, kind) that measured something at all.

    A suite's grid is the same on every machine, so a backend or device that is
    not there (no GPU, framework not installed) leaves only NaN: that is not
    a workload, while a NaN beside real measurements is a skipped shape.
    """
    def key(row):
        return tuple(str(row.get(k)) for k in ("machine", "benchmark", "op", "backend", "device", "dtype", "kind"))

    measured = {key(r) for r in rows if any(_is_metric(k) and v == v for k, v in r.items())}
    return [r for r in rows if key(r) in measured]


def _is_metric(column: str) -> bool:
    return column in ("time_s", "peak_host_memory", "peak_device_memory") or column.startswith("track_")


def op_of(row: dict) -> str:
    """The catalog op a benchmark measures: its ``op`` parameter, else its class name (``GRUResetAfter``)."""
    if isinstance(row.get("op"), str):
        return row["op"]
    cls = row["benchmark"].split(".")[-1]
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls).lower()
    name = re.sub(r"^(time|bench|benchmark)_|_(time|bench|benchmark|suite)$", "", name)
    squashed = {op.replace("_", ""): op for op in catalog.ops()}
    return squashed.get(name.replace("_", ""), name)



def shape_of(entry, row: dict) -> dict | None:
    """The catalog shape a benchmark row ran (None for an op not in the catalog)."""
    if entry is None:
        return None
    return axes.bench_shape(entry, {k: row[k] for k in axes.base_shape(entry) if row.get(k) is not None})


def throughput_unit(op: str) -> str:
    """The unit of an op's throughput, as the asv suite names it: tokens/s (T·B time steps) for the recurrent
    ops, words/s for the embedding ops."""
    entry = catalog.ops().get(op)
    return "words/s" if entry is not None and entry.family == "embedding" else "tokens/s"
