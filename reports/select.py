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

import math
from dataclasses import asdict, dataclass, field

import pandas as pd

from seqbench import catalog
from seqbench.backends import registry
from seqbench.catalog.axes import SHAPE_KEYS

from . import estimate, noise
from .answers import as_row
from .conformance_rows import conforms
from .benchmark_rows import PASS_FLOPS

#: What identifies a workload in the tidy table (the shape keys follow); ``device`` is the device kind, its
#: math modes ranked side by side.
WORKLOAD = ["machine", "device_kind", "op", "dtype", "kind"]
#: asv's statistics of a time, kept with a candidate to test it against another
NOISE = ("samples", "ci_99_a", "ci_99_b", "q_25", "q_75", "repeat")


@dataclass(frozen=True)
class Rule:
    """What accuracy qualifies a backend: the strict conformance verdict, or a worst error of at most
    ``max_error_eps`` eps of the dtype."""

    max_error_eps: float | None = None

    def judge(self, row) -> str:
        """Why ``row``'s backend does not qualify ("" when it does)."""
        if self.max_error_eps is None:
            passed = conforms(row)
            if passed:
                return ""
            return row.get("conformance_reason") or ("fails conformance" if passed is False
                                                     else "no conformance results")
        err = row.get("max_err_eps")
        if not (isinstance(err, (int, float)) and math.isfinite(err)):
            return f"no finite error measured (conformance: {row.get('conformance_reason') or 'none'})"
        return "" if err <= self.max_error_eps else f"worst error {err:.3g} eps is over --max-error-eps {self.max_error_eps:g}"

    def __str__(self) -> str:
        return ("conforms (strict verdict)" if self.max_error_eps is None
                else f"worst error at most {self.max_error_eps:g} eps")


@dataclass
class Candidate:
    backend: str
    family: str
    implementation: str
    device: str  # with its math mode: cuda, cuda:tf32
    math_mode: str | None
    variant: str | None
    time_s: float
    how: str  # measured, interpolated or extrapolated
    throughput: float
    gflops: float
    roofline_fraction: float
    peak_source: str | None
    peak_memory: float
    max_err_eps: float
    ratio: float  # error ÷ a faithful same-precision implementation's (seqbench.precision.tolerance)
    fails: str = ""  # why it does not qualify under the rule ("" = it qualifies)
    evidence: dict = field(default_factory=dict)  # source, machine, commit, date, samples
    noise: dict = field(default_factory=dict)  # asv's statistics of the time (NOISE)
    paths: dict = field(default_factory=dict)  # other paths of its family -> their time ÷ this one's
    also: list = field(default_factory=list)  # the same point measured in other results folders


@dataclass
class Answer:
    machine: str
    device: str
    device_name: str | None
    op: str
    dtype: str
    kind: str
    requested: dict
    shape: dict  # the shape answered: the requested one, completed with the largest measured size of any unset key
    how: str  # measured, interpolated, extrapolated, or "" when nothing could be said
    rule: str
    notes: list = field(default_factory=list)
    winner: Candidate | None = None
    runner_up: Candidate | None = None
    speedup: float = math.nan  # runner-up time ÷ winner time
    verdict: str = ""  # wins, tie, untested (single samples), estimated
    dropped: list = field(default_factory=list)  # Candidates that do not qualify, fastest first
    other_modes: list = field(default_factory=list)  # the fastest of each family in the device's other math modes
    unmeasured: dict = field(default_factory=dict)  # backend -> why it has no time here
    flagged: dict = field(default_factory=dict)  # backend -> why its row was kept out (implausible)

    @property
    def note(self) -> str:
        return "; ".join(self.notes)

    def to_dict(self) -> dict:
        return _clean(asdict(self))


def shape_keys(table: pd.DataFrame) -> list[str]:
    """The shape keys measured in ``table`` (columns with at least one value)."""
    return [k for k in SHAPE_KEYS if k in table and table[k].notna().any()]


def candidate(row, rule: Rule, how: str = estimate.MEASURED, time_s: float | None = None, shape=None) -> Candidate:
    """``row`` (a tidy-table row) as a candidate; ``time_s`` an estimate at ``shape`` instead of its time."""
    get = row.get
    measured = time_s is None
    time_s = get("time_s") if measured else time_s
    throughput, gflops = get("throughput"), get("gflops")
    if not measured:
        entry = catalog.ops().get(get("op"))
        full = {**{"I": shape.get("H"), "L": 2}, **shape}
        throughput = entry.tokens(full) / time_s if entry else math.nan
        gflops = entry.flops(full) * PASS_FLOPS.get(get("kind"), math.nan) / time_s / 1e9 if entry else math.nan
    return Candidate(
        backend=get("backend"), family=get("family") or get("backend"), implementation=get("implementation"),
        device=str(get("device")), math_mode=get("math_mode"), variant=get("variant"), time_s=_scalar(time_s),
        how=how, throughput=_scalar(throughput), gflops=_scalar(gflops),
        roofline_fraction=_scalar(get("roofline_fraction")) if measured else math.nan,
        peak_source=get("peak_source"), peak_memory=_scalar(get("peak_memory")) if measured else math.nan,
        max_err_eps=_scalar(get("max_err_eps")), ratio=_scalar(get("ratio")), fails=rule.judge(row),
        evidence={k: _scalar(get(k)) for k in ("source", "machine", "commit", "date", "started_at")},
        noise={k: _scalar(get(k)) for k in NOISE} if measured else {},
        also=list(get("also") or []) if measured else [])


def decide(answer: Answer, candidates: list[Candidate], mode: str) -> Answer:
    """Fill ``answer``'s winner, runner-up, verdict, dropped and other modes from ``candidates`` (one per
    backend and device mode), ``mode`` being the device asked for."""
    timed = sorted((c for c in candidates if c.time_s > 0), key=lambda c: c.time_s)
    ranked = [c for c in timed if c.device == mode and not c.fails]
    answer.dropped = [c for c in timed if c.device == mode and c.fails]
    best: dict = {}
    for c in ranked:
        if c.family in best:
            best[c.family].paths[c.backend] = c.time_s / best[c.family].time_s
        else:
            best[c.family] = c
    ranked = list(best.values())
    seen = set()
    answer.other_modes = [c for c in timed if c.device != mode and not (c.device, c.family) in seen
                          and not seen.add((c.device, c.family))]
    if not ranked:
        return answer
    answer.winner = ranked[0]
    if len(ranked) > 1:
        answer.runner_up = ranked[1]
        answer.speedup = ranked[1].time_s / ranked[0].time_s
        answer.verdict = verdict(ranked[0], ranked[1])
    else:
        answer.verdict = "only"
    return answer


def verdict(winner: Candidate, runner: Candidate) -> str:
    """``wins`` (significantly faster), ``tie`` (within noise), ``untested`` (no statistics to test: one
    sample each), or ``estimated`` (a time was not measured)."""
    if winner.how != estimate.MEASURED or runner.how != estimate.MEASURED:
        return "estimated"
    different = noise.significant(winner.noise, runner.noise)
    return "untested" if different is None else "wins" if different else "tie"


def prepare(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows an answer may use (with ``device_kind``), and the rows kept out as implausible (``reason``)."""
    flagged = pd.DataFrame(columns=[*table.columns, "reason"])
    return table.assign(device_kind=table["device"].map(_kind)), flagged


def fastest(rows: pd.DataFrame, rule: Rule = Rule()) -> Answer:
    """The answer at one measured workload (``rows``: its backends' rows, one shape)."""
    keys = shape_keys(rows)
    info = {**rows.iloc[0][["machine", "op", "dtype", "kind"]].to_dict(), **rows.iloc[0][keys].to_dict()}
    mode = _primary(rows)
    return decide(_answer(rows, info, keys, mode, rule), [candidate(r, rule) for _, r in rows.iterrows()], mode)


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
    for column, value in (("device_kind", _kind(device)), ("dtype", dtype), ("kind", kind), ("machine", machine)):
        if value is not None:
            if not (rows[column] == value).any():
                there = sorted(set(rows[column].astype(str)))
                name = "device" if column == "device_kind" else column
                raise ValueError(f"no {op} results with {name} {value!r}; there are: {there}")
            rows = rows[rows[column] == value]
    known = set(table.loc[table["op"] == op, "backend"].dropna()) | set(registry.installed())
    answers = []
    for mach, group in rows.groupby("machine", sort=True):
        mode = device if ":" in device.replace(":0", "") and (group["device"] == device).any() else _primary(group)
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
        target[k] = _size(group[k].max())
    if unset and len(group[unset].drop_duplicates()) > 1:
        notes.append(f"{', '.join(unset)} not given: took the largest measured "
                     + ", ".join(f"{k}={target[k]}" for k in unset))
    info = {"machine": group["machine"].iloc[0], "op": group["op"].iloc[0], "dtype": group["dtype"].iloc[0],
            "kind": group["kind"].iloc[0], **target}
    answer = _answer(group, info, keys, mode, rule, requested={k: v for k, v in requested.items()})
    at, candidates = tuple(target[k] for k in keys), []
    for (backend, dev), rows in group.groupby(["backend", "device"], sort=True):
        times = {tuple(_size(r[k]) for k in keys): r["time_s"] for _, r in rows.iterrows() if r["time_s"] > 0}
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
    around = {k: sorted({_size(v) for v in shapes[k]}) for k in keys}
    span = ", ".join(f"{k} in {around[k]}" for k in keys if target[k] not in around[k])
    mark = "EXTRAPOLATED beyond" if how == estimate.EXTRAPOLATED else "interpolated (log-log) between"
    return (f"not measured at {', '.join(f'{k}={v}' for k, v in target.items())}: times {mark} the measured "
            f"{span}; the winner is an estimate")


def _outside_note(group, keys, target) -> str:
    times = {tuple(_size(r[k]) for k in keys): 1 for _, r in group.iterrows()}
    outside = _outside(times, keys, tuple(target[k] for k in keys))
    return (f"outside the measured range ({outside}): no winner named; --extrapolate estimates one, marked"
            if outside else "no backend measured near this shape on every axis: no winner named")


def unmeasured(known: set, answer: Answer, group: pd.DataFrame) -> dict:
    """Backends (in any results of this op, or installed here) with no time on this machine and device, and why."""
    there = set(group["backend"])
    reasons = {}
    for backend in sorted(known - there):
        left_out = "; ".join(sorted(set(registry.traits(backend).left_out_of_grids.values())))
        reasons[backend] = (f"not benchmarked on {answer.device} on {answer.machine} in these results"
                            + (f" (grids leave it out: {left_out})" if left_out else ""))
    return reasons


def _matching(flagged: pd.DataFrame, answer: Answer) -> pd.DataFrame:
    if flagged.empty:
        return flagged
    rows = flagged[(flagged["machine"] == answer.machine) & (flagged["op"] == answer.op)
                   & (flagged["dtype"] == answer.dtype) & (flagged["kind"] == answer.kind)
                   & (flagged["device"].map(_kind) == _kind(answer.device))]
    for k, v in answer.shape.items():
        rows = rows[rows[k] == v] if k in rows else rows
    return rows


def _answer(group, info, keys, mode, rule, requested=None) -> Answer:
    return Answer(machine=info["machine"], device=mode, device_name=_first(group, "device_name"), op=info["op"],
                  dtype=info["dtype"], kind=info["kind"], requested=requested or {k: _size(info[k]) for k in keys},
                  shape={k: _size(info[k]) for k in keys}, how=estimate.MEASURED, rule=str(rule))


def _primary(group) -> str:
    """The math mode a workload is ranked in: the device's default (IEEE ``cuda``) where it was measured."""
    devices = sorted(set(group["device"].astype(str)), key=lambda d: (":" in d.replace(":0", ""), d))
    return devices[0]


def _kind(device) -> str:
    return str(device).split(":")[0]


def _first(group, column):
    values = group[column].dropna() if column in group else []
    return values.iloc[0] if len(values) else None


def _scalar(value):
    return value.item() if hasattr(value, "item") else value


def _size(value):
    """A shape size as an int (pandas stores sizes as floats in columns that have gaps)."""
    value = _scalar(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _clean(value):
    """JSON-ready: NaN -> None, integral float sizes -> int."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
