"""Backend selection: per workload, the fastest backend among those that qualify, and how sure that is.

A workload is (machine, device, op, dtype, kind of pass, shape). At a
measured shape the answer is the measurement; at another shape each
backend's time is interpolated between its measured neighbours
(:mod:`.estimate`), and outside the measured range nothing is named unless
``extrapolate`` is asked. Then:

* **qualifies** — by default a backend qualifies if it conforms (the strict
  verdict of the conformance suite); with ``Rule(max_error_eps=N)`` any
  backend whose worst error on that op, device and dtype is at most ``N`` eps
  of the dtype qualifies. A backend that does not is *dropped* but kept in
  the answer with its time, its error and the rule it failed;
* **families** — the paths of one kernel family (``Traits.family``) are one
  entry, named by the path that was fastest; the runner-up is the fastest
  other family;
* **math modes** — the device asked for (``cuda`` is IEEE float32) ranks; the
  device's other modes (``cuda:tf32``) are listed beside it with their times
  and errors;
* **noise** — the winner *wins* only if it is significantly faster than the
  runner-up by asv's test on the kept samples (:mod:`.noise`); otherwise the
  answer is a *tie* that names both, or *untested* where single samples
  cannot be tested; estimated times are not tested;
* **plausibility** — rows :mod:`.plausibility` flags are kept out, with the reason.

Every candidate names its evidence: results folder, machine, commit and date.
"""

from __future__ import annotations


import pandas as pd

from seqbench import catalog
from seqbench.backends import registry
from seqbench.catalog.axes import SHAPE_KEYS

from . import estimate, plausibility
from .answers import as_row
from .candidates import Answer, Rule, as_size, blank_answer, candidate, decide, device_kind, primary_mode

#: What identifies a workload in the tidy table (the shape keys follow); ``device`` is the device kind, its
#: math modes ranked side by side.
WORKLOAD = ["machine", "device_kind", "op", "dtype", "kind"]
def shape_keys(table: pd.DataFrame) -> list[str]:
    """The shape keys measured in ``table`` (columns with at least one value)."""
    return [k for k in SHAPE_KEYS if k in table and table[k].notna().any()]


def prepare(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows an answer may use (with ``device_kind``), and the rows kept out as implausible (``reason``)."""
    usable, flagged = plausibility.usable(table)
    return usable.assign(device_kind=usable["device"].map(device_kind)), flagged


def fastest(rows: pd.DataFrame, rule: Rule = Rule()) -> Answer:
    """The answer at one measured workload (``rows``: its backends' rows, one shape)."""
    keys = shape_keys(rows)
    info = {**rows.iloc[0][["machine", "op", "dtype", "kind"]].to_dict(), **rows.iloc[0][keys].to_dict()}
    mode = primary_mode(rows)
    return decide(blank_answer(rows, info, keys, mode, rule), [candidate(r, rule) for _, r in rows.iterrows()], mode)


def recommendations(table: pd.DataFrame, rule: Rule = Rule()) -> pd.DataFrame:
    """One row per measured workload (:func:`.answers.as_row`): winner, verdict, runner-up, speed-up, accuracy, what
    was dropped (with its speed and error), the device's other math modes."""
    if table.empty:
        return pd.DataFrame()
    rows, flagged = prepare(table)
    keys = shape_keys(rows)
    out = []
    for key, group in rows.groupby(WORKLOAD + keys, dropna=False, sort=True):
        info = dict(zip(WORKLOAD + keys, key))
        answer = fastest(group, rule)
        out.append({**{k: v for k, v in info.items() if k != "device_kind"}, **as_row(answer, group["variant"].iloc[0])})
    return pd.DataFrame(out)


def select(table: pd.DataFrame, op: str, device: str, dtype: str | None = None, kind: str = "forward",
           machine: str | None = None, rule: Rule = Rule(), extrapolate: bool = False, **shape) -> list[Answer]:
    """The answer for one workload on every machine that has ``device``, measured answers first; raises
    ValueError with what there is."""
    if table.empty:
        raise ValueError("no benchmark results found (run `seqbench bench` or `seqbench run` first)")
    if op not in set(catalog.ops()) | set(table["op"].dropna()):
        catalog.get(op)  # the catalog's error lists the op names
    for k, v in shape.items():
        if v is not None and not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"shape size {k} must be a positive number, got {v!r}")
    unknown = sorted(set(shape) - set(SHAPE_KEYS))
    if unknown:
        raise ValueError(f"unknown shape keys {unknown}; use {list(SHAPE_KEYS)}")
    usable, flagged = prepare(table)
    rows = usable[usable["op"] == op]
    if rows.empty:
        raise ValueError(f"no benchmark results for op {op!r}; measured ops: {sorted(set(table['op'].dropna()))}")
    if dtype is None:  # float32 when measured, else the one dtype there is
        dtypes = sorted(set(rows["dtype"].dropna()))
        dtype = "float32" if "float32" in dtypes or len(dtypes) != 1 else dtypes[0]
    for column, value in (("device_kind", device_kind(device)), ("dtype", dtype), ("kind", kind), ("machine", machine)):
        if value is not None:
            if not (rows[column] == value).any():
                there = sorted(set(rows[column].astype(str)))
                name = "device" if column == "device_kind" else column
                raise ValueError(f"no {op} results with {name} {value!r}; there are: {there}")
            rows = rows[rows[column] == value]
    known = set(table.loc[table["op"] == op, "backend"].dropna()) | set(registry.installed())
    answers = []
    for mach, group in rows.groupby("machine", sort=True):
        mode = device if ":" in device.replace(":0", "") and (group["device"] == device).any() else primary_mode(group)
        answer = at_shape(group, mode, rule, extrapolate, {k: v for k, v in shape.items() if v is not None})
        answer.unmeasured.update(unmeasured(known, answer, group))
        answer.flagged = {r["backend"]: r["reason"] for _, r in _matching(flagged, answer).iterrows()}
        answers.append(answer)
    order = [estimate.MEASURED, estimate.INTERPOLATED, estimate.EXTRAPOLATED, ""]
    return sorted(answers, key=lambda a: (order.index(a.how), a.machine))


def at_shape(group: pd.DataFrame, mode: str, rule: Rule, extrapolate: bool, requested: dict) -> Answer:
    """One machine's answer at the requested shape: measured, interpolated, or (``extrapolate``) extrapolated."""
    keys = shape_keys(group)
    target = {k: requested[k] for k in keys if k in requested}
    notes = [f"{', '.join(sorted(set(requested) - set(keys)))} not a benchmark parameter here; ignored"] \
        if set(requested) - set(keys) else []
    unset = [k for k in keys if k not in target]
    for k in unset:
        target[k] = as_size(group[k].max())
    if unset and len(group[unset].drop_duplicates()) > 1:
        notes.append(f"{', '.join(unset)} not given: took the largest measured "
                     + ", ".join(f"{k}={target[k]}" for k in unset))
    info = {"machine": group["machine"].iloc[0], "op": group["op"].iloc[0], "dtype": group["dtype"].iloc[0],
            "kind": group["kind"].iloc[0], **target}
    answer = blank_answer(group, info, keys, mode, rule, requested={k: v for k, v in requested.items()})
    at, candidates = tuple(target[k] for k in keys), []
    for (backend, dev), rows in group.groupby(["backend", "device"], sort=True):
        times = {tuple(as_size(r[k]) for k in keys): r["time_s"] for _, r in rows.iterrows() if r["time_s"] > 0}
        here = rows.loc[(rows[keys] == pd.Series(target)).all(axis=1)]
        if at in times:
            candidates.append(candidate(here.iloc[0], rule))
            continue
        guess = estimate.interpolate(times, at, extrapolate=extrapolate)
        if guess is not None:
            candidates.append(candidate(rows.iloc[0], rule, guess.how, guess.time_s, target))
        elif dev == mode:
            answer.unmeasured[backend] = _why_not(here, times, keys, at, extrapolate)
    decide(answer, candidates, mode)
    hows = {c.how for c in candidates if c.device == mode}
    answer.how = estimate.EXTRAPOLATED if estimate.EXTRAPOLATED in hows else estimate.INTERPOLATED \
        if estimate.INTERPOLATED in hows else estimate.MEASURED if hows else ""
    if answer.how in (estimate.INTERPOLATED, estimate.EXTRAPOLATED):
        notes.append(_estimated_note(group, keys, target, answer.how))
    elif not answer.how:
        notes.append(_outside_note(group, keys, target))
    answer.notes = notes
    return answer


def _why_not(here, times, keys, at, extrapolate) -> str:
    if len(here) and not here["time_s"].iloc[0] > 0:
        return "its benchmark at this shape did not time it (skipped: unsupported here, over a cap, or it failed)"
    if not times:
        return "no time at any shape here"
    outside = _outside(times, keys, at)
    if outside and not extrapolate:
        return f"outside its measured range ({outside}); --extrapolate estimates it"
    return "not measured here and its measured neighbours do not surround this shape on every axis"


def _outside(times, keys, at) -> str:
    said = []
    for i, (k, v) in enumerate(zip(keys, at)):
        low, high = min(s[i] for s in times), max(s[i] for s in times)
        if v > high:
            said.append(f"{k}={v} is {v / high:.3g}x the largest measured {k}={high}")
        elif v < low:
            said.append(f"{k}={v} is {low / v:.3g}x below the smallest measured {k}={low}")
    return "; ".join(said)


def _estimated_note(group, keys, target, how) -> str:
    shapes = group[keys].drop_duplicates()
    around = {k: sorted({as_size(v) for v in shapes[k]}) for k in keys}
    span = ", ".join(f"{k} in {around[k]}" for k in keys if target[k] not in around[k])
    mark = "EXTRAPOLATED beyond" if how == estimate.EXTRAPOLATED else "interpolated (log-log) between"
    return (f"not measured at {', '.join(f'{k}={v}' for k, v in target.items())}: times {mark} the measured "
            f"{span}; the winner is an estimate")


def _outside_note(group, keys, target) -> str:
    times = {tuple(as_size(r[k]) for k in keys): 1 for _, r in group.iterrows()}
    outside = _outside(times, keys, tuple(target[k] for k in keys))
    return (f"outside the measured range ({outside}): no winner named; --extrapolate estimates one, marked"
            if outside else "no backend measured near this shape on every axis: no winner named")


def unmeasured(known: set, answer: Answer, group: pd.DataFrame) -> dict:
    """Backends (in any results of this op, or installed here) with no time on this machine and device, and why."""
    there = set(group["backend"])
    reasons = {}
    for backend in sorted(known - there):
        cls = registry.backend_class(backend)
        runs_on = {device_kind(d) for d in getattr(cls, "dtypes_by_device", {})}
        if runs_on and device_kind(answer.device) not in runs_on:
            where = ", ".join(sorted(runs_on))
            reasons[backend] = f"it does not run on {device_kind(answer.device)} (it runs on {where})"
            continue
        grids = registry.traits(backend).left_out_of_grids
        left_out = "; ".join(f"the {grid} grid: {why}" for grid, why in sorted(grids.items()))
        reasons[backend] = (f"not benchmarked on {answer.device} on {answer.machine} in these results"
                            + (f" (left out of {left_out})" if left_out else ""))
    return reasons


def _matching(flagged: pd.DataFrame, answer: Answer) -> pd.DataFrame:
    if flagged.empty:
        return flagged
    rows = flagged[(flagged["machine"] == answer.machine) & (flagged["op"] == answer.op)
                   & (flagged["dtype"] == answer.dtype) & (flagged["kind"] == answer.kind)
                   & (flagged["device"].map(device_kind) == device_kind(answer.device))]
    for k, v in answer.shape.items():
        rows = rows[rows[k] == v] if k in rows else rows
    return rows
