"""The backend selection report: Markdown (plots as PNG files beside it) and one self-contained HTML page.

The report is a list of blocks (heading, paragraph, table, figure) rendered
twice: ``report.md`` with images under ``plots/``, and ``report.html`` with
the same images embedded as base64 PNG, so the page is one file that needs
nothing else. A backend that fails conformance (or was never checked) is
never recommended; the report lists each one dropped and why.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
import os
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from seqbench import catalog
from seqbench.catalog.axes import SHAPE_KEYS

from . import conformance_rows, load, peaks, plots, select, training
from .benchmark_rows import throughput_unit


def write_report(results_dirs, out_dir, dashboard: str | Path | None = None) -> Path:
    """Load every result under ``results_dirs``, write ``report.md``, ``report.html``, ``plots/`` and
    ``benchmarks.csv`` into ``out_dir``; return the HTML page's path."""
    dirs = [Path(d) for d in ([results_dirs] if isinstance(results_dirs, (str, Path)) else results_dirs)]
    results = load.load(dirs)
    for path, why in results.skipped:
        print(f"left out {path}: {why}", file=sys.stderr)
    if results.empty:
        raise ValueError(f"no results found in {', '.join(map(str, dirs))}: expected asv results "
                         "(<machine>/machine.json beside <commit>-<env>.json) or conformance JSON lines (*.jsonl)")
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    figures = []
    for name, title, fig in plots.all_figures(results):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        plots.plt.close(fig)
        (out / "plots" / f"{name}.png").write_bytes(buffer.getvalue())
        figures.append((name, title, buffer.getvalue()))
    dashboard = Path(dashboard) if dashboard else (results.dashboards[0] if results.dashboards else None)
    link = os.path.relpath(Path(dashboard).resolve(), out.resolve()) if dashboard else None
    blocks = report_blocks(results, figures, link, dirs)
    (out / "report.md").write_text(markdown(blocks))
    page = out / "report.html"
    page.write_text(html_page(blocks))
    results.benchmarks.to_csv(out / "benchmarks.csv", index=False)
    return page


# --- content ---------------------------------------------------------------------------------

def report_blocks(results, figures, dashboard_link, dirs) -> list[tuple]:
    table, checks = results.benchmarks, results.checks
    recs = select.recommendations(table)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    blocks = [
        ("h1", "seqbench: backend selection report"),
        ("p", f"Generated {now} from {', '.join(str(d) for d in dirs)}: {len(table)} benchmark measurements, "
              f"{len(results.conformance)} conformance checks. Per workload (machine, device, op, dtype, shape), "
              "the fastest backend among those that conform to the float64 reference; a backend that fails "
              "conformance, or was never checked, is never recommended."),
    ]
    blocks += answer_blocks(recs)
    if dashboard_link:
        blocks.append(("link", "asv dashboard (history of every benchmark)", dashboard_link))
    else:
        blocks.append(("p", "No asv dashboard found beside the results (make one with `asv publish`)."))
    blocks += [("h2", "Machines and devices"), ("table", machines_table(results))]
    if not recs.empty:
        blocks += [("h2", "Every measured workload"), ("p", (
            "speed-up = runner-up time / winner time; roofline = achieved GFLOP/s over min(peak, intensity x "
            "bandwidth) of the device, the peak measured by the sweep where it ran bench_peak, else a datasheet "
            "figure or an estimate (marked); error = largest conformance error of the winner for this op, in eps "
            "of the dtype; x faithful = that error over the error of a faithful implementation in the same "
            "precision (about 1: as accurate as a plain implementation of the equations).")),
                   ("wide", recommendations_table(recs))]
    dropped = dropped_table(table, checks)
    blocks.append(("h2", "Backends dropped, and why"))
    blocks.append(("wide", dropped) if len(dropped) else ("p", "None: every measured backend conforms."))
    if len(checks):
        outliers = conformance_rows.accuracy_outliers(checks)
        blocks += [("h2", "Accuracy outliers"), ("p", (
            f"Conforming backends whose error is more than {conformance_rows.FAR_WORSE:g}x the most accurate conforming "
            "backend's, in the same dtype and math mode (x faithful: the l2 errors of every output and gradient "
            "leaf, pooled, over a faithful same-precision implementation's).")),
            ("table", outliers_table(outliers)) if len(outliers) else ("p", "None.")]
        blocks += [("h2", "Conformance"), ("p", (
            "Per backend, device and dtype: ok or FAIL, the worst error over shapes, forward and gradients, in eps "
            "of the precision, and x its ratio to a faithful same-precision implementation's error (tolerance "
            "model: README, seqbench/tolerance.py).")),
                   ("wide", conformance_table(checks)),
                   ("h2", "Which equation each backend computes"), ("table", variants_table(checks))]
    if results.skipped:
        blocks += [("h2", "Files left out"), ("p", "Found in the results folders but not read, with why:"),
                   ("table", pd.DataFrame([{"file": str(f), "why": why} for f, why in results.skipped]))]
    if results.unchecked:
        blocks += [("h2", "Conformance not finished"), ("p", (
            f"An interrupted seqbench check did not reach {len(results.unchecked)} cases; the backends, devices, "
            "dtypes and ops they belong to are not recommended until a run checks them "
            "(the same seqbench check command, run again).")),
                   ("wide", pd.DataFrame(results.unchecked)[["machine", "backend", "device", "dtype", "op", "kind",
                                                             "test_id"]])]
    blocks += training.blocks(results.training)
    blocks.append(("h2", "Plots"))
    blocks += [("figure", title, name, png) for name, title, png in figures]
    blocks += [("h2", "Method"), ("p", METHOD), ("table", peaks_table())]
    return blocks


METHOD = (
    "Times are asv's (device-synchronized) medians of the latest commit per machine. Throughput is items "
    "(tokens, words or pairs) per second from the op catalog's count; GFLOP/s uses the catalog's forward FLOP "
    "model (a backward pass counted as twice the forward; a recurrent benchmark without an input size uses I = H). "
    "Roofline peaks are the vendors' dense datasheet figures for the dtype and math mode in effect (TF32 when "
    "recorded); a CPU's peak is an estimate from its core count; unknown devices get no roofline number. "
    "A requested shape that was not measured is answered from the nearest measured one, and says so."
)


FAMILIES = {"recurrent": "recurrent cells and networks", "embedding": "word embeddings"}


def answer_blocks(recs: pd.DataFrame) -> list[tuple]:
    """The answer first: per machine and device, one sentence per workload family and dtype (which conforming
    backend is fastest in how many measured workloads), then the table of wins per op."""
    blocks = [("h2", "Recommendations")]
    if recs.empty:
        return blocks + [("p", "No benchmark results found: this report shows conformance only "
                               "(run `seqbench bench` or `seqbench run` for timings).")]
    family = recs["op"].map(lambda op: (catalog.ops()[op].family if op in catalog.ops() else "other"))
    for (machine, device), group in recs.groupby(["machine", "device"], sort=True):
        name = group["device_name"].dropna()
        blocks.append(("h3", f"{device} on {machine}" + (f" ({name.iloc[0]})" if len(name) else "")))
        for (fam, dtype), part in group.groupby([family[group.index], "dtype"], sort=True):
            wins = part["winner"].fillna("no conforming backend").value_counts()
            ops = {b: sorted(set(part.loc[part["winner"] == b, "op"])) for b in wins.index}
            said = ", ".join(f"{b} in {n}" + (f" ({', '.join(ops[b])})" if ops[b] else "") for b, n in wins.items())
            blocks.append(("p", f"{FAMILIES.get(fam, fam).capitalize()}, {dtype}: of {len(part)} measured workloads "
                                f"the fastest conforming backend is {said}; speed-up over the runner-up "
                                f"{_range(part['speedup'])}."))
        blocks.append(("table", glance_table(group)))
    return blocks


def machines_table(results) -> pd.DataFrame:
    rows = {}
    for frame in (results.benchmarks, results.checks):
        for _, r in frame.iterrows() if len(frame) else []:
            key = (r["machine"], str(r["device"]).split(":")[0])
            entry = rows.setdefault(key, {"backends": set(), "versions": set()})
            entry["backends"].add(r["backend"])
            entry.setdefault("device name", r.get("device_name"))
            if isinstance(r.get("versions"), str):
                entry["versions"].add(r["versions"])
    return pd.DataFrame([{"machine": m, "device": d, "device name": e.get("device name") or "?",
                          "backends": ", ".join(sorted(e["backends"])),
                          "versions": "; ".join(sorted(e["versions"])) or "?"} for (m, d), e in sorted(rows.items())])


def glance_table(recs: pd.DataFrame) -> pd.DataFrame:
    """Per (machine, device, op, dtype, pass): how many measured shapes each backend wins, and what was dropped."""
    rows = []
    for key, group in recs.groupby(["machine", "device", "op", "dtype", "kind"], sort=True):
        wins = group["winner"].fillna("none conforms").value_counts()
        counts = Counter((b, short_reason(r)) for d in group["dropped"] for b, r in d.items())
        dropped = {b: r + ("" if n == len(group) else f" at {n}/{len(group)}") for (b, r), n in counts.items()}
        rows.append({**dict(zip(["machine", "device", "op", "dtype", "pass"], key)),
                     "wins (of measured shapes)": ", ".join(f"{b} {n}/{len(group)}" for b, n in wins.items()),
                     "speed-up over runner-up": _range(group["speedup"]),
                     "dropped": ", ".join(f"{b} ({r})" for b, r in sorted(dropped.items())) or "—"})
    return pd.DataFrame(rows)


def _range(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "—"
    low, high = values.min(), values.max()
    return f"×{low:.2f}" if abs(high - low) < 5e-3 else f"×{low:.2f} – ×{high:.2f}"


def recommendations_table(recs: pd.DataFrame) -> pd.DataFrame:
    keys = [k for k in SHAPE_KEYS if k in recs]
    return pd.DataFrame({
        "machine": recs["machine"], "device": recs["device"], "op": recs["op"], "variant": recs["variant"],
        "dtype": recs["dtype"], "pass": recs["kind"],
        "shape": [" ".join(f"{k}={int(r[k])}" for k in keys if r[k] == r[k]) for _, r in recs.iterrows()],
        "fastest conforming": recs["winner"].fillna("none conforms"),
        "time": recs["time_s"].map(fmt_time),
        "throughput": [f"{fmt_si(v)} {throughput_unit(op)}" if v == v else "—"
                       for v, op in zip(recs["throughput"], recs["op"])],
        "GFLOP/s": recs["gflops"].map(lambda v: fmt(v, "{:.3g}")),
        "roofline": [peaks.describe(f, src) for f, src in zip(recs["roofline_fraction"], recs["peak_source"])],
        "error (eps)": recs["max_err_eps"].map(lambda v: fmt(v, "{:.3g}")),
        "x faithful": recs["ratio"].map(lambda v: fmt(v, "{:.2g}")),
        "peak memory": recs["peak_memory"].map(fmt_bytes),
        "runner-up": recs["runner_up"].fillna("—"),
        "speed-up": recs["speedup"].map(lambda v: fmt(v, "×{:.2f}")),
        "dropped": recs["dropped"].map(lambda d: ", ".join(f"{b} ({short_reason(r)})" for b, r in sorted(d.items()))),
    })


def dropped_table(table: pd.DataFrame, checks: pd.DataFrame) -> pd.DataFrame:
    """Every (machine, backend, device, dtype, op) that fails conformance or was measured without a check."""
    rows = {}
    if len(checks):
        for _, r in checks[~checks["conformance_passed"].astype(bool)].iterrows():
            rows[(r["machine"], r["backend"], r["devkey"], r["dtype"], r["op"])] = r["conformance_reason"]
    if len(table):
        unchecked = table[table["conformance_passed"].map(lambda v: v is not True)]
        for _, r in unchecked.iterrows():
            key = (r["machine"], r["backend"], str(r["device"]).split(":")[0], r["dtype"], r["op"])
            rows.setdefault(key, r["conformance_reason"])
    return pd.DataFrame([{"machine": m, "backend": b, "device": d, "dtype": t, "op": o, "why": why}
                         for (m, b, d, t, o), why in sorted(rows.items())])


def conformance_table(checks: pd.DataFrame) -> pd.DataFrame:
    ratios = checks["ratio"] if "ratio" in checks else pd.Series(math.nan, index=checks.index)
    cell = checks.assign(column=checks["backend"] + "/" + checks["devkey"] + "/" + checks["dtype"],
                         text=[f"{'ok' if ok else 'FAIL'} {err:.3g}" + (f" x{ratio:.2g}" if ratio == ratio else "")
                               for ok, err, ratio in zip(checks["conformance_passed"], checks["max_err_eps"], ratios)])
    grid = cell.pivot_table(index=["machine", "op"], columns="column", values="text", aggfunc="first").fillna("—")
    grid.columns.name = None  # else a header cell titled "column"
    return grid.reset_index()


DTYPE_ORDER = ("float64", "float32", "float16", "bfloat16")


def conformance_summary(conformance: pd.DataFrame) -> pd.DataFrame:
    """Backend/device × dtype: checks passed of those run, and the worst error ÷ a faithful implementation's.

    The README's conformance table is this, for the committed CPU results (``tests/test_readme.py``).
    """
    frame = conformance.assign(column=conformance["dtype"].where(
        conformance.get("eps_unit", conformance["dtype"]) != "tf32", "float32 (tf32)"))
    rows = []
    for (backend, device), group in frame.groupby(["backend", "device"], sort=True):
        row = {"backend": backend, "device": device}
        for column, cells in sorted(group.groupby("column"), key=lambda kv: _dtype_rank(kv[0])):
            passed, ratio = int(cells["passed"].sum()), cells["ratio"].max() if "ratio" in cells else math.nan
            state = "ok" if passed == len(cells) else "FAIL"
            row[column] = f"{state} {passed}/{len(cells)}" + (f", ≤ {ratio:.2g}x" if ratio == ratio else "")
        rows.append(row)
    columns = ["backend", "device"] + sorted({c for r in rows for c in r} - {"backend", "device"},
                                             key=lambda c: (_dtype_rank(c), c))  # float32 before float32 (tf32)
    return pd.DataFrame(rows, columns=columns).fillna("–")


def _dtype_rank(column: str) -> int:
    name = column.split()[0]
    return DTYPE_ORDER.index(name) if name in DTYPE_ORDER else len(DTYPE_ORDER)


def outliers_table(outliers: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "machine": outliers["machine"], "device": outliers["device"], "dtype": outliers["dtype"],
        "math mode": outliers["math_mode"], "op": outliers["op"], "backend": outliers["backend"],
        "x faithful": outliers["ratio"].map(lambda v: f"{v:.2g}"),
        "most accurate": [f"{b} (x{r:.2g})" for b, r in zip(outliers["best"], outliers["best_ratio"])],
    })


def variants_table(checks: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (op, variant), group in checks.groupby(["op", checks["variant"].fillna("")], sort=True):
        ok = group[group["conformance_passed"].astype(bool)]
        bad = group[~group["conformance_passed"].astype(bool)]
        rows.append({"op": op, "equation variant": variant or "—",
                     "computed by (conforms)": ", ".join(sorted(set(ok["backend"]))) or "—",
                     "fails": ", ".join(sorted(set(bad["backend"]))) or "—"})
    return pd.DataFrame(rows)


def peaks_table() -> pd.DataFrame:
    return pd.DataFrame([{"device": p.name, "match": " + ".join(n), "FP64 GFLOP/s": p.fp64, "FP32": p.fp32,
                          "TF32": p.tf32, "FP16/BF16": p.fp16, "GB/s": p.bandwidth, "source": p.source}
                         for n, p in peaks.GPUS])


def short_reason(reason: str) -> str:
    if reason.startswith("fails conformance"):
        return "fails conformance"
    if reason.startswith("no conformance"):
        return "not checked"
    return "not measured" if "no time" in reason else reason.split(":")[0]


# --- formatting ---------------------------------------------------------------------------------

def fmt(value, pattern: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else pattern.format(value)


def fmt_time(seconds) -> str:
    if not seconds == seconds or seconds is None:
        return "—"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_si(value) -> str:
    if not value == value or value is None:
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def fmt_bytes(value) -> str:
    if not value == value or value is None:
        return "—"
    return f"{value / 2**20:.3g} MiB"


# --- renderers --------------------------------------------------------------------------------------

def markdown(blocks) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(kind[1])} {block[1]}\n")
        elif kind == "p":
            out.append(block[1] + "\n")
        elif kind == "link":
            out.append(f"[{block[1]}]({block[2]})\n")
        elif kind in ("table", "wide"):
            out.append(markdown_table(block[1]))
        elif kind == "figure":
            out.append(f"**{block[1]}**\n\n![{block[1]}](plots/{block[2]}.png)\n")
    return "\n".join(out)


def markdown_table(frame: pd.DataFrame) -> str:
    def cell(value):
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; white-space: nowrap; }
td:last-child { white-space: normal; min-width: 16em; }
th { background: #f0f0f0; } tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; } img { max-width: 100%; border: 1px solid #eee; }
.scroll { max-width: 100%; max-height: 32em; overflow: auto; border: 1px solid #ddd; margin: 0.5em 0 1.5em; }
.scroll table { margin: 0; } .scroll th { position: sticky; top: 0; cursor: pointer; }
.scroll th[aria-sort=ascending]::after { content: " ▲"; } .scroll th[aria-sort=descending]::after { content: " ▼"; }
"""

#: click a header of a wide table to sort by it (numbers as numbers: "12.4 ms" < "110 ms"), again to reverse
SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var scale = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1, "k": 1e3, "M": 1e6, "G": 1e9};
      function key(row) {
        var text = row.cells[col].textContent.trim(), n = parseFloat(text.replace(/^[×x~]/, ""));
        var unit = (text.match(/[0-9.] ?(ns|µs|ms|s|k|M|G)(?![a-z])/) || [])[1];
        return isNaN(n) ? text : n * (scale[unit] || 1);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
        return up ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def html_page(blocks) -> str:
    esc = html.escape
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{esc(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{esc(block[1])}</p>")
        elif kind == "link":
            body.append(f'<p><a href="{esc(block[2])}">{esc(block[1])}</a></p>')
        elif kind == "table":
            body.append(block[1].to_html(index=False, escape=True, border=0, na_rep="—"))
        elif kind == "wide":
            table = block[1].to_html(index=False, escape=True, border=0, na_rep="—", classes="sortable")
            body.append(f'<div class="scroll">{table}</div>')
        elif kind == "figure":
            data = base64.b64encode(block[3]).decode()
            body.append(f'<figure><figcaption>{esc(block[1])}</figcaption>'
                        f'<img alt="{esc(block[1])}" src="data:image/png;base64,{data}"></figure>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>seqbench: backend selection report</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + f"\n<script>{SORT_JS}</script>\n</body></html>\n")
