"""The seqbench command: list, check, bench, report, select, and run (the main job)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from seqbench import __version__, catalog, console
from seqbench.jobs import bench, check
from seqbench.embed import command as embed
from seqbench.backends import registry
from . import run as main_job
from .reports import cli as reports_cli


def _list(args) -> int:
    rows = []
    for status in registry.backends():
        if status.available:
            versions = ", ".join(f"{k} {v}" for k, v in status.versions.items())
            rows.append([status.name, "available", ", ".join(status.devices), versions])
        else:
            rows.append([status.name, "unavailable", "-", status.reason.removeprefix(f"{status.name}: ")])
    print(console.table(rows, ["backend", "status", "devices", "versions, or why not"]))
    print()
    print(console.table([[op.name, op.doc] for op in catalog.ops().values()], ["op", "what it computes"]))
    return 0


def _values(option) -> list[str]:
    return [v.strip() for item in option or [] for v in item.split(",") if v.strip()]


def _check(args) -> int:
    for name in _values(args.op):  # clear errors before pytest starts
        catalog.get(name)
    for name in _values(args.backend):
        if name not in registry.names():
            raise ValueError(f"--backend must be one of {registry.names()}, got {name!r}")
    options = [f"--seqbench-{name}={','.join(_values(getattr(args, name)))}"
               for name in ("backend", "device", "dtype", "op") if getattr(args, name)]
    options += ["--seqbench-large"] if args.large else []
    if args.cluster:
        from seqbench.fleet.sweeps import check_command

        return check_command(args, [o for o in options if o.startswith(("--seqbench-dtype", "--seqbench-large"))])
    from .conformance.cases import Selection, check_selection

    check_selection(Selection(devices=tuple(_values(args.device)), dtypes=tuple(_values(args.dtype))),
                    [registry.backend(n) for n in registry.available()])
    results_dir = Path(args.results_dir).resolve()
    log = Path(args.log).resolve() if args.log else results_dir / "logs" / "conformance.log"
    outcome = check.run_suite(options, results_dir, log, exitfirst=args.exitfirst, timeout=args.timeout)
    check.print_summary(outcome, results_dir)
    return console.INTERRUPTED if outcome.interrupted else 0 if outcome.ok else 1


def _add_narrowing(p, what_runs: str):
    for name, what in (("backend", "backend"), ("device", "device: cpu, cuda or cuda:tf32"), ("dtype", "dtype"),
                       ("op", "catalog op")):
        p.add_argument(f"--{name}", action="append", help=f"only this {what}; repeatable or comma-separated")
    p.add_argument("--large", action="store_true",
                   help=f"also the large shapes (T = 256, H = 256) of every op; {what_runs}")
    p.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="stop a case after this long and fail it (default: 300 on the CPU, 600 on a GPU)")
    bench.add_cluster_options(p, "shards")


DESCRIPTIONS = {
    "check": "Check backends against the float64 reference, forward and gradients, every dtype and device here. "
             "A case passes when its error is within a multiple of a faithful same-precision implementation's "
             "(see README: the tolerance model). pytest's output goes to a log; a table of verdicts is printed.",
    "run": "The main job: on every device here (the CPU, and a CUDA GPU when there is one) check the recurrent "
           "cells against the reference, benchmark them, write the backend-selection report, print a summary.",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqbench", description=(
        "Check sequence-model math (RNN, LSTM, GRU, word embeddings) across array backends against a float64 "
        "reference, benchmark it, and answer: for my workload on my device, which backend is fastest among "
        "those that compute the right thing?"))
    p.add_argument("--version", action="version", version=f"seqbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="backends (availability, devices, versions) and ops",
                   description="List every registered backend (available or why not, its devices and versions) "
                               "and every op of the catalog.").set_defaults(func=_list)
    c = sub.add_parser("check", help="run the conformance suite against the float64 reference",
                       description=DESCRIPTIONS["check"])
    _add_narrowing(c, "the LSTM checks its large shape always (on the CPU in float32 and float64 only)")
    c.add_argument("--results-dir", default="results/conformance", help="where results go (default: %(default)s)")
    c.add_argument("--log", help="pytest's output (default: RESULTS_DIR/logs/conformance.log)")
    c.set_defaults(func=_check)
    r = sub.add_parser("run", help="the main job: check, benchmark and report on every device here",
                       description=DESCRIPTIONS["run"])
    _add_narrowing(r, "the LSTM checks its large shape always (on the CPU in float32 and float64 only)")
    r.add_argument("--out", default="seqbench-run", help="folder for results, logs and report (default: %(default)s)")
    r.set_defaults(func=main_job.main)
    bench.add_command(sub)
    embed.add_command(sub)
    reports_cli.add_commands(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a TERM stops a run as Ctrl-C does: what is done is kept
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where it started ignored (a background job)
    try:
        return args.func(args)
    except ValueError as error:
        print(f"seqbench {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seqbench {args.command}: interrupted", file=sys.stderr)
        return console.INTERRUPTED


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
