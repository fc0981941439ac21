"""The ``seqbench`` command: list, check, bench, report, select, and run (the main job)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import bench, catalog, registry
from .reports import cli as reports_cli


def _list(args) -> int:
    print("backends:")
    for status in registry.backends():
        if status.available:
            versions = ", ".join(f"{k} {v}" for k, v in status.versions.items())
            print(f"  {status.name:<10} available    devices: {', '.join(status.devices)}    ({versions})")
        else:
            print(f"  {status.name:<10} unavailable  {status.reason}")
    print("ops:")
    for op in catalog.ops().values():
        print(f"  {op.name:<22} {op.doc}")
    return 0


def _narrowing(args) -> list[str]:
    options = []
    for name in ("backend", "device", "dtype", "op"):
        for value in getattr(args, name) or []:
            options.append(f"--{name}={value}")
    return options + (["--large"] if args.large else [])


class _Collector:
    """Keeps the result rows of one conformance run (read before the plugin writes them)."""

    def __init__(self):
        self.rows = []

    def pytest_sessionfinish(self, session):
        from .conformance.plugin import _ROWS

        self.rows = list(session.config.stash.get(_ROWS, []))


def _check(args, devices=None) -> int:
    import pytest

    for op in args.op or []:  # clear errors before pytest starts
        for name in op.split(","):
            catalog.get(name)
    for backend in args.backend or []:
        for name in backend.split(","):
            if name not in registry.names():
                raise ValueError(f"backend must be one of {registry.names()}, got {name!r}")
    collector = _Collector()
    pytest_args = [
        "--pyargs", "seqbench.conformance", "-p", "no:cacheprovider", "-q" if not args.verbose else "-v",
        f"--results-dir={Path(args.results_dir).resolve()}", *_narrowing(args),
        *(f"--device={d}" for d in devices or []),
    ]
    if args.exitfirst:
        pytest_args.append("-x")
    code = pytest.main(pytest_args, plugins=[collector])
    print()
    print(summary_table(collector.rows))
    return int(code)


def summary_table(rows: list[dict]) -> str:
    """op × (backend, device, dtype): ``ok`` or ``FAIL``, the worst error in eps over shapes and passes, and its
    largest ratio to a faithful same-precision implementation's error."""
    if not rows:
        return "no conformance results (nothing selected, or every case was skipped)"
    columns = sorted({(r["backend"], r["device"], r["dtype"]) for r in rows})
    ops = list(dict.fromkeys(r["op"] for r in rows))
    cells = {}
    for r in rows:
        key = (r["op"], (r["backend"], r["device"], r["dtype"]))
        worst = cells.get(key, (True, 0.0, 0.0))
        cells[key] = (worst[0] and r["passed"], max(worst[1], r["max_err_eps"]), max(worst[2], r.get("ratio", 0.0)))
    header = ["op \\ error/eps x faithful"] + [f"{b}/{d}/{t}" for b, d, t in columns]
    lines = [header]
    for op in ops:
        line = [op]
        for col in columns:
            if (op, col) in cells:
                ok, err, ratio = cells[(op, col)]
                line.append(f"{'ok' if ok else 'FAIL'} {err:.3g} x{ratio:.2g}")
            else:
                line.append("-")
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in lines]
    failed = sum(not r["passed"] for r in rows)
    text.append(f"{len(rows)} checks, {failed} failed (worst error over shapes, forward and gradients, in eps of the "
                f"precision; x: error over a faithful same-precision implementation's)")
    return "\n".join(text)


#: what ``seqbench run`` benchmarks when no --op is given: the cells, a few minutes on two cores
RUN_BENCH_OPS = ("rnn", "lstm", "gru", "gru_reset_after")


def _run(args) -> int:
    """Check every available backend on the CPU, benchmark the quick grid, write the report."""
    from .reports import write_report

    out = Path(args.out).resolve()
    results_dir = out / "results"
    print(f"seqbench run: conformance, quick benchmarks and the report, on the CPU, into {out}/")
    for status in registry.backends():
        state = "available" if status.available else f"unavailable ({status.reason})"
        print(f"  {status.name}: {state}")
    args.results_dir = str(results_dir / "conformance")
    print("\n[1/3] conformance of every available backend against the float64 reference")
    check_code = _check(args, devices=["cpu"])

    print("\n[2/3] quick benchmark grid (asv)")
    ops = args.op or [",".join(RUN_BENCH_OPS)]
    bench_args = ["--quick", "--device", "cpu", "--results-dir", str(results_dir), "--set-commit-hash", "HEAD"]
    bench_args += [f"--op={o}" for o in ops] + [f"--backend={b}" for b in args.backend or []]
    bench_code = bench.main(bench_args)

    print("\n[3/3] backend selection report")
    page = write_report([str(results_dir)], str(out / "report"))
    print(f"\nseqbench run: report written to {page.parent}/ (open {page})")
    if check_code or bench_code:
        print(f"seqbench run: conformance exit {check_code}, benchmarks exit {bench_code}: see above")
    return check_code or bench_code


def _add_check_options(p, results=True):
    for name, what in (("backend", "backend"), ("device", "device (cpu, cuda)"), ("dtype", "dtype"), ("op", "catalog op")):
        p.add_argument(f"--{name}", action="append", help=f"only this {what}; repeatable or comma-separated")
    p.add_argument("--large", action="store_true", help="also the large shapes (T>=256, H>=256)")
    if results:
        p.add_argument("--results-dir", default="results/conformance", help="where results go (default: %(default)s)")
    p.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per case")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="backends (availability, devices, versions) and ops").set_defaults(func=_list)
    check = sub.add_parser("check", help="run the conformance suite against the float64 reference")
    _add_check_options(check)
    check.set_defaults(func=_check)
    run = sub.add_parser("run", help="the main job: check every available backend on the CPU, "
                                     "benchmark the quick grid, write the selection report")
    _add_check_options(run, results=False)
    run.add_argument("--out", default="seqbench-run", help="folder for results and report (default: %(default)s)")
    run.set_defaults(func=_run)
    bench.add_command(sub)
    reports_cli.add_commands(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as error:
        print(f"seqbench {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
