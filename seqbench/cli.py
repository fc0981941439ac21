"""The seqbench command: list, check, bench, continuous (the CI gate), report, select, publish (the dashboard), probe,
and run (the main job)."""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace
from pathlib import Path

from seqbench import __version__, catalog, console
from seqbench.dashboard import publish
from seqbench.backends import registry
from seqbench.embed import command as embed
from seqbench.jobs import bench, check
from seqbench.reports import cli as reports_cli
from seqbench.selection import Selection, positive_int, positive_number, positive_seconds, require_here, values

from . import run as main_job


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


def _selection(args, extra_ops=()) -> Selection:
    """The ``--op/--backend/--device/--dtype/--large`` of a command, parsed once and validated."""
    return Selection.parse(args.op, args.backend, args.device, args.dtype, getattr(args, "large", False),
                           extra_ops=extra_ops)


def _check(args) -> int:
    sel = _selection(args)  # clear errors before pytest starts
    results_dir = Path(args.results_dir).resolve()
    if args.cluster:
        from seqbench.fleet.sweeps import check_command

        return check_command(sel, args.cluster, args.shards, results_dir, args.timeout, args.insecure_cluster)
    here = [s for s in registry.backends() if s.available]
    sel.validate(listed_devices={d for s in here for d in s.devices})
    require_here(sel.devices, {d for s in here if sel.wants("backends", s.name) for d in s.devices})  # as run does
    log = Path(args.log).resolve() if args.log else results_dir / "logs" / "conformance.log"
    outcome = check.run_suite(sel, results_dir, log, exitfirst=args.exitfirst, timeout=args.timeout)
    check.print_summary(outcome, results_dir)
    return console.INTERRUPTED if outcome.interrupted else 0 if outcome.ok else 1


def _run(args) -> int:
    sel = _selection(args)
    if args.cluster:
        return main_job.on_cluster(sel, Path(args.out), args.cluster, args.shards, args.timeout, args.insecure_cluster)
    return main_job.main(sel, Path(args.out), args.exitfirst, args.timeout)


def _add_narrowing(p, what_runs: str):
    for name, what in (("backend", "backend"), ("device", "device: cpu, cuda or cuda:tf32"), ("dtype", "dtype"),
                       ("op", "catalog op")):
        p.add_argument(f"--{name}", action="append", help=f"only this {what}; repeatable or comma-separated")
    p.add_argument("--large", action="store_true",
                   help=f"also the large shapes (T = 256, H = 256) of every op; {what_runs}")
    p.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    p.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                   help="stop a case after this long; a case still running at 300 s on the CPU, 600 s on a GPU "
                        "(the default) fails as hung, one stopped sooner is listed as not checked (no result row)")
    _add_cluster_options(p, "shards")


def _add_cluster_options(p, what: str) -> None:
    """``--cluster`` and ``--shards``, for the commands that can run over a Ray cluster."""
    p.add_argument("--cluster", metavar="ADDRESS",
                   help=f"run as {what} over a Ray cluster: a Ray address (ray://head:10001, auto), or 'local' "
                        "for a Ray instance on this machine; needs pip install 'seqbench[cluster]'")
    p.add_argument("--shards", type=positive_int, metavar="N",
                   help="with --cluster: this many CPU shards (and GPU shards, where the cluster has GPUs); "
                        "default one per GPU, and one per node for CPU benchmarks (they take turns on a machine) "
                        "or one per CPU for CPU checks")
    p.add_argument("--insecure-cluster", action="store_true",
                   help="with --cluster: use a cluster that requires no token (anyone who reaches it can run code "
                        "on it); without this flag such a cluster is refused (README: Security)")


def _add_bench(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark sweep through asv: time, memory, throughput per backend",
        description="Run the asv suite (benchmarks/) over a grid, for the backends, devices and dtypes that can "
                    "run here. Without --set-commit-hash asv shows the results and nothing is kept; with it "
                    "they are merged into the results folder, for asv publish and seqbench report.",
    )
    grid = p.add_mutually_exclusive_group()
    grid.add_argument("--quick", dest="grid", action="store_const", const="quick",
                      help="the small grid, 10 to 20 samples per time benchmark; the default")
    grid.add_argument("--full", dest="grid", action="store_const", const="full",
                      help="the full grid (seq_len 16-4096, hidden 64-2048, batch 1-512): meant for GPUs")
    grid.add_argument("--grid", choices=bench.GRIDS,
                      help="choose the grid by name (gpu: a short GPU session, see benchmarks/common.py)")
    for name, what in (("op", f"catalog op (or {bench.TRAINING!r}: the embedding trainers, bench_training)"),
                       ("backend", "backend"), ("device", "device (cpu, cuda, ...)"), ("dtype", "dtype")):
        p.add_argument(f"--{name}", action="append", help=f"only this {what}; repeatable or comma-separated")
    p.add_argument("--machine", help="asv machine name results are filed under (default: SEQBENCH_MACHINE, else "
                                     "the host name); created with `asv machine --yes` if unknown")
    p.add_argument("--set-commit-hash", metavar="COMMIT",
                   help="keep the results, recorded for COMMIT (e.g. HEAD), merged into the results directory")
    p.add_argument("--commits", metavar="A..B",
                   help="record every commit of git rev-list A..B, oldest first, each installed apart (as "
                        "`continuous` installs a commit) and benchmarked by its own seqbench: a history for asv "
                        "publish; logs in seqbench-history/")
    p.add_argument("--cache-dir", help="with --commits: where installed commits are kept (default: "
                                       "$SEQBENCH_CACHE_DIR/commits, else ~/.cache/seqbench/commits)")
    p.add_argument("--results-dir", help="merge kept results into this folder instead of the config's results/")
    p.add_argument("--config", help="asv.conf.json (default: found from the current directory up)")
    p.add_argument("--launch-method", choices=("spawn", "forkserver"),
                   help="how asv starts benchmark processes (default: forkserver where os.fork exists)")
    p.add_argument("-e", "--show-stderr", action="store_true", help="show benchmark output, skip reasons included")
    p.add_argument("--log", help="write asv's output to this file and show a progress bar instead")
    p.add_argument("-n", "--dry-run", action="store_true", help="show what would run, run nothing")
    p.add_argument("--wait", action="store_true",
                   help="wait for another sweep on this machine to finish, instead of refusing to start")
    _add_cluster_options(p, "benchmark shards; results kept for --set-commit-hash (default HEAD)")
    p.set_defaults(func=_bench)


def _bench(args) -> int:
    ops = values(args.op)
    if args.commits or args.cache_dir:
        return _history(args)
    request = bench.Request(
        replace(_selection(args, extra_ops=(bench.TRAINING,)), ops=tuple(o for o in ops if o != bench.TRAINING)),
        grid=args.grid or "quick", training=bench.TRAINING in ops, commit=args.set_commit_hash,
        results_dir=Path(args.results_dir) if args.results_dir else None, machine=args.machine, config=args.config,
        launch_method=args.launch_method, show_stderr=args.show_stderr, log=Path(args.log) if args.log else None,
        dry_run=args.dry_run, wait=args.wait)
    if args.cluster:
        from seqbench.fleet.sweeps import bench_command

        return bench_command(request, args.cluster, args.shards, args.insecure_cluster)
    return bench.run(request)


def _history(args) -> int:
    """``seqbench bench --commits A..B``: each commit's own sweep, over this command's grid and narrowing."""
    from seqbench.jobs import history

    if not args.commits:
        raise ValueError("--cache-dir goes with --commits")
    clash = [o for o, given in (("--set-commit-hash", args.set_commit_hash), ("--cluster", args.cluster),
                                ("--dry-run", args.dry_run), ("--log", args.log)) if given]
    if clash:
        raise ValueError(f"--commits records each commit itself and takes no {', '.join(clash)}")
    _selection(args, extra_ops=(bench.TRAINING,))  # clear errors before anything installs
    argv = ["--grid", args.grid or "quick"]
    for option, chosen in (("--op", args.op), ("--backend", args.backend), ("--device", args.device),
                           ("--dtype", args.dtype), ("--machine", args.machine and [args.machine]),
                           ("--launch-method", args.launch_method and [args.launch_method])):
        if chosen:
            argv += [option, ",".join(chosen)]
    return history.run(args.commits, argv + (["--show-stderr"] if args.show_stderr else []), args.config,
                       Path(args.results_dir) if args.results_dir else None, args.cache_dir and Path(args.cache_dir))


def _add_continuous(subparsers) -> None:
    p = subparsers.add_parser(
        "continuous", help="the CI gate: is HEAD slower, or less accurate, than BASE?",
        description="Benchmark BASE and HEAD over the gate grid in alternating rounds (A, B, A, B), confirm what "
                    "looks slower with a round of its own, and check both commits against the reference. Exit "
                    "status: 0 nothing regressed, 1 a confirmed regression, 2 could not compare, 3 inconclusive "
                    "(the host did not hold still: a slowdown no larger than a commit's own rounds differ).")
    p.add_argument("base", nargs="?", metavar="BASE", help="the commit compared against (default: the merge base "
                                                             "of HEAD with main)")
    p.add_argument("head", nargs="?", default="HEAD", metavar="HEAD", help="the commit judged (default: HEAD)")
    for name, what in (("op", "catalog op (default: the gate grid's, rnn and lstm)"), ("backend", "backend"),
                       ("device", "device (default: cpu)"), ("dtype", "dtype")):
        p.add_argument(f"--{name}", action="append", help=f"only this {what}; repeatable or comma-separated")
    p.add_argument("--speed-factor", type=positive_number, default=1.5, metavar="X",
                   help="slower counts only beyond HEAD/BASE > X (default %(default)s: on a shared 2-core machine "
                        "a median moves by 3-25%% between two rounds of one commit in most runs, by up to 3x in "
                        "some: the gate then says inconclusive)")
    p.add_argument("--precision-factor", type=positive_number, default=2.0, metavar="X",
                   help="an error counts as grown beyond X times BASE's + 0.5 eps (default %(default)s)")
    p.add_argument("--host-tolerance", type=positive_number, metavar="FRACTION",
                   help="also call the speed verdict inconclusive where the matmul rate moved by more than this "
                        "within a round (default: reported, not judged; a confirmed slower point within the spread "
                        "of its own commit's rounds is inconclusive in any case)")
    p.add_argument("--out", default="seqbench-continuous/comparison.md", metavar="FILE",
                   help="the comparison in Markdown; results and logs beside it (default: %(default)s)")
    p.add_argument("--cache-dir", help="where installed commits are kept (default: $SEQBENCH_CACHE_DIR/commits, "
                                       "else ~/.cache/seqbench/commits)")
    p.add_argument("--machine", help="asv machine name (default: SEQBENCH_MACHINE, else the host name)")
    p.add_argument("--config", help="asv.conf.json (default: found from the current directory up)")
    p.set_defaults(func=_continuous)


def _continuous(args) -> int:
    from seqbench.jobs import continuous

    if args.speed_factor <= 1 or args.precision_factor < 1 or (args.host_tolerance or 0) >= 1:
        raise ValueError("--speed-factor must be above 1, --precision-factor at least 1 and --host-tolerance below "
                         f"1, got {args.speed_factor}, {args.precision_factor} and {args.host_tolerance}")
    narrowed = Selection(ops=values(args.op), devices=values(args.device) or ("cpu",), dtypes=values(args.dtype))
    narrowed.validate()  # backends are the commits' own: each commit's seqbench checks --backend
    return continuous.main(continuous.Request(
        base=args.base, head=args.head, ops=narrowed.ops, backends=values(args.backend), devices=narrowed.devices,
        dtypes=narrowed.dtypes, speed_factor=args.speed_factor, precision_factor=args.precision_factor,
        host_tolerance=args.host_tolerance, out=Path(args.out), cache=args.cache_dir and Path(args.cache_dir),
        config=args.config, machine=args.machine))


def _probe(args) -> int:
    from seqbench.jobs import probe

    sel = Selection(backends=values(args.backend), devices=values(args.device))
    sel.validate()
    return probe.main(sel, Path(args.results_dir).resolve())


DESCRIPTIONS = {
    "check": "Check backends against the float64 reference, forward and gradients, every dtype and device here. "
             "A case passes when its error is within a multiple of a faithful same-precision implementation's "
             "(see README: the tolerance model). pytest's output goes to a log; a table of verdicts is printed.",
    "probe": "Run the probes the backends declare on the devices here: measurements under several settings "
             "that say why a backend's error is what it is (cuDNN's float32 RNNs, cuBLAS's TF32 matmuls) or which "
             "setting runs it fastest (XLA's loops on a GPU). Prints each finding and files it in "
             "RESULTS_DIR/<machine>.probes.json for the report.",
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
    r.set_defaults(func=_run)
    pr = sub.add_parser("probe", help="ask the libraries under the backends why their numbers are what they are",
                        description=DESCRIPTIONS["probe"])
    for name, what in (("backend", "backend"), ("device", "device: cpu, cuda or cuda:tf32")):
        pr.add_argument(f"--{name}", action="append", help=f"only this {what}; repeatable or comma-separated")
    pr.add_argument("--results-dir", default="results/probes", help="where findings go (default: %(default)s)")
    pr.set_defaults(func=_probe)
    _add_bench(sub)
    _add_continuous(sub)
    embed.add_command(sub)
    reports_cli.add_commands(sub)
    publish.add_command(sub)
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
