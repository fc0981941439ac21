"""An answer of :mod:`.select` as text a person reads: the winner and how sure, its accuracy and evidence, the
runner-up, what was dropped with what it would have given, the device's other math modes, what is missing."""

from __future__ import annotations

import datetime
import math


from . import peaks
from .benchmark_rows import throughput_unit

#: what a verdict says of the winner and the runner-up
VERDICTS = {
    "wins": "significantly faster (asv's test on the kept samples)",
    "tie": "a tie: the difference is within the noise of the samples, either is as good",
    "untested": "not tested: one sample each, so the difference may be noise",
    "estimated": "estimated times: the difference is not tested",
}


def describe(a) -> str:
    """A few lines a person reads: the answer, the runner-up, the notes, what was dropped and missing."""
    shape = " ".join(f"{k}={v}" for k, v in a.shape.items())
    where = f"{a.device} ({a.device_name})" if a.device_name else a.device
    lines = [f"{a.op} {a.kind}, {a.dtype}, {shape} on {where}, machine {a.machine}: "
             f"{a.how or 'no answer'}; qualifies: {a.rule}"]
    lines += [f"  note: {n}" for n in a.notes]
    unit = throughput_unit(a.op)
    if a.winner and a.runner_up and a.verdict == "tie":
        lines.append(f"  tie:       {a.winner.backend} and {a.runner_up.backend} (×{a.speedup:.2f}, within noise)")
    if a.winner:
        lines.append(f"  fastest:   {candidate(a.winner, unit)}")
        lines += [f"             {line}" for line in evidence(a.winner)]
        if a.winner.paths:
            paths = ", ".join(f"{b} ×{r:.2f} slower" for b, r in sorted(a.winner.paths.items(), key=lambda kv: kv[1]))
            lines.append(f"             path taken in the {a.winner.family} family: {a.winner.backend} "
                         f"(other paths: {paths})")
    elif a.how:
        lines.append("  no backend that qualifies has a time here")
    if a.runner_up:
        lines.append(f"  runner-up: {candidate(a.runner_up, unit)}")
        lines.append(f"  {a.winner.backend} is ×{a.speedup:.2f} faster than {a.runner_up.backend}: "
                     f"{VERDICTS.get(a.verdict, a.verdict)}")
    for c in a.other_modes:
        lines.append(f"  other math mode {c.device}: {c.backend}: {other_mode(c, a.winner)}")
    for c in a.dropped:
        lines.append(f"  dropped {c.backend} ({c.implementation}): {dropped_reason(c, a.winner)}")
    for backend, why in sorted(a.flagged.items()):
        lines.append(f"  kept out {backend}: implausible measurement: {why}")
    by_reason: dict = {}
    for backend, why in sorted(a.unmeasured.items()):
        by_reason.setdefault(why, []).append(backend)
    for why, backends in by_reason.items():
        lines.append(f"  no time for {', '.join(backends)}: {why}")
    return "\n".join(lines)


def candidate(c, unit: str = "tokens/s") -> str:
    """One candidate on one line: time (how it was had), throughput, roofline, accuracy."""
    def num(v, pattern):
        return "?" if v is None or v != v else pattern.format(v)

    spread = ""
    if c.noise.get("repeat") and c.noise.get("q_25") == c.noise.get("q_25") and c.noise.get("q_25") is not None:
        low, high, n = c.noise["q_25"] * 1e3, c.noise["q_75"] * 1e3, int(c.noise["repeat"])
        spread = f" (IQR {low:.4g}–{high:.4g} ms, {n} samples)"
    how = "" if c.how == "measured" else f" {c.how.upper()}"
    return (f"{c.backend} ({c.implementation}): {num(c.time_s * 1e3, '{:.4g}')} ms{how}{spread}, "
            f"{num(c.throughput, '{:.3g}')} {unit}, {num(c.gflops, '{:.3g}')} GFLOP/s "
            f"({peaks.describe(c.roofline_fraction, c.peak_source)} of roofline), "
            f"worst error {accuracy(c)}, variant {c.variant}, math mode {c.math_mode}")


def accuracy(c) -> str:
    """The worst error in eps (of the math mode's precision, and of the dtype where they differ: TF32) and as a
    multiple of a faithful implementation's."""
    if not c.max_err_eps == c.max_err_eps or c.max_err_eps is None:
        return "not measured"
    faithful = f" = {c.ratio:.2g}× faithful" if c.ratio == c.ratio and c.ratio else ""
    if c.dtype_eps == c.dtype_eps and abs(c.dtype_eps - c.max_err_eps) > 1e-9 * abs(c.max_err_eps):
        return f"{c.max_err_eps:.3g} eps of {c.eps_unit}{faithful} ({c.dtype_eps:.3g} eps of the dtype)"
    return f"{c.max_err_eps:.3g} eps{faithful}"


def evidence(c) -> list[str]:
    """Where ``c``'s time comes from, and the same point in other results folders."""
    e = c.evidence
    when = _date(e.get("started_at")) or _date(e.get("date"))
    lines = [f"evidence: {e.get('source') or '?'}, machine {e.get('machine')}, commit {str(e.get('commit'))[:8]}"
             + (f", {when}" if when else "") + ("" if c.how == "measured" else f", {c.how} from its neighbours")]
    for other in c.also:
        lines.append(f"also measured in {other['source']} (commit {str(other['commit'])[:8]}): "
                     f"{other['time_s'] * 1e3:.4g} ms, ×{other['time_s'] / c.time_s:.2f} this answer's")
    return lines


#: the winner's figures a row of :func:`as_row` carries
ROW_FIELDS = ("time_s", "throughput", "gflops", "roofline_fraction", "max_err_eps", "ratio", "peak_memory")


def as_row(a, variant) -> dict:
    """An answer as a row of :func:`.select.recommendations` (the workload's keys aside): the winner, its family and
    the other paths of it, the verdict, the runner-up (fastest other family), what was dropped and the device's other
    math modes, each as text (``dropped``, ``other_modes``) and as figures (``dropped_detail``, ``other_detail``:
    lists of :func:`detail`). ``variant`` is the workload's equation variant, said when nothing wins."""
    w, r = a.winner, a.runner_up
    return {"device": a.device, "device_name": a.device_name, "variant": w.variant if w else variant,
            "winner": w.backend if w else None, "family": w.family if w else None, "verdict": a.verdict,
            **{c: getattr(w, c) if w else math.nan for c in ROW_FIELDS},
            "peak_source": w.peak_source if w else None, "paths": w.paths if w else {},
            "runner_up": r.backend if r else None, "runner_up_family": r.family if r else None, "speedup": a.speedup,
            "dropped": {c.backend: dropped_reason(c, w) for c in a.dropped},
            "other_modes": {f"{c.backend} ({c.device})": other_mode(c, w) for c in a.other_modes},
            "dropped_detail": [detail(c, w) for c in a.dropped],
            "other_detail": [detail(c, w) for c in a.other_modes]}


def detail(c, winner) -> dict:
    """Candidate ``c`` beside the winner, as figures: backend, implementation, device (with its math
    mode), ``speed_vs_winner`` (the winner's time ÷ ``c``'s: above 1 ``c`` is faster; NaN without a winner), its
    worst error (``max_err_eps`` in eps of ``eps_unit``, the precision of its math mode: ``tf32`` for float32 in a
    TF32 mode; ``ratio`` × faithful), how its time was had, and why it does not qualify (``fails``, "" when it
    does)."""
    return {"backend": c.backend, "implementation": c.implementation, "device": c.device,
            "speed_vs_winner": winner.time_s / c.time_s if winner else math.nan, "max_err_eps": c.max_err_eps,
            "eps_unit": c.eps_unit, "ratio": c.ratio, "how": c.how,
            "fails": c.fails}


def dropped_reason(c, winner) -> str:
    """Why ``c`` was dropped, with what it would have given: "×1.3 faster, 40 eps = 40× faithful; <rule>"."""
    return f"{against(c, winner)}; {c.fails}"


def other_mode(c, winner) -> str:
    """A candidate of another math mode beside the winner: its speed, error and whether it qualifies."""
    return against(c, winner) + (f"; {c.fails}" if c.fails else "; qualifies")


def against(c, winner) -> str:
    """``c``'s speed beside the winner's and its error."""
    speed = f"{c.time_s * 1e3:.4g} ms" if winner is None else (
        f"×{winner.time_s / c.time_s:.2f} faster" if c.time_s < winner.time_s
        else f"×{c.time_s / winner.time_s:.2f} slower")
    how = "" if c.how == "measured" else f" ({c.how})"
    return f"{speed}{how}, worst error {accuracy(c)}"


def _date(ms) -> str:
    if not isinstance(ms, (int, float)) or ms != ms or ms <= 0:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")
