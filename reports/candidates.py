"""What an answer is made of: the accuracy rule, a candidate backend (its time and how it was had, its error,
its evidence), an answer for one workload, and how a winner is decided among candidates (:mod:`.select`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from seqbench import catalog
from seqbench.precision import tolerance

from . import estimate, noise
from .benchmark_rows import PASS_FLOPS, shape_of
from .conformance_rows import conforms, in_dtype_eps

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
        err = in_dtype_eps(row)  # a TF32 check counts its error in eps of tf32: compared in eps of float32
        if not (isinstance(err, (int, float)) and math.isfinite(err)):
            return f"no finite error measured (conformance: {row.get('conformance_reason') or 'none'})"
        cap = self.max_error_eps
        return "" if err <= cap else f"worst error {err:.3g} eps of {row.get('dtype')} is over --max-error-eps {cap:g}"

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
    eps_unit: str  # the precision max_err_eps counts eps of: the dtype's, or its math mode's (tf32)
    dtype_eps: float  # max_err_eps in eps of the dtype
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


def candidate(row, rule: Rule, how: str = estimate.MEASURED, time_s: float | None = None, shape=None) -> Candidate:
    """``row`` (a tidy-table row) as a candidate; ``time_s`` an estimate at ``shape`` instead of its time."""
    get = row.get
    measured = time_s is None
    time_s = get("time_s") if measured else time_s
    throughput, gflops = get("throughput"), get("gflops")
    if not measured:
        entry = catalog.ops().get(get("op"))
        full = shape_of(entry, shape)  # the shape the suite would have benchmarked (I follows H)
        throughput = entry.tokens(full) / time_s if entry else math.nan
        gflops = entry.flops(full) * PASS_FLOPS.get(get("kind"), math.nan) / time_s / 1e9 if entry else math.nan
    return Candidate(
        backend=get("backend"), family=get("family") or get("backend"), implementation=get("implementation"),
        device=str(get("device")), math_mode=get("math_mode"), variant=get("variant"), time_s=_scalar(time_s),
        how=how, throughput=_scalar(throughput), gflops=_scalar(gflops),
        roofline_fraction=_scalar(get("roofline_fraction")) if measured else math.nan,
        peak_source=get("peak_source"), peak_memory=_scalar(get("peak_memory")) if measured else math.nan,
        max_err_eps=_scalar(get("max_err_eps")), ratio=_scalar(get("ratio")),
        eps_unit=tolerance.precision(str(get("dtype")), str(get("math_mode") or "ieee")),
        dtype_eps=_scalar(in_dtype_eps(row)), fails=rule.judge(row),
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


def blank_answer(group, info, keys, mode, rule, requested=None) -> Answer:
    return Answer(machine=info["machine"], device=mode, device_name=_first(group, "device_name"), op=info["op"],
                  dtype=info["dtype"], kind=info["kind"], requested=requested or {k: as_size(info[k]) for k in keys},
                  shape={k: as_size(info[k]) for k in keys}, how=estimate.MEASURED, rule=str(rule))


def primary_mode(group) -> str:
    """The math mode a workload is ranked in: the device's default (IEEE ``cuda``) where it was measured."""
    devices = sorted(set(group["device"].astype(str)), key=lambda d: (":" in d.replace(":0", ""), d))
    return devices[0]


def device_kind(device) -> str:
    return str(device).split(":")[0]


def _first(group, column):
    values = group[column].dropna() if column in group else []
    return values.iloc[0] if len(values) else None


def _scalar(value):
    return value.item() if hasattr(value, "item") else value


def as_size(value):
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
