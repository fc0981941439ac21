"""The verdicts of ``seqbench continuous``: is HEAD slower, or less accurate, than BASE? Pure functions on what the
runs wrote (asv's points with their samples, conformance rows), so each rule is tested on known numbers.

Speed (``time_*`` benchmarks): the samples of every round of a side are pooled; HEAD is *slower* at a point when
the ratio of the medians HEAD / BASE is above the speed factor **and** asv's test (:func:`seqbench.reports.noise.
significant`: Mann–Whitney U with 6 samples a side and more, else disjoint 99% intervals) says the two differ. A
slower point is a regression only once a confirmation round (the flagged benchmarks again, BASE then HEAD) says
the same on its own samples; a flagged point the confirmation round does not find slower leaves the speed verdict
inconclusive (the two disagree: the host moved, or the slowdown sits on the factor), never a pass. *Faster* is the
mirror image: reported, never a failure.

The host: a confirmed slower point counts only if its ratio is beyond what the host alone did to that benchmark in
this run: the largest ratio between the medians of two rounds of the *same* commit (:func:`spread`; A1, A2, A3 are
all BASE). Within it, the host could explain the slowdown and the speed verdict is inconclusive; so it is where a
point's spread reached the speed factor, since a slowdown that large could then hide in it (a false pass). Each round also
measures the matmul rate at its start and at its end (``bench_peak``, ``bench_zz_peak_end``); with a host
tolerance, a rate that moved by more than it within a round makes the speed verdict inconclusive too (on a shared
2-core machine that rate moves by 10-40% within most runs, with no effect on the single-threaded benchmarks: the
README's soak figures).

Precision (conformance rows by ``test_id``; inputs are seeded, errors deterministic on the CPU): a case that
passed at BASE and fails at HEAD, or whose error grew beyond ``factor · err_base + floor`` eps, regressed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from asv_runner.statistics import compute_stats

from seqbench.reports import noise

#: exit statuses: nothing regressed; a confirmed regression; the harness could not compare; the host moved
PASSED, REGRESSED, BROKEN, INCONCLUSIVE = 0, 1, 2, 3
#: the benchmarks measuring the matmul rate at a round's start and at its end
PEAK_START, PEAK_END = "bench_peak.matmul.track_gflops", "bench_zz_peak_end.matmul.track_gflops"
#: the short names of the shape axes in a point's label
SHORT = {"seq_len": "T", "hidden": "H", "batch": "B"}


def key(point: dict) -> tuple:
    """A point of a benchmark, the same on both sides: ``(benchmark, ((param, value), ...))``."""
    return point["benchmark"], tuple(point["params"].items())


def label(k: tuple) -> str:
    """``lstm.time_forward(torch, cpu, float32, T=64 H=64 B=8)``: a point as the table names it."""
    benchmark, params = k
    values = dict(params)
    head = ", ".join(str(values.pop(n)) for n in ("backend", "device", "dtype") if n in values)
    sizes = " ".join(f"{SHORT.get(n, n)}={v}" for n, v in values.items())
    return f"{benchmark.split('.', 1)[-1]}({', '.join(p for p in (head, sizes) if p)})"


def pooled(rounds: list[list[dict]]) -> dict[tuple, list[float]]:
    """The samples of each ``time_*`` point over the rounds of one side (each round: asv's points, as
    :func:`seqbench.results.asv_files.read` gives them); points without samples are left out."""
    out = {}
    for points in rounds:
        for p in points:
            values = [v for v in (p.get("samples") or []) if isinstance(v, (int, float)) and math.isfinite(v)]
            if p.get("type") == "time" and values:
                out.setdefault(key(p), []).extend(values)
    return out


@dataclass(frozen=True)
class Speed:
    """One point compared: the median ratio HEAD / BASE, whether asv's test calls it different (None: it cannot
    tell), and the verdict: ``slower``, ``faster`` or ``same``."""

    key: tuple
    ratio: float
    significant: bool | None
    verdict: str
    samples: tuple = (0, 0)  # how many: (BASE, HEAD)
    medians: tuple = (math.nan, math.nan)  # seconds: (BASE, HEAD)


def _row(values: list[float]) -> dict:
    _, stats = compute_stats(values, 1)
    return {"samples": values, **{k: stats.get(k) for k in ("ci_99_a", "ci_99_b")}}


def compare_speed(base: dict, head: dict, factor: float) -> list[Speed]:
    """Every point measured on both sides (:func:`pooled`), compared: slower/faster only beyond ``factor`` and
    significant."""
    out = []
    for k in sorted(set(base) & set(head), key=str):
        medians = (statistics.median(base[k]), statistics.median(head[k]))
        ratio = medians[1] / medians[0]
        differs = noise.significant(_row(base[k]), _row(head[k]))
        verdict = ("slower" if ratio > factor and differs else "faster" if ratio < 1 / factor and differs
                   else "same")
        out.append(Speed(k, ratio, differs, verdict, (len(base[k]), len(head[k])), medians))
    return out


def confirmed(flagged: list[Speed], again: list[Speed]) -> list[Speed]:
    """The points of ``flagged`` that the confirmation round (``again``, :func:`compare_speed` on its samples
    alone) finds slower too."""
    slower = {s.key for s in again if s.verdict == "slower"}
    return [s for s in flagged if s.key in slower]


def spread(rounds: dict[str, list[dict]]) -> dict[tuple, float]:
    """For each ``time_*`` point, the largest ratio between the medians of two rounds of one commit: how far the
    host alone moved that benchmark in this run. ``rounds``: asv's points by round, named by side first (A1, A2 and
    A3 are BASE's, B1, B2 and B3 HEAD's); 1.0 for a point measured once a side."""
    medians = {}
    for name, points in rounds.items():
        for k, values in pooled([points]).items():
            medians.setdefault((name[0], k), []).append(statistics.median(values))
    out = {}
    for (_, k), values in medians.items():
        out[k] = max(out.get(k, 1.0), max(values) / min(values))
    return out


def unresolved(spreads: dict[tuple, float], factor: float) -> dict[tuple, float]:
    """The points whose :func:`spread` reached the speed factor: the host alone moved them as far as a regression
    must, so a slowdown of that size could hide in the noise and "nothing slower" says nothing there."""
    return {k: v for k, v in spreads.items() if v >= factor}


def explained(slower: list[Speed], spreads: dict[tuple, float]) -> list[Speed]:
    """The confirmed slower points the host alone could explain: a ratio no larger than their :func:`spread`
    (a point without one counts as explained)."""
    return [s for s in slower if s.ratio <= spreads.get(s.key, math.inf)]


@dataclass(frozen=True)
class HostMove:
    """The matmul rate (GFLOP/s) of one device and dtype at the start and the end of one round."""

    round: str
    device: str
    dtype: str
    start: float
    end: float

    @property
    def moved(self) -> float:
        """The change within the round, relative to the larger rate."""
        return abs(self.end - self.start) / max(self.start, self.end)


def host_moves(name: str, points: list[dict]) -> list[HostMove]:
    """The matmul rates a round (``name``) measured at its start and end, per device and dtype measured at both."""
    rates = {(p["benchmark"], p["params"].get("device"), p["params"].get("dtype")): p["result"]
             for p in points if p["benchmark"] in (PEAK_START, PEAK_END) and _finite(p.get("result"))}
    return [HostMove(name, d, t, rate, rates[(PEAK_END, d, t)]) for (b, d, t), rate in sorted(rates.items())
            if b == PEAK_START and (PEAK_END, d, t) in rates]


def unsteady(moves: list[HostMove], tolerance: float | None) -> list[HostMove]:
    """The rounds whose matmul rate moved by more than ``tolerance`` (0.10: 10%); none without a tolerance."""
    return [] if tolerance is None else [m for m in moves if m.moved > tolerance]


def incomparable(base: list[dict], head: list[dict], versions: tuple[dict, dict]) -> list[str]:
    """Why the two sides' rows cannot be compared (empty: they can): asv files rows by environment and by each
    benchmark's version (a hash of its source), so both must come from one interpreter and one benchmarks/ tree.
    ``versions``: benchmark -> version, from each side's ``benchmarks.json``."""
    why = []
    envs = [{p["env"] for p in side} for side in (base, head)]
    if envs[0] != envs[1]:
        why.append(f"asv environments differ: BASE {sorted(envs[0])}, HEAD {sorted(envs[1])}")
    names = {p["benchmark"] for p in base} & {p["benchmark"] for p in head}
    for name in sorted(names):
        if versions[0].get(name) != versions[1].get(name):
            why.append(f"{name}: benchmark versions differ ({versions[0].get(name)} and {versions[1].get(name)})")
    if not any(p.get("type") == "time" for p in base) or not names:
        why.append("no time benchmark was measured on both sides")
    return why


@dataclass(frozen=True)
class Precision:
    """One conformance case at both commits: pass/fail and worst error (eps of its dtype) on each side, and the
    verdict: ``regressed``, ``improved`` or ``same``."""

    test_id: str
    passed: tuple  # (BASE, HEAD)
    err: tuple  # (BASE, HEAD), NaN where unknown
    verdict: str
    why: str = ""


def compare_precision(base: list[dict], head: list[dict], factor: float, floor: float = 0.5) -> list[Precision]:
    """The cases checked at both commits (rows by ``test_id``), judged: a pass turned fail, or an error above
    ``factor · err_base + floor`` eps, regressed; a fail turned pass improved."""
    before, after = ({r["test_id"]: r for r in rows if r.get("test_id")} for rows in (base, head))
    out = []
    for test_id in sorted(set(before) & set(after)):
        a, b = before[test_id], after[test_id]
        passed = (bool(a.get("passed")), bool(b.get("passed")))
        err = (_eps(a), _eps(b))
        limit = factor * err[0] + floor
        if passed == (True, False):
            verdict, why = "regressed", "passed at BASE, fails at HEAD"
        elif math.isfinite(err[0]) and math.isfinite(err[1]) and err[1] > limit:
            verdict, why = "regressed", f"error {err[1]:.3g} eps > {factor:g} x {err[0]:.3g} + {floor:g} eps"
        elif passed == (False, True):
            verdict, why = "improved", "failed at BASE, passes at HEAD"
        else:
            verdict, why = "same", ""
        out.append(Precision(test_id, passed, err, verdict, why))
    return out


def status(problems: list[str], precision: list[Precision], moved: list[HostMove], slower: list[Speed],
           within: list[Speed] = (), unsure: dict | None = None, unconfirmed: list[Speed] = ()) -> int:
    """The exit status: :data:`BROKEN` where the harness could not compare (``problems``); else
    :data:`REGRESSED` for a precision regression, or a confirmed slower point (``slower``) on a steady host; else
    :data:`INCONCLUSIVE` where the matmul rate moved (``moved``), a confirmed slower point was ``within`` the
    host's own spread (:func:`explained`), a point's spread reached the speed factor (``unsure``,
    :func:`unresolved`), or a flagged slower point was not slower again in its confirmation round
    (``unconfirmed``); else :data:`PASSED`."""
    if problems:
        return BROKEN
    if any(p.verdict == "regressed" for p in precision):
        return REGRESSED
    if moved:
        return INCONCLUSIVE
    return REGRESSED if slower else INCONCLUSIVE if within or unsure or unconfirmed else PASSED


def _eps(row: dict) -> float:
    value = row.get("max_err_eps")
    return float(value) if _finite(value) else math.nan


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
