"""``seqbench report`` and ``seqbench select``: :func:`add_commands` adds them to the seqbench CLI.

Both raise ``ValueError`` with a message for the user (no results, unknown
op, no conforming backend); the seqbench CLI prints it and exits 2.
pandas and matplotlib are imported only when a command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from seqbench.selection import positive_int, positive_number


#: where ``seqbench run`` keeps its results (``--out`` default) and the repository's committed results: report
#: and select read both by default, merged as asv merges machines
RUN_RESULTS = Path("seqbench-run") / "results"
COMMITTED = Path("results")
DEFAULT_HELP = f"default: {COMMITTED} and {RUN_RESULTS}, those that exist"


def default_results() -> list[str]:
    """The committed ``results`` and the main job's ``seqbench-run/results``, those that exist here."""
    found = [str(d) for d in (COMMITTED, RUN_RESULTS) if d.is_dir()]
    if not found:
        raise ValueError(f"no results here ({COMMITTED}/ or {RUN_RESULTS}/): run `seqbench run` first, run this "
                         "from a checkout of seqbench, or name results folders")
    return found


def _accuracy(parser) -> None:
    parser.add_argument("--max-error-eps", type=positive_number, metavar="N",
                        help="qualify any backend whose worst conformance error on the workload is at most N eps of "
                             "the dtype, instead of the strict conformance verdict")


def add_commands(subparsers) -> None:
    report = subparsers.add_parser(
        "report", help="backend selection report (Markdown + HTML) from results directories",
        description="Write the backend-selection report (report.md, a single-file report.html, plots) from asv "
                    "and conformance results of any number of machines.")
    report.add_argument("results_dirs", nargs="*", metavar="RESULTS_DIR",
                        help=f"asv and conformance results ({DEFAULT_HELP})")
    report.add_argument("--out", default="report", help="where the report goes (default: %(default)s)")
    report.add_argument("--dashboard",
                        help="the asv dashboard page to link (default: dashboard/index.html beside the report's "
                             "folder, else html/index.html beside the results)")
    _accuracy(report)
    report.set_defaults(func=report_command)

    sel = subparsers.add_parser(
        "select", help="the fastest qualifying backend for a workload, the runner-up, and how sure that is",
        description="Answer from measured results: for this op, shape, device and dtype, the fastest backend among "
                    "those that qualify (conform, or --max-error-eps), the runner-up of another kernel family, "
                    "whether the win is significant by asv's test on the kept samples (else a tie), what dropped "
                    "backends would have given, and the evidence (results folder, machine, commit, date). A shape "
                    "that was not measured is interpolated between measured neighbours and marked; outside the "
                    "measured range no winner is named unless --extrapolate.")
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
                     help=f"results directory, repeatable ({DEFAULT_HELP})")
    sel.add_argument("--extrapolate", action="store_true",
                     help="outside the measured range, estimate times by extending the measured trend (marked)")
    _accuracy(sel)
    sel.add_argument("--json", action="store_true", help="machine-readable output")
    sel.set_defaults(func=select_command)


def _imports():
    try:
        from . import answers, load, render, select
    except ImportError as error:
        raise ValueError(f"reports need pandas and matplotlib ({error}); pip install 'seqbench[report]'") from None
    return answers, load, render, select


def report_command(args) -> int:
    _, _, render, select = _imports()
    page = render.write_report(args.results_dirs or default_results(), args.out, getattr(args, "dashboard", None),
                               select.Rule(args.max_error_eps))
    print(f"report: {page} (and {page.with_suffix('.md').name} with plots/ beside it)")
    return 0


def select_command(args) -> int:
    answers, load, _, select = _imports()
    dirs = args.results_dirs or default_results()
    results = load.load(dirs)
    for path, why in results.skipped:
        print(f"left out {path}: {why}", file=sys.stderr)
    if results.benchmarks.empty:
        raise ValueError(f"no benchmark results in {', '.join(dirs)} (run `seqbench bench` or `seqbench run` first)")
    shape = {k: getattr(args, k, None) for k in ("T", "H", "B", "I", "V", "d")}
    found = select.select(results.benchmarks, args.op, args.device, args.dtype, args.kind, args.machine,
                          select.Rule(args.max_error_eps), args.extrapolate,
                          **{k: v for k, v in shape.items() if v is not None})
    if args.json:
        print(json.dumps([a.to_dict() for a in found], indent=2))
        return 0 if any(a.winner for a in found) else 1
    print(f"from {', '.join(dirs)}:")
    for answer in found:
        print(answers.describe(answer))
    if not any(a.winner for a in found):
        reasons = "; ".join(f"{c.backend}: {c.fails}" for a in found for c in a.dropped) or "; ".join(
            a.note for a in found if a.note)
        raise ValueError(f"no backend that qualifies has a time for {args.op} on {args.device}: {reasons}")
    return 0
