"""``seqbench report`` and ``seqbench select``: :func:`add_commands` adds them to the seqbench CLI.

Both raise ``ValueError`` with a message for the user (no results, unknown
op, no conforming backend); the seqbench CLI prints it and exits 2.
pandas and matplotlib are imported only when a command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from seqbench.selection import positive_int

from . import peaks


#: where ``seqbench run`` keeps its results (``--out`` default): report and select read them first
RUN_RESULTS = Path("seqbench-run") / "results"


def default_results() -> list[str]:
    """``seqbench-run/results`` when the main job has run here, else the repository's ``results``."""
    return [str(RUN_RESULTS)] if RUN_RESULTS.is_dir() else ["results"]


def add_commands(subparsers) -> None:
    report = subparsers.add_parser(
        "report", help="backend selection report (Markdown + HTML) from results directories",
        description="Write the backend-selection report (report.md, a single-file report.html, plots) from asv "
                    "and conformance results of any number of machines.")
    report.add_argument("results_dirs", nargs="*", metavar="RESULTS_DIR",
                        help=f"asv and conformance results (default: {RUN_RESULTS} when seqbench run wrote it here, "
                             "else results)")
    report.add_argument("--out", default="report", help="where the report goes (default: %(default)s)")
    report.add_argument("--dashboard",
                        help="the asv dashboard page to link (default: html/index.html beside the results)")
    report.set_defaults(func=report_command)

    sel = subparsers.add_parser(
        "select", help="the fastest conforming backend for a workload, and the runner-up",
        description="Answer from measured results: for this op, shape, device and dtype, the fastest backend "
                    "among those that conform, the runner-up and the speed-up; a shape that was not measured is "
                    "answered from the nearest measured one, and the answer says how far that is.")
    sel.add_argument("--op", required=True, help="catalog op, e.g. lstm")
    for flag, key, what in (("--seq-len", "T", "sequence length T"), ("--hidden", "H", "hidden size H"),
                            ("--batch", "B", "batch size B"), ("--input-size", "I", "input size I"),
                            ("--vocab", "V", "vocabulary size V"), ("--dim", "d", "embedding size d")):
        sel.add_argument(flag, dest=key, type=positive_int, help=what)
    sel.add_argument("--device", default="cpu", help="cpu, cuda or cuda:tf32 (default: %(default)s)")
    sel.add_argument("--dtype", help="dtype (default: float32, or the only one measured)")
    sel.add_argument("--kind", default="forward", choices=("forward", "forward_backward"),
                     help="the pass: forward, or forward_backward (forward and gradients) (default: %(default)s)")
    sel.add_argument("--machine", help="only this machine's results")
    sel.add_argument("--results-dir", action="append", dest="results_dirs", metavar="DIR",
                     help=f"results directory, repeatable (default: {RUN_RESULTS} when seqbench run wrote it "
                          "here, else results)")
    sel.add_argument("--json", action="store_true", help="machine-readable output")
    sel.set_defaults(func=select_command)


def _imports():
    try:
        from . import load, render, select
    except ImportError as error:
        raise ValueError(f"reports need pandas and matplotlib ({error}); pip install 'seqbench[report]'") from None
    return load, render, select


def report_command(args) -> int:
    _, render, _ = _imports()
    page = render.write_report(args.results_dirs or default_results(), args.out, getattr(args, "dashboard", None))
    print(f"report: {page} (and {page.with_suffix('.md').name} with plots/ beside it)")
    return 0


def select_command(args) -> int:
    load, _, select = _imports()
    dirs = args.results_dirs or default_results()
    results = load.load(dirs)
    for path, why in results.skipped:
        print(f"left out {path}: {why}", file=sys.stderr)
    if results.benchmarks.empty:
        raise ValueError(f"no benchmark results in {', '.join(dirs)} (run `seqbench bench` or `seqbench run` first)")
    shape = {k: getattr(args, k, None) for k in ("T", "H", "B", "I", "V", "d")}
    answers = select.select(results.benchmarks, args.op, args.device, args.dtype, args.kind, args.machine,
                            **{k: v for k, v in shape.items() if v is not None})
    if args.json:
        print(json.dumps([a.to_dict() for a in answers], indent=2))
        return 0 if all(a.winner for a in answers) else 1
    print(f"from {', '.join(dirs)}:")
    for answer in answers:
        print(describe(answer))
    if not any(a.winner for a in answers):
        reasons = "; ".join(f"{b}: {r}" for a in answers for b, r in sorted(a.dropped.items()))
        raise ValueError(f"no conforming backend for {args.op} on {args.device}: {reasons}")
    return 0


def _unit(op: str) -> str:
    from .benchmark_rows import throughput_unit

    return throughput_unit(op)


def describe(a) -> str:
    """A few lines a person reads: the answer, the runner-up, the notes, what was dropped."""
    shape = ", ".join(f"{k}={v}" for k, v in a.measured.items())
    where = f"{a.device} ({a.device_name})" if a.device_name else a.device
    lines = [f"{a.op} {a.kind}, {a.dtype}, {shape} on {where}, machine {a.machine}:"]
    if a.note:
        lines.append(f"  note: {a.note}")
    if a.winner:
        lines.append(f"  fastest conforming: {_candidate(a.winner, _unit(a.op))}")
    else:
        lines.append("  no backend that conforms has a time here")
    if a.runner_up:
        lines.append(f"  runner-up:          {_candidate(a.runner_up, _unit(a.op))}")
        lines.append(f"  {a.winner.backend} is {a.speedup:.2f}x faster than {a.runner_up.backend}")
    for backend, reason in sorted(a.dropped.items()):
        lines.append(f"  dropped {backend}: {reason}")
    return "\n".join(lines)


def _candidate(c, unit: str = "tokens/s") -> str:
    def num(v, pattern):
        return "?" if v is None or v != v else pattern.format(v)

    text = (f"{c.backend} ({c.implementation}): {num(c.time_s * 1e3, '{:.4g}')} ms, "
            f"{num(c.throughput, '{:.3g}')} {unit}, {num(c.gflops, '{:.3g}')} GFLOP/s "
            f"({peaks.describe(c.roofline_fraction, c.peak_source)} of roofline), "
            f"max error {num(c.max_err_eps, '{:.3g}')} eps ({num(c.ratio, '{:.2g}')}x a faithful implementation's), "
            f"variant {c.variant}, math mode {c.math_mode}")
    if c.estimated_time_s == c.estimated_time_s and c.estimated_time_s is not None:
        text += f"; ~{c.estimated_time_s * 1e3:.4g} ms estimated at the requested shape"
    return text
