"""The backend selection report: Markdown (plots as PNG files beside it) and one self-contained HTML page.

The report is a list of blocks (heading, paragraph, table, figure), its sections
in order, rendered twice (:mod:`.pages`): ``report.md`` with images under
``plots/``, and ``report.html`` with the same images embedded as base64 PNG, so
the page is one file that needs nothing else. The tables are :mod:`.tables`'.
A backend that fails conformance (or was never checked) is never recommended;
the report lists each one dropped and why.
"""

from __future__ import annotations

import datetime
import io
import os
import sys
from pathlib import Path

import pandas as pd

from seqbench import catalog
from seqbench.results import asv_files

from . import (beside, conformance_rows, findings, load, pareto, plausibility, plots, select, tables,
               tradeoffs, training)
from .pages import html_page, markdown


def write_report(results_dirs, out_dir, dashboard: str | Path | None = None, rule=None) -> Path:
    """Load every result under ``results_dirs``, write ``report.md``, ``report.html``, ``plots/`` and
    ``benchmarks.csv`` into ``out_dir``; return the HTML page's path. Both link the asv dashboard ``dashboard``
    (a page), else the one published beside the report (:func:`beside_report`), else one found near the
    results (:attr:`load.Results.dashboards`), where there is one."""
    dirs = [Path(d) for d in ([results_dirs] if isinstance(results_dirs, (str, Path)) else results_dirs)]
    results = load.load(dirs)
    for path, why in results.skipped:
        print(f"left out {path}: {why}", file=sys.stderr)
    if results.empty:
        raise ValueError(f"no results found in {', '.join(map(str, dirs))}: expected asv results "
                         "(<machine>/machine.json beside <commit>-<env>.json), conformance JSON lines (*.jsonl) or "
                         "probe findings (*.probes.json)")
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    figures = []
    for name, title, fig in plots.all_figures(results, rule or select.Rule()):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        plots.plt.close(fig)
        (out / "plots" / f"{name}.png").write_bytes(buffer.getvalue())
        figures.append((name, title, buffer.getvalue()))
    dashboard = Path(dashboard) if dashboard else (beside_report(out) or
                                                   (results.dashboards[0] if results.dashboards else None))
    link = os.path.relpath(Path(dashboard).resolve(), out.resolve()) if dashboard else None
    blocks = report_blocks(results, figures, link, dirs, rule or select.Rule())
    (out / "report.md").write_text(markdown(blocks))
    page = out / "report.html"
    page.write_text(html_page(blocks))
    results.benchmarks.to_csv(out / "benchmarks.csv", index=False)
    return page


def beside_report(out_dir) -> Path | None:
    """The page of a dashboard published beside the report's folder (``results/dashboard/index.html`` for the
    report in ``results/report/``: ``seqbench publish --html-dir results/dashboard``), if there is one."""
    page = Path(out_dir).resolve().parent / asv_files.DASHBOARD / "index.html"
    return page if asv_files.is_dashboard(page.parent) else None


# --- content ---------------------------------------------------------------------------------

def report_blocks(results, figures, dashboard_link, dirs, rule) -> list[tuple]:
    table, checks = results.benchmarks, results.checks
    recs = select.recommendations(table, rule)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    blocks = [
        ("h1", "seqbench: backend selection report"),
        ("p", f"Generated {now} from {', '.join(str(d) for d in dirs)}: {len(table)} benchmark measurements, "
              f"{len(results.conformance)} conformance checks. Per workload (machine, device, op, dtype, shape), "
              f"the fastest backend among those that qualify (rule: {rule}; errors against the float64 "
              "reference); a backend that does not, or was never checked, is never recommended, and is listed "
              "with what it would have given."),
    ]
    blocks += answer_blocks(recs)
    if dashboard_link:
        served = Path(dashboard_link).parent.as_posix()
        blocks += [("link", "asv dashboard (history of every benchmark)", dashboard_link),
                   ("p", "The dashboard fetches its data as JSON: serve its folder over HTTP to view it "
                         f"(`python -m http.server -d {served}` in the report's folder).")]
    else:
        blocks.append(("p", "No asv dashboard found beside the results (make one with `asv publish`)."))
    blocks += [("h2", "Machines and devices"), ("table", tables.machines_table(results))]
    if not recs.empty:
        blocks += [("h2", "Every measured workload"), ("p", (
            "fastest = the kernel family that wins and the path of it taken; verdict = wins (significantly "
            "faster than the runner-up by asv's test), tie (within noise: both named), untested (one sample "
            "each: no test); runner-up = the fastest other family; "
            "speed-up = runner-up time / winner time; roofline = achieved GFLOP/s over min(peak, intensity x "
            "bandwidth) of the device, the peak measured by the sweep where it ran bench_peak (the better of its "
            "rates at the start and the end of the sweep), else a datasheet "
            "figure or an estimate (marked); error = largest conformance error of the winner for this op, in eps "
            "of the dtype; x faithful = that error over the error of a faithful implementation in the same "
            "precision (about 1: as accurate as a plain implementation of the equations); other math modes = the "
            "device's other modes (TF32) beside the winner, their speed, error and whether they qualify; dropped = "
            "backends that do not qualify, with their speed against the winner and error (full text below).")),
                   ("wide", tables.recommendations_table(recs))]
    blocks += flagged_blocks(table)
    dropped = tables.dropped_table(recs, checks, rule)
    blocks.append(("h2", "Backends dropped, and why"))
    blocks += [("p", f"Per machine, backend, device, dtype and op that does not qualify (rule: {rule}): what it "
                     "would have given over the workloads where it was measured beside a winner (its speed against the "
                     "winner's, and its worst error in eps and as a multiple of a faithful implementation's), and "
                     "the rule it failed."), ("wide", dropped)] if len(dropped) else [
        ("p", "None: every measured backend qualifies.")]
    blocks += tradeoffs.speed_vs_accuracy(figures, rule) + tradeoffs.trust(table)
    if len(checks):
        outliers = conformance_rows.accuracy_outliers(checks)
        blocks += [("h2", "Accuracy outliers"), ("p", (
            f"Conforming backends whose error is more than {conformance_rows.FAR_WORSE:g}x the most accurate conforming "
            "backend's, in the same dtype and math mode (x faithful: the l2 errors of every output and gradient "
            "leaf, pooled, over a faithful same-precision implementation's).")),
            ("table", tables.outliers_table(outliers)) if len(outliers) else ("p", "None.")]
        blocks += [("h2", "Conformance"), ("p", (
            "Per backend, device and dtype: ok or FAIL, the worst error over shapes, forward and gradients, in eps "
            "of the precision, and x its ratio to a faithful same-precision implementation's error (tolerance "
            "model: README, seqbench/precision/tolerance.py).")),
                   ("wide", tables.conformance_table(checks)),
                   ("h2", "Which equation each backend computes"), ("table", tables.variants_table(checks))]
    blocks += findings.blocks(results.probes)
    if results.skipped:
        blocks += [("h2", "Files left out"), ("p", "Found in the results folders but not read, with why:"),
                   ("table", pd.DataFrame([{"file": str(f), "why": why} for f, why in results.skipped]))]
    if results.unchecked:
        blocks += [("h2", "Conformance not finished"), ("p", (
            f"seqbench check left {len(results.unchecked)} cases without a verdict (an interrupted run did not "
            "reach them, or a --timeout shorter than the default stopped them: the reason column); the backends, "
            "devices, dtypes and ops they belong to are not recommended until a run checks them "
            "(the same seqbench check command, run again; without --timeout, or a longer one).")),
                   ("wide", pd.DataFrame(results.unchecked)[["machine", "backend", "device", "dtype", "op", "kind",
                                                             "test_id", "reason"]])]
    blocks += training.blocks(results.training, results.pipeline)
    blocks.append(("h2", "Plots"))
    blocks += [("figure", title, name, png) for name, title, png in figures if not name.startswith(pareto.NAME)]
    blocks += [("h2", "Method"), ("p", METHOD), ("table", tables.peaks_table())]
    return blocks


METHOD = (
    "Times are asv's (device-synchronized) medians of the latest commit per machine. Throughput is items "
    "(tokens, words or pairs) per second from the op catalog's count; GFLOP/s uses the catalog's forward FLOP "
    "model (a backward pass counted as twice the forward; a recurrent benchmark without an input size uses I = H). "
    "Roofline peaks are the vendors' dense datasheet figures for the dtype and math mode in effect (TF32 when "
    "recorded); a CPU's peak is an estimate from its core count; unknown devices get no roofline number. "
    "A backend qualifies if it conforms (the strict verdict of the conformance suite), or, with "
    "`--max-error-eps N`, if its worst error on the op, device and dtype is at most N eps of the dtype; the paths "
    "of one kernel family count as one answer, named by the fastest path. The winner wins where asv's test on the "
    "kept samples finds it significantly faster than the runner-up; otherwise the answer is a tie that names both "
    "(or untested, where single samples cannot be tested). A requested shape that was not measured "
    "(`seqbench select`) is interpolated, log-log, between the measured neighbours that surround it on every axis, "
    "and says so (how good that is: \"How far to trust an estimate\"); outside the measured range nothing is named "
    "unless `--extrapolate` is asked, and the answer is marked extrapolated."
)


def flagged_blocks(table: pd.DataFrame) -> list[tuple]:
    """The measurements the report does not believe (:mod:`.plausibility`), each with why."""
    flagged = plausibility.flag(table)
    return [("h2", "Flagged measurements"), ("p", (
        "Measurements contradicting each other or measured on a drifting device, beyond the noise: a "
        "forward_backward pass faster than its forward pass; time falling as the work grows (along one shape axis, "
        "the catalog's FLOPs); the device's matmul rate moving by more than "
        f"{plausibility.DRIFT:.0%} between the start and the end of the sweep (every row of the sweep). Beyond "
        f"the noise: over {plausibility.FLAT:.0%} faster and significant by asv's test (Mann–Whitney on the "
        "samples, else disjoint 99% confidence intervals), or, where neither can decide (one sample), over "
        f"{plausibility.MARGIN:.0%} faster. Recommendations do not use them.")),
        ("wide", tables.flagged_table(flagged)) if len(flagged) else ("p", "None.")]


FAMILIES = {"recurrent": "recurrent cells and networks", "embedding": "word embeddings"}


def answer_blocks(recs: pd.DataFrame) -> list[tuple]:
    """The answer first: per machine and device, one sentence per workload family and dtype (which qualifying
    kernel family is fastest in how many measured workloads, by which path, at what error; the verdicts; the
    device's other math modes; what was dropped and what it would have given), then the table of wins per op."""
    blocks = [("h2", "Recommendations")]
    if recs.empty:
        return blocks + [("p", "No benchmark results found: this report shows conformance only "
                               "(run `seqbench bench` or `seqbench run` for timings).")]
    family = recs["op"].map(lambda op: (catalog.ops()[op].family if op in catalog.ops() else "other"))
    others, dropped = beside.details(recs, "other_detail"), beside.details(recs, "dropped_detail")
    for (machine, device), group in recs.groupby(["machine", "device"], sort=True):
        name = group["device_name"].dropna()
        blocks.append(("h3", f"{device} on {machine}" + (f" ({name.iloc[0]})" if len(name) else "")))
        for (fam, dtype), part in group.groupby([family[group.index], "dtype"], sort=True):
            n = len(part)
            modes = others[others["row"].isin(part.index)].groupby(["backend", "device"], sort=True)
            off = dropped[dropped["row"].isin(part.index)].groupby("backend", sort=True)
            blocks.append(("p", " ".join([
                f"{FAMILIES.get(fam, fam).capitalize()}, {dtype}: of {n} measured workloads the fastest qualifying "
                f"kernel family is {beside.wins(part, ops=True)}.",
                f"Verdicts: {beside.verdicts(part)}; " + (
                    f"speed-up over the runner-up {tables.speedup_range(part['speedup'])}."
                    if part["speedup"].notna().any() else "no runner-up (no other family qualifies)."),
                *([f"Other math modes: {'; '.join(beside.summed(g, True, n) for _, g in modes)}."] if len(modes) else []),
                *([f"Dropped: {'; '.join(beside.summed(g, of=n) for _, g in off)}."] if len(off) else [])])))
        blocks.append(("table", tables.glance_table(group)))
    return blocks
