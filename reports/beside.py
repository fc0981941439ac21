"""What stands beside a winner in :func:`.select.recommendations`, as short text for the report's tables and the
main job's summary: the verdict, the family and path taken, the dropped backends and the device's other math modes
(their speed against the winner, their worst error, the rule they failed), one workload or a range of them."""

from __future__ import annotations

import math

import pandas as pd

from seqbench.precision import tolerance

#: a workload of a recommendations row, as the detail rows of :func:`details` carry it
WORKLOAD = ("machine", "device", "op", "dtype", "kind")
#: what a detail of :func:`.answers.detail` holds
DETAIL = ("backend", "implementation", "device", "speed_vs_winner", "max_err_eps", "eps_unit", "ratio", "how",
          "fails")


def verdict(row) -> str:
    """A recommendations row's verdict, said: ``wins``, ``tie: a, b (×1.02)`` (both named), ``untested (one
    sample)``, ``only qualifying family``, ``estimated``; "—" where nothing qualifies."""
    said = {"wins": "wins", "untested": "untested (one sample)", "only": "only qualifying family",
            "estimated": "estimated"}
    if row["verdict"] == "tie":
        return f"tie: {row['winner']}, {row['runner_up']} (×{row['speedup']:.2f})"
    return said.get(row["verdict"], row["verdict"] or "—")


def verdicts(recs: pd.DataFrame) -> str:
    """The verdicts of some recommendations rows, counted, most first: ``untested 11 (one sample each), wins 3,
    tie 2 (jax/torch)``; "nothing qualifies" counted as ``none``."""
    said = []
    named = recs["verdict"].fillna("").replace("", "none")
    for v, count in named.value_counts().items():
        part = recs[named == v]
        extra = {"untested": " (one sample each)", "only": " (one family qualifies)"}.get(v, "")
        if v == "tie":
            pairs = {"/".join(sorted((w, r))) for w, r in zip(part["winner"], part["runner_up"])}
            extra = f" ({', '.join(sorted(pairs))})"
        said.append(f"{v} {count}{extra}")
    return ", ".join(said)


def wins(recs: pd.DataFrame, ops: bool = False) -> str:
    """Wins per kernel family, most first, with the paths taken, the winners' worst error and (``ops``) the ops:
    ``cupy 16/16 (paths cupy-graph 9, cupy 7; 21.6 eps = 2× faithful)``."""
    said = []
    families = recs["family"].fillna("none qualifies")
    for family, count in families.value_counts().items():
        part = recs[families == family]
        paths = part["winner"].dropna().value_counts()
        how = [", ".join(sorted(set(part["op"])))] if ops else []
        if len(paths) > 1 or (len(paths) and paths.index[0] != family):
            how.append(f"paths {', '.join(f'{b} {c}' for b, c in paths.items())}")
        if part["max_err_eps"].notna().any():
            how.append(error(part["max_err_eps"].max(), part["ratio"].max()))
        said.append(f"{family} {count}/{len(recs)}" + (f" ({'; '.join(how)})" if how else ""))
    return ", ".join(said)


def path(family, backend, paths=None) -> str:
    """A kernel family and the path of it taken: ``cupy (path cupy-graph)``; the backend alone when it is its own
    family with no other path; "—" for none."""
    if not isinstance(backend, str):
        return "—"
    return f"{family} (path {backend})" if family != backend or paths else backend


def speed(s: float) -> str:
    """A speed against the winner's (the winner's time ÷ this one's): ``×1.3 faster``, ``×1.9 slower``."""
    if not s == s:
        return "no winner to compare"
    return f"×{s:.3g} faster" if s >= 1 else f"×{1 / s:.3g} slower"


def speed_range(values) -> str:
    """Speeds against the winner over several workloads: ``×1.2–×1.4 faster``, ``×1.9–×2.6 slower``, or
    ``×1.05 slower – ×1.04 faster``; one figure where they agree to three digits."""
    values = [v for v in values if v == v]
    if not values:
        return "no winner to compare"
    low, high = min(values), max(values)
    if f"{low:.3g}" == f"{high:.3g}":
        return speed(low)
    if low >= 1:
        return f"×{low:.3g}–×{high:.3g} faster"
    if high <= 1:
        return f"×{1 / high:.3g}–×{1 / low:.3g} slower"
    return f"{speed(low)} – {speed(high)}"


def error(eps, ratio=math.nan, unit: str | None = None) -> str:
    """A worst error: ``40 eps = 40× faithful`` (the multiple of a faithful same-precision implementation's error
    where known), ``2.6 eps of tf32`` where the unit is a math mode's precision rather than the dtype's;
    ``no error measured``."""
    if eps is None or not eps == eps:
        return "no error measured"
    of = f" of {unit}" if isinstance(unit, str) and tolerance.storage(unit) != unit else ""
    return f"{eps:.3g} eps{of}" + (f" = {ratio:.2g}× faithful" if ratio == ratio and ratio is not None and ratio else "")


def short_fail(fails: str) -> str:
    """The rule a candidate failed, in a few words ("qualifies" when it did not fail)."""
    if not fails:
        return "qualifies"
    if fails.startswith("fails conformance"):
        return "fails conformance"
    if "no conformance results" in fails:
        return "not checked"
    if fails.startswith("no finite error"):
        return "no finite error"
    if "--max-error-eps" in fails:
        return f"over the {fails.rsplit(' ', 1)[-1]}-eps cap"
    return fails.split(":")[0]


def one(d: dict, with_device: bool = False) -> str:
    """One detail on one workload: ``torch-native (cuda:tf32): ×1.9 faster, 310 eps; qualifies``."""
    name = f"{d['backend']} ({d['device']})" if with_device else d["backend"]
    estimated = "" if d.get("how", "measured") == "measured" else f" ({d['how']})"
    said = error(d["max_err_eps"], unit=d.get("eps_unit"))
    return f"{name}: {speed(d['speed_vs_winner'])}{estimated}, {said}; {short_fail(d['fails'])}"


def details(recs: pd.DataFrame, column: str) -> pd.DataFrame:
    """One row per entry of ``column`` (``dropped_detail`` or ``other_detail``) of every recommendations row: the
    row's index (``row``), its workload's machine, op, dtype and pass, and the detail's fields (``device`` is the
    detail's own, with its math mode)."""
    rows = [{"row": i, **{k: r[k] for k in WORKLOAD if k != "device"}, **d}
            for i, r in recs.iterrows() for d in (r[column] if isinstance(r.get(column), list) else [])]
    return pd.DataFrame(rows, columns=["row", *(k for k in WORKLOAD if k != "device"), *DETAIL])


def summed(group: pd.DataFrame, with_device: bool = False, of: int | None = None) -> str:
    """One backend's details over several workloads: ``torch-native (×1.2–×1.4 faster, 40 eps; fails
    conformance)``; ``at n/of`` when it stood beside the winner at only ``n`` of ``of`` workloads."""
    first = group.iloc[0]
    name = f"{first['backend']} ({first['device']})" if with_device else first["backend"]
    fails = "; ".join(dict.fromkeys(short_fail(f) for f in group["fails"]))
    where = f" at {len(group)}/{of}" if of and len(group) != of else ""
    said = error(group["max_err_eps"].max(), group["ratio"].max(), first["eps_unit"])
    return f"{name}: {speed_range(group['speed_vs_winner'])}, {said}; {fails}{where}"
