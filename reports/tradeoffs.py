"""Two sections of the report: speed against accuracy (the figures of :func:`.plots.speed_vs_error`), and how far
to trust an estimate (the estimator's hold-one-out figures, :func:`.estimate.summary`, per machine and device)."""

from __future__ import annotations

import pandas as pd

from . import estimate, pareto, plausibility, select


def speed_vs_accuracy(figures, rule) -> list[tuple]:
    """The section with the speed-against-accuracy figures of ``figures`` ((name, title, png) triples) and how to
    read them; nothing where there are none (no timings)."""
    mine = [(name, title, png) for name, title, png in figures if name.startswith(pareto.NAME)]
    if not mine:
        return []
    cap = (f" The dashed vertical line is the accuracy rule's cap ({rule}): points right of it do not qualify."
           if rule.max_error_eps is not None else "")
    return [("h2", "Speed against accuracy"), ("p", (
        "Each point is a backend on one op (a square: another math mode of the device, such as TF32) at its worst "
        "conformance error (x: eps of the dtype, log scale; a TF32 error converted to float32 eps) and its speed "
        "against the fastest qualifying backend (y: the geometric mean, over the workloads (pass and shape) it "
        "was measured at, of the winner's time ÷ its time; 1 is the winner's speed, above 1 faster; where nothing "
        "qualifies the fastest measured backend stands in). Filled points conform, hollow ones do not; the line "
        "joins the points that no other beats on both speed and error (the Pareto frontier): up and to the left "
        "is better, and a point below the line gives away speed for no gain in accuracy." + cap))] + [
        ("figure", title, name, png) for name, title, png in mine]


def trust_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per machine and device kind, the estimator's hold-one-out figures (:func:`.estimate.summary`) in words, over
    the rows :mod:`.plausibility` does not flag."""
    rows = []
    table = plausibility.usable(table)[0] if len(table) else table  # the implausible rows predict nothing
    timed = table[table["time_s"] > 0] if len(table) else table
    if timed.empty:
        return pd.DataFrame()
    kinds = timed["device"].astype(str).str.split(":").str[0]
    for (machine, device), group in timed.groupby(["machine", kinds], sort=True):
        s = estimate.summary(group, select.shape_keys(group))
        if not s["points"]:
            rows.append({"machine": machine, "device": device, "points predicted": 0,
                         "median time error": "—", "90th percentile": "—",
                         "predicted fastest = measured": "no point has measured neighbours on both sides of an axis "
                                                         "(three sizes per axis needed)",
                         "where the win is significant": "—"})
            continue
        rows.append({"machine": machine, "device": device, "points predicted": s["points"],
                     "median time error": f"{s['median_error']:.1%}", "90th percentile": f"{s['p90_error']:.1%}",
                     "predicted fastest = measured": _agree(s["winner_agree"], s["winner_shapes"],
                                                            "no shape with two families predicted"),
                     "where the win is significant": _agree(s["significant_agree"], s["significant_shapes"],
                                                            "no measured win significant by asv's test")})
    return pd.DataFrame(rows)


def _agree(agree: int, shapes: int, none: str) -> str:
    return f"{agree} of {shapes} shapes" if shapes else f"— ({none})"


def trust(table: pd.DataFrame) -> list[tuple]:
    """The section "How far to trust an estimate": what the hold-one-out test does and its figures."""
    found = trust_table(table)
    if found.empty:
        return []
    return [("h2", "How far to trust an estimate"), ("p", (
        "At a shape that was not measured, `seqbench select` interpolates each backend's time between its measured "
        "neighbours (log-log). To see how good that is, each measured point is predicted from its neighbours along "
        "each axis as if it had not been measured, and compared with its measurement: the median and 90th "
        "percentile of |predicted ÷ measured − 1| say how far an interpolated time may be off; the last columns "
        "say how often the family predicted fastest was the one measured fastest, at the shapes where backends "
        "of two or more families were predicted, conforming or not (all of them, and those where asv's test finds "
        "the measured win significant).")), ("table", found)]


def main(argv=None) -> None:
    """``python -m seqbench.reports.tradeoffs [RESULTS_DIR ...]``: the estimator's hold-one-out table of the
    results (default: the committed ``results``) in Markdown, as the README and the report show it."""
    import sys

    from . import load
    from .pages import markdown_table

    dirs = (sys.argv[1:] if argv is None else argv) or ["results"]
    print(markdown_table(trust_table(load.load(dirs).benchmarks)).strip())


if __name__ == "__main__":
    main()
