"""What ``seqbench continuous`` says: a short console table of what changed, and the full comparison in Markdown
(for a CI job to post)."""

from __future__ import annotations

import math

from seqbench import console
from seqbench.jobs import gate

#: what each exit status means
MEANING = {gate.PASSED: "nothing regressed", gate.REGRESSED: "regressed",
           gate.BROKEN: "could not compare", gate.INCONCLUSIVE: "inconclusive: the host did not hold still"}
HEADERS = ["check", "what", "BASE", "HEAD", "change", "verdict"]


def changes(comparison) -> list[list[str]]:
    """One row per speed or precision change: regressions first, then improvements."""
    confirmed = {s.key for s in comparison.confirmed}
    within = {s.key for s in comparison.within}
    rows = []
    for s in comparison.speed:
        if s.verdict != "same":
            verdict = ("slower, within the host's spread" if s.key in within else "slower, confirmed"
                       if s.key in confirmed else "slower, not confirmed" if s.verdict == "slower" else "faster")
            rows.append(["speed", gate.label(s.key), _ms(s.medians[0]), _ms(s.medians[1]), f"x{s.ratio:.2f}",
                         verdict])
    for p in comparison.precision:
        if p.verdict != "same":
            rows.append(["precision", p.test_id, _case(p.passed[0], p.err[0]), _case(p.passed[1], p.err[1]),
                         p.why, p.verdict])
    order = {"slower, confirmed": 0, "regressed": 0, "slower, not confirmed": 1}
    return sorted(rows, key=lambda r: order.get(r[5], 2))


def summary(comparison, request, code: int, markdown) -> str:
    """The console's closing lines: the changes, the host, the verdict, where the logs and the comparison are."""
    rows = changes(comparison)
    lines = [""]
    lines += [console.table(rows, HEADERS)] if rows else [
        f"no change beyond the factors (speed x{request.speed_factor:g}, precision {request.precision_factor:g}x "
        f"+ 0.5 eps) in {len(comparison.speed)} timed points and {len(comparison.precision)} checked cases"]
    lines.append(host_line(comparison, request.host_tolerance))
    lines += [f"problem: {p}" for p in comparison.problems]
    lines.append(f"exit {code}: {MEANING[code]}")
    lines.append(f"Comparison: {markdown}")
    if comparison.logs:
        lines.append("Logs: " + ", ".join(str(p) for p in comparison.logs))
    if comparison.timings:
        lines.append("Wall time: " + ", ".join(f"{k} {console.duration(v)}" for k, v in comparison.timings.items())
                     + f", total {console.duration(sum(comparison.timings.values()))}")
    return "\n".join(lines)


def host_line(comparison, tolerance: float | None) -> str:
    """The host's checks: confirmed slower points within their rounds' spread, flagged points the confirmation
    round did not find slower, rounds of one commit as far apart as the speed factor, and the matmul rate."""
    ratio = max((s.ratio for s in comparison.within), default=0)
    within = (f"; {len(comparison.within)} confirmed slower point(s), up to x{ratio:.2f}, within the spread of their "
              "own commit's rounds: speed inconclusive" if comparison.within else "")
    if comparison.unconfirmed:
        within += (f"; {len(comparison.unconfirmed)} point(s) flagged slower, up to "
                   f"x{max(s.ratio for s in comparison.unconfirmed):.2f}, not slower again in the confirmation round: "
                   "speed inconclusive")
    if comparison.unresolved:
        within += (f"; {len(comparison.unresolved)} point(s) moved by up to x{max(comparison.unresolved.values()):.2f}"
                   " between rounds of one commit, as far as a regression must: speed inconclusive")
    if not comparison.moves:
        return "host: no matmul rate measured at both ends of a round" + within
    worst = max(comparison.moves, key=lambda m: m.moved)
    moved = gate.unsteady(comparison.moves, tolerance)
    return (f"host: the matmul rate moved by up to {worst.moved:.0%} within a round (round {worst.round}, "
            f"{worst.start:.0f} -> {worst.end:.0f} GFLOP/s); "
            + ("not judged (no --host-tolerance)" if tolerance is None else f"tolerance {tolerance:.0%}")
            + (f": speed inconclusive ({', '.join(m.round for m in moved)})" if moved else "") + within)


def render(comparison, request, code: int) -> str:
    """The full comparison in Markdown."""
    base, head = (c[:10] or "?" for c in comparison.commits)
    out = [f"# seqbench continuous: {base} -> {head}", "", f"**exit {code}: {MEANING[code]}**", ""]
    out += [f"* problem: {p}" for p in comparison.problems]
    out += [f"Speed: slower counts beyond x{request.speed_factor:g}, significant by asv's test (Mann-Whitney U, "
            "p < 0.002), slower again in a confirmation round of its own, and further apart than the same commit's "
            "rounds. Precision: a pass turned fail, or "
            f"an error above {request.precision_factor:g} x BASE's + 0.5 eps.", ""]
    rows = changes(comparison)
    if rows:
        out += ["## Changes", "", *_table(rows, HEADERS), ""]
    if comparison.speed:
        confirmed = {s.key for s in comparison.confirmed}
        out += ["## Every timed point", "", *_table(
            [[gate.label(s.key), _ms(s.medians[0]), _ms(s.medians[1]), f"x{s.ratio:.2f}",
              {True: "yes", False: "no", None: "untestable"}[s.significant], f"{s.samples[0]}/{s.samples[1]}",
              s.verdict + (" (confirmed)" if s.key in confirmed else "")] for s in comparison.speed],
            ["benchmark", "BASE median", "HEAD median", "ratio", "significant", "samples", "verdict"]), ""]
    if comparison.moves:
        out += ["## The host: matmul rate at each round's start and end", "", host_line(comparison,
                                                                                     request.host_tolerance), "",
                *_table([[m.round, f"{m.device}/{m.dtype}", f"{m.start:.1f}", f"{m.end:.1f}", f"{m.moved:.1%}"]
                         for m in comparison.moves], ["round", "device", "start GFLOP/s", "end GFLOP/s", "moved"]), ""]
    if comparison.precision:
        same = sum(p.verdict == "same" for p in comparison.precision)
        out += ["## Precision", "", f"{len(comparison.precision)} cases checked at both commits, {same} unchanged.",
                ""]
    if comparison.logs:
        out += ["## Logs", "", *[f"* `{p}`" for p in comparison.logs], ""]
    return "\n".join(out)


def _table(rows: list[list], headers: list[str]) -> list[str]:
    cells = [[str(c).replace("|", "\\|") for c in row] for row in rows]
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + ["| " + " | ".join(r) + " |"
                                                                              for r in cells]


def _ms(seconds: float) -> str:
    return "-" if not math.isfinite(seconds) else f"{seconds * 1e3:.3g} ms"


def _case(passed: bool, err: float) -> str:
    return ("pass" if passed else "FAIL") + ("" if not math.isfinite(err) else f" {err:.3g} eps")
