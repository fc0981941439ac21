"""Running the conformance suite for the command line: in-process pytest, a progress bar, a log, the verdicts.

pytest's own output goes to the log file; the terminal shows the phase's bar
(cases done of collected, the current case) and then a summary: ok/FAIL per
op and backend/device/dtype, each failure's first line, the skip reasons
grouped, and where the log and the results are.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import console

# pytest's warning when the plugin, imported through its entry point, was already imported: harmless noise
QUIET = ["-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning"]


@dataclass
class Outcome:
    """What one run of the suite did."""

    rows: list = field(default_factory=list)  # the result rows (seqbench.conformance.plugin)
    passed: int = 0
    failed: list = field(default_factory=list)  # (test id, first line of the failure)
    skipped: Counter = field(default_factory=Counter)  # reason -> cases
    known: int = 0  # known failures (strict xfails) that failed as expected
    exit_code: int = 0
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code in (0, 5) and not self.failed  # 5: nothing collected


class _Watcher:
    """A pytest plugin: moves the phase's bar per case and keeps outcomes, failures and rows."""

    def __init__(self, phase: console.Phase, outcome: Outcome):
        self.phase, self.outcome = phase, outcome

    def pytest_collection_finish(self, session):
        self.phase.total(len(session.items))

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and not report.passed):
            out = self.outcome
            case = report.nodeid.rpartition("::")[2]
            if hasattr(report, "wasxfail"):
                out.known += 1
            elif report.passed:
                out.passed += 1
            elif report.skipped:
                out.skipped[_skip_reason(report)] += 1
            else:
                out.failed.append((case, _first_line(report)))
            self.phase.advance(item=case)

    def pytest_sessionfinish(self, session):
        from .conformance.plugin import _ROWS

        self.outcome.rows = list(session.config.stash.get(_ROWS, []))


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def _first_line(report) -> str:
    message = getattr(report.longrepr, "reprcrash", None)
    text = message.message if message is not None else report.longreprtext
    return text.strip().splitlines()[0] if text.strip() else "failed"


def run_suite(options: list[str], results_dir: Path, log: Path, title: str = "conformance",
              exitfirst: bool = False) -> Outcome:
    """Run the suite narrowed by ``options`` (``--seqbench-*``), rows merged into ``results_dir``,
    pytest's output appended to ``log``; returns the :class:`Outcome`."""
    import pytest

    outcome = Outcome(log=log)
    log.parent.mkdir(parents=True, exist_ok=True)
    args = ["--pyargs", "seqbench.conformance", *QUIET, "-ra", f"--seqbench-results-dir={results_dir}", *options]
    if exitfirst:
        args.append("-x")
    with console.phase(title) as bar:
        with console.to_log(log):
            print(f"$ pytest {' '.join(args)}", flush=True)
            outcome.exit_code = int(pytest.main(args, plugins=[_Watcher(bar, outcome)]))
        bar.done(f"{outcome.passed} passed, {len(outcome.failed)} failed, {sum(outcome.skipped.values())} skipped")
    return outcome


def verdict_table(rows: list[dict]) -> str:
    """op × (backend, device, dtype): ``ok``/``FAIL``, the worst error in eps over shapes and passes, and the
    largest ratio to a faithful same-precision implementation's error."""
    if not rows:
        return "no conformance results (nothing selected, or every case was skipped)"
    columns = sorted({(r["backend"], r["device"], r["dtype"]) for r in rows})
    ops = list(dict.fromkeys(r["op"] for r in rows))
    cells = {}
    for r in rows:
        key = (r["op"], (r["backend"], r["device"], r["dtype"]))
        ok, err, ratio = cells.get(key, (True, 0.0, 0.0))
        cells[key] = (ok and r["passed"], max(err, r["max_err_eps"]), max(ratio, r.get("ratio", 0.0)))
    body = [[op] + [f"{'ok' if cells[(op, c)][0] else 'FAIL'} {cells[(op, c)][1]:.3g} x{cells[(op, c)][2]:.2g}"
                    if (op, c) in cells else "-" for c in columns] for op in ops]
    failed = sum(not r["passed"] for r in rows)
    return (console.table(body, ["op \\ error/eps x faithful"] + ["/".join(c) for c in columns])
            + f"\n{len(rows)} checks, {failed} failed (worst error over shapes, forward and gradients, in eps of the "
              "precision; x: error over a faithful same-precision implementation's)")


def by_backend(rows: list[dict], devices: list[str]) -> str:
    """One line per backend: checks passed of run per device, and the worst ratio to a faithful implementation."""
    table = []
    for backend in sorted({r["backend"] for r in rows}):
        line = [backend]
        for device in devices:
            mine = [r for r in rows if r["backend"] == backend and r["device"] == device]
            if not mine:
                line.append("-")
                continue
            passed = sum(r["passed"] for r in mine)
            worst = max(r.get("ratio", 0.0) for r in mine)
            line.append(f"{'ok' if passed == len(mine) else 'FAIL'} {passed}/{len(mine)} x{worst:.2g}")
        table.append(line)
    return console.table(table, ["backend"] + devices) if table else "no conformance results"


def problems(outcome: Outcome, limit: int = 8) -> list[str]:
    """Lines on what did not pass: failures (first lines), then skip reasons grouped, most common first."""
    lines = [f"FAILED {case}: {message}" for case, message in outcome.failed[:limit]]
    if len(outcome.failed) > limit:
        lines.append(f"... and {len(outcome.failed) - limit} more failures (see {outcome.log})")
    if outcome.known:
        lines.append(f"{outcome.known} known failures (conformance/known_failures.json) failed as expected")
    for reason, n in outcome.skipped.most_common(limit):
        lines.append(f"skipped {n}: {reason}")
    if len(outcome.skipped) > limit:
        lines.append(f"... and {len(outcome.skipped) - limit} more skip reasons (see {outcome.log})")
    return lines


def print_summary(outcome: Outcome, results_dir: Path, file=None) -> None:
    file = file or sys.stdout
    print(verdict_table(outcome.rows), file=file)
    for line in problems(outcome):
        print(line, file=file)
    print(f"results: {results_dir}/   pytest's output: {outcome.log}", file=file)
