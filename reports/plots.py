"""The report's plots (matplotlib, Agg): each function returns ``[(name, title, Figure), ...]``.

* time against seq_len and against hidden size, per backend (log axes);
* conformance error (in eps) against T, per dtype;
* gradient norm ``||dL/dh_t||`` against t for RNN/LSTM/GRU (the reference diagnostic);
* where each backend wins over (T, B);
* speed against accuracy: each backend (and math mode) at its worst error and its speed against the winner, the
  Pareto frontier drawn (:mod:`.pareto`).

A backend that fails conformance is drawn dashed and labelled so; it never wins a cell.
"""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from seqbench import catalog, reference  # noqa: E402

from . import pareto  # noqa: E402
from .select import Rule, fastest, shape_keys  # noqa: E402

MAX_OPS = 6  # panels per figure
LABELS = {"T": "sequence length T", "H": "hidden size H", "B": "batch B"}


def colours(backends) -> dict:
    cmap = plt.get_cmap("tab10")
    return {b: cmap(i % 10) for i, b in enumerate(sorted(set(backends)))}


def _groups(table: pd.DataFrame):
    """(machine, device, dtype) groups of forward-pass timings, each with its ops (most measured first)."""
    rows = table[(table["kind"] == "forward") & (table["time_s"] > 0)] if not table.empty else table
    for (machine, device, dtype), group in rows.groupby(["machine", "device", "dtype"], sort=True):
        ops = group["op"].value_counts().index.tolist()[:MAX_OPS]
        yield f"{machine} · {device} · {dtype}", group, ops


def _panels(n: int, width: float = 4.2, height: float = 3.2):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _slice(rows: pd.DataFrame, free: list[str]) -> tuple[pd.DataFrame, dict]:
    """The rows at the fixed value of every other shape key that leaves the most points along ``free``."""
    fixed = [k for k in shape_keys(rows) if k not in free]
    if not fixed:
        return rows, {}
    best = max(rows.groupby(fixed, dropna=False), key=lambda kv: (len(kv[1][free].drop_duplicates()), len(kv[1])))
    key = best[0] if isinstance(best[0], tuple) else (best[0],)
    return best[1], {k: v for k, v in zip(fixed, key) if v == v}


def _log_x(ax, values) -> None:
    """A log x axis labelled at the measured values, in plain numbers."""
    ax.set_xscale("log")
    ticks = sorted({float(v) for v in values if v == v})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _fmt(fixed: dict) -> str:
    return ", ".join(f"{k}={int(v) if float(v).is_integer() else v}" for k, v in fixed.items())


def time_vs(table: pd.DataFrame, x: str) -> list:
    """Time of the forward pass against ``x`` ("T" or "H"), one line per backend, one panel per op."""
    figures = []
    palette = colours(table["backend"].dropna()) if not table.empty else {}
    for title, group, ops in _groups(table):
        ops = [op for op in ops if x in group and group.loc[group["op"] == op, x].nunique() > 1]
        if not ops:
            continue
        fig, axes = _panels(len(ops))
        for ax, op in zip(axes, ops):
            rows, fixed = _slice(group[group["op"] == op], [x])
            for backend, line in rows.groupby("backend"):
                line = line.sort_values(x)
                ok = bool(line["conformance_passed"].fillna(False).astype(bool).all())
                ax.plot(line[x], line["time_s"], "o-" if ok else "x--", color=palette[backend],
                        label=backend if ok else f"{backend} (not conforming)")
            _log_x(ax, rows[x])
            ax.set(yscale="log", xlabel=LABELS.get(x, x), ylabel="time (s)", title=f"{op}  {_fmt(fixed)}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"forward time vs {LABELS.get(x, x)} — {title}")
        fig.tight_layout()
        figures.append((f"time_vs_{x}_{_slug(title)}", f"Time vs {LABELS.get(x, x)}: {title}", fig))
    return figures


def error_vs_T(conformance: pd.DataFrame) -> list:
    """Largest conformance error (eps of the dtype) against T, per backend and device, one panel per dtype."""
    if conformance.empty or "T" not in conformance or conformance["T"].isna().all():
        return []
    rows = conformance[conformance["T"].notna()].assign(line=lambda f: f["backend"] + "/" + f["devkey"])
    dtypes = sorted(rows["dtype"].unique())
    palette = colours(rows["line"])
    fig, axes = _panels(len(dtypes), 5.0, 3.6)
    for ax, dtype in zip(axes, dtypes):
        worst = rows[rows["dtype"] == dtype].groupby(["line", "T"])["max_err_eps"].max().reset_index()
        for line, points in worst.groupby("line"):
            ax.plot(points["T"], points["max_err_eps"], "o-", color=palette[line], label=line)
        _log_x(ax, worst["T"])
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set(ylim=(0, None), xlabel="sequence length T", ylabel="max error (eps of the dtype)", title=dtype)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("conformance error vs T (worst over ops, forward and gradients)", fontsize=10)
    fig.tight_layout()
    return [("error_vs_T", "Error growth vs T", fig)]


def gradient_norms(T: int = 64, B: int = 4, H: int = 32, seed: int = 0) -> list:
    """``||dL/dh_t||`` against t for RNN, LSTM and GRU (the notes' vanishing-gradient point)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for op in ("rnn", "lstm", "gru"):
        inputs = catalog.get(op).inputs({"T": T, "B": B, "I": H, "H": H}, seed)
        states = {k: inputs[k] for k in ("h0", "c0") if k in inputs}
        norms = reference.gradient_norms(op, inputs["x"], inputs["params"], **states)
        ax.semilogy(np.arange(1, T + 1), norms, label=op.upper())
    ax.set(xlabel="time step t", ylabel="||dL/dh_t||", title=f"gradient norm from L = sum(h_T), T={T}, H={H}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return [("gradient_norms", "Gradient norm vs t (reference, float64)", fig)]


def win_map(table: pd.DataFrame) -> list:
    """Which conforming backend is fastest at each measured (T, B), with its speed-up over the runner-up."""
    figures = []
    palette = colours(table["backend"].dropna()) if not table.empty else {}
    for title, group, ops in _groups(table):
        ops = [op for op in ops if {"T", "B"} <= set(shape_keys(group[group["op"] == op]))
               and group.loc[group["op"] == op, ["T", "B"]].drop_duplicates().shape[0] > 1]
        if not ops:
            continue
        fig, axes = _panels(len(ops), 4.6, 3.6)
        for ax, op in zip(axes, ops):
            rows, fixed = _slice(group[group["op"] == op], ["T", "B"])
            Ts, Bs = sorted(rows["T"].unique()), sorted(rows["B"].unique())
            for (i, t), (j, b) in ((a, c) for a in enumerate(Ts) for c in enumerate(Bs)):
                here = rows[(rows["T"] == t) & (rows["B"] == b)]
                answer = fastest(here) if len(here) else None
                colour, text = (0.9, 0.9, 0.9, 1), "none\nconforms"
                if answer and answer.winner:
                    colour, text = palette[answer.winner.backend], answer.winner.backend
                    if answer.runner_up:
                        text += f"\n×{answer.speedup:.3g}" + (" tie" if answer.verdict == "tie" else "")
                ax.add_patch(plt.Rectangle((i - 0.5, j - 0.5), 1, 1, color=colour, alpha=0.55))
                ax.text(i, j, text, ha="center", va="center", fontsize=7)
            ax.set(xlim=(-0.5, len(Ts) - 0.5), ylim=(-0.5, len(Bs) - 0.5), xticks=range(len(Ts)),
                   yticks=range(len(Bs)), xlabel="sequence length T", ylabel="batch B", title=f"{op}  {_fmt(fixed)}")
            ax.set_xticklabels([f"{int(t)}" for t in Ts])
            ax.set_yticklabels([f"{int(b)}" for b in Bs])
        fig.suptitle(f"where each backend wins (forward, ×speed-up over the runner-up) — {title}")
        fig.tight_layout()
        figures.append((f"wins_{_slug(title)}", f"Where each backend wins: {title}", fig))
    return figures


def speed_vs_error(table: pd.DataFrame, rule: Rule = Rule()) -> list:
    """Per (machine, device kind, dtype), one panel per op: each backend and math mode at x = its worst error (eps of
    the dtype, log scale) and y = its speed against the fastest qualifying backend (:func:`.pareto.points`: geometric
    mean), filled where it conforms, hollow where not, a square for a math mode other than the device's default;
    the Pareto frontier as a staircase; the rule's cap, if any, as a dashed line. Points without an error are
    named in the panel."""
    points = pareto.points(table, rule)
    figures = []
    palette = colours(points["backend"])
    for (machine, device, dtype), group in points.groupby(pareto.FIGURE, sort=True):
        ops = group["op"].value_counts().index.tolist()[:MAX_OPS]
        fig, axes = _panels(len(ops), 5.0, 3.8)
        for ax, op in zip(axes, ops):
            here = group[group["op"] == op]
            known = here[here["max_err_eps"].notna()]
            for _, r in known.iterrows():
                colour = palette[r["backend"]]
                ax.scatter(r["max_err_eps"], r["speed"], s=42, marker="s" if ":" in r["device"] else "o",
                           edgecolors=colour, facecolors=colour if r["conforms"] else "none", linewidths=1.5)
                mode = r["device"].partition(":")[2]
                ax.annotate(r["backend"] + (f" ({mode})" if mode else ""), (r["max_err_eps"], r["speed"]),
                            textcoords="offset points", xytext=(4, 3), fontsize=7)
            line = known[known["frontier"]].sort_values("max_err_eps")
            ax.step(line["max_err_eps"], line["speed"], where="post", color="0.4", lw=1, zorder=0)
            if rule.max_error_eps is not None:
                ax.axvline(rule.max_error_eps, color="0.3", ls="--", lw=1)
            ax.axhline(1.0, color="0.7", lw=0.8, zorder=0)
            missing = sorted(set(here.loc[here["max_err_eps"].isna(), "backend"] + here.loc[
                here["max_err_eps"].isna(), "device"].map(lambda d: f" ({d})" if ":" in d else "")))
            if missing:
                ax.text(0.02, 0.02, "no error measured: " + ", ".join(missing), transform=ax.transAxes, fontsize=7)
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_plain))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(_plain))
            ax.set(xlim=(0, max(10.0, 4 * known["max_err_eps"].max()) if len(known) else 10.0),
                   xlabel="worst error (eps of the dtype)", ylabel="speed ÷ winner's (geo. mean)", title=op)
            ax.grid(True, which="both", alpha=0.3)
        title = f"{machine} · {device} · {dtype}"
        fig.suptitle(f"speed against accuracy — {title}\nfilled: conforms, hollow: does not; square: other math mode",
                     fontsize=9)
        fig.tight_layout()
        figures.append((f"{pareto.NAME}_{_slug(title)}", f"Speed against accuracy: {title}", fig))
    return figures


def _plain(value: float, _=None) -> str:
    """A log axis's tick as a plain number, a minor tick only at 2, 3 and 5 times a power of ten."""
    digit = value / 10 ** np.floor(np.log10(value)) if value > 0 else 0
    return f"{value:g}" if round(digit) in (1, 2, 3, 5) and abs(digit - round(digit)) < 1e-6 else ""


def all_figures(results, rule: Rule = Rule()) -> list:
    table = results.benchmarks
    return (time_vs(table, "T") + time_vs(table, "H") + win_map(table) + speed_vs_error(table, rule)
            + error_vs_T(results.conformance) + gradient_norms())


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").replace("___", "_")
