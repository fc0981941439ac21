"""Running the conformance suite for the command line: worker processes, a progress bar, a log, the verdicts.

Cases run in worker processes (:mod:`seqbench.jobs.worker`): the CPU cases of
every backend in one, the cases of each backend on a GPU in one of their own
(so a CUDA error that poisons a context cannot reach another backend). A
case that crashes its worker (a segfault, an illegal memory access,
``os._exit``, the kernel's OOM killer), hangs past :data:`TIMEOUT` or leaves
CUDA unusable fails with the reason, and a fresh worker goes on with the
cases left; one a shorter ``--timeout`` stops has no verdict (no row) and is
listed as not checked. pytest's own output goes to the log file; the terminal
shows the phase's bar and then a summary: ok/FAIL per op and
backend/device/dtype, each failure's first line, the cases not checked, the
skip reasons grouped (a selection all skipped exits 1), the log and results.

Result rows are merged into ``<results>/<machine>.jsonl`` after each worker
(under a lock, atomically: concurrent runs lose nothing); an interrupted run
(SIGINT, SIGTERM) keeps every row checked so far; the cases it did not reach,
and those a ``--timeout`` stopped, are listed in ``<machine>.unchecked.json``
with the reason, which the reports read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from seqbench import console
from seqbench.results import records as results
from seqbench.selection import Selection

# pytest's warning when the plugin, imported through its entry point, was already imported: harmless noise
QUIET = ["-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
#: seconds after which a case counts as hung (its worker stopped, the case failed), per device kind: torch.compile's
#: first case of a cell compiles for tens of seconds on the CPU; a shorter ``--timeout`` leaves what it stops unchecked
TIMEOUT = {"cpu": 300.0, "cuda": 600.0}
#: seconds the collection of the cases may take (it loads every selected backend)
COLLECT_TIMEOUT = 600.0
#: CUDA errors after which a context is unusable: the worker is replaced before the next case
POISONED = ("illegal memory access", "unspecified launch failure", "misaligned address", "illegal instruction",
            "CUDA_ERROR_ILLEGAL", "cudaErrorIllegal", "cudaErrorLaunchFailure")


@dataclass
class Outcome:
    """What one run of the suite did."""

    rows: list = field(default_factory=list)  # the result rows (seqbench.conformance.plugin)
    passed: int = 0
    failed: list = field(default_factory=list)  # (test id, first line of the failure)
    skipped: Counter = field(default_factory=Counter)  # reason -> cases
    known: int = 0  # known failures (strict xfails) that failed as expected
    planned: int = 0
    unchecked: list = field(default_factory=list)  # cases (collected dicts) a --timeout stopped, each with "reason"
    interrupted: str = ""  # where an interrupted run stopped
    log: Path | None = None

    @property
    def checked(self) -> bool:
        """Whether any case came to a verdict (not so when every case was skipped)."""
        return bool(self.passed or self.failed or self.known)

    @property
    def ok(self) -> bool:
        return self.checked and not self.failed and not self.unchecked and not self.interrupted

    def add(self, other: "Outcome") -> None:
        """Count ``other`` (another run's outcome: a shard's) into this one."""
        self.rows += other.rows
        self.passed += other.passed
        self.failed += other.failed
        self.skipped.update(other.skipped)
        self.known += other.known
        self.planned += other.planned
        self.unchecked += other.unchecked


def options(sel: Selection) -> list[str]:
    """The conformance plugin's options (``--seqbench-*``) that narrow the suite to ``sel``."""
    named = [f"--seqbench-{name}={','.join(chosen)}" for name, chosen in (
        ("backend", sel.backends), ("device", sel.devices), ("dtype", sel.dtypes), ("op", sel.ops)) if chosen]
    return named + ["--seqbench-large"] * sel.large + ["--seqbench-quick"] * sel.quick


def run_suite(sel: Selection, results_dir: Path, log: Path, title: str = "conformance",
              exitfirst: bool = False, timeout: float | None = None) -> Outcome:
    """Run the suite narrowed to ``sel`` in worker processes; rows merged into ``results_dir``, pytest's output
    appended to ``log``; returns the :class:`Outcome`."""
    outcome = Outcome(log=log)
    log.parent.mkdir(parents=True, exist_ok=True)
    base = ["--pyargs", "seqbench.conformance", *QUIET, "-ra", *options(sel)]
    with console.phase(title) as bar, tempfile.TemporaryDirectory(prefix="seqbench-check-") as scratch:
        run = _Run(base, Path(scratch), log, bar, outcome, timeout, exitfirst, Path(results_dir))
        try:
            run.all()
        except KeyboardInterrupt:
            run.interrupt()
        finally:
            run.save()
        bar.done(outcome.interrupted.split(";")[0] if outcome.interrupted else
                 f"{outcome.passed} passed, {len(outcome.failed)} failed, {sum(outcome.skipped.values())} skipped"
                 + (f", {len(outcome.unchecked)} not checked" if outcome.unchecked else ""))
    return outcome


class _Run:
    """One run of the suite: collect, then run the cases group by group, each group in workers."""

    def __init__(self, base, scratch, log, bar, outcome, timeout, exitfirst, results_dir):
        self.base, self.scratch, self.log, self.bar, self.outcome = base, scratch, log, bar, outcome
        self.timeout, self.exitfirst, self.results_dir = timeout, exitfirst, results_dir
        self.cases: dict = {}  # id -> what the worker said of it when collecting
        self.left: list = []  # ids not yet run, in order
        self.unsaved: list = []  # rows not yet merged into the results file
        self.worker = None
        self.current = None  # the case the worker last started, and when it was seen to start
        self.started = 0.0
        self.last_status = "not started"

    def all(self) -> None:
        collected = self._collect()
        self.cases = {c["id"]: c for c in collected}
        self.left = list(self.cases)
        self.outcome.planned = len(self.left)
        self.bar.total(len(self.left))
        for group in _groups(collected):
            self._group(group)
            self.save()
            if self.exitfirst and self.outcome.failed:
                break

    def _collect(self) -> list:
        events = self.scratch / "collect.jsonl"
        self.worker = self._spawn(events, None, ["--collect-only", "-q"])
        try:
            code = self.worker.wait(timeout=COLLECT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._stop()
            raise ValueError(f"collecting the conformance cases did not finish in {COLLECT_TIMEOUT:g} s: a backend "
                             f"hangs while it loads? see {self.log}") from None
        found = [e["collected"] for e in _read(events) if "collected" in e]
        if not found:
            raise ValueError(f"collecting the conformance cases failed ({_status(code)}): a backend crashes while "
                             f"it loads? see {self.log}")
        return found[0]

    def _group(self, ids: list) -> None:
        """Run ``ids`` (one group) in workers until each has an outcome: a new worker after a case that
        crashed, hung or poisoned CUDA."""
        left = list(ids)
        while left:
            before = len(left)
            left = self._worker(left)
            if len(left) == before:  # the worker ran nothing: it cannot start, so none of these will run
                for case_id in left:
                    self._fault(case_id, f"not run: a worker process exited ({self.last_status}) before it; "
                                         f"see {self.log}")
                return

    def _worker(self, ids: list) -> list:
        """One worker over ``ids``; returns the ids it did not reach."""
        events = self.scratch / f"events-{time.monotonic_ns()}.jsonl"
        id_file = self.scratch / f"ids-{time.monotonic_ns()}.txt"
        id_file.write_text("\n".join(ids))
        backends = {self.cases[i].get("backend") for i in ids}
        only = f"--seqbench-backend={backends.pop()}" if len(backends) == 1 else None  # a GPU group: load just it
        self.worker = self._spawn(events, id_file, [only] if only else [], drop_backends=bool(only))
        left, position, reason = list(ids), 0, ""
        while True:
            lines, position = _read_from(events, position)
            if self._take(lines, left):
                reason = "poisoned"
            code = self.worker.poll()
            if code is not None or reason:
                break
            if self.current and time.monotonic() - self.started > self._limits(self.current)[0]:
                reason = "timeout"
                break
            time.sleep(0.02)
        if code is None:
            self._stop()
        code = self.worker.wait()
        self._take(_read_from(events, position)[0], left)  # what it said before it went
        self.last_status = _status(code)
        if self.current in left and reason != "poisoned":  # (after a poisoned case the next one is innocent)
            left.remove(self.current)
            limit, hung_after = self._limits(self.current)
            if reason == "timeout" and limit < hung_after:  # stopped by the setting before it counts as hung
                self._unchecked(self.current, f"timed out after {limit:g} s (--timeout, under the {hung_after:g} s "
                                              "after which a case counts as hung): not checked")
            else:
                self._fault(self.current, f"timed out after {limit:g} s (--timeout); the worker was stopped"
                            if reason == "timeout" else f"crashed its worker process ({self.last_status})")
        self.current = None
        return left

    def _take(self, events: list, left: list) -> bool:
        """Follow a worker's events: the case it started (and when), the cases it finished (out of ``left``);
        whether a finished case's message says CUDA is poisoned."""
        poisoned = False
        for event in events:
            if "start" in event:
                self.current, self.started = event["start"], time.monotonic()
            elif "done" in event and event["done"] in left:
                left.remove(event["done"])
                self._done(event)
                self.current = None
                poisoned |= any(p in event.get("message", "") for p in POISONED)
        return poisoned

    def _spawn(self, events: Path, ids: Path | None, extra: list, drop_backends: bool = False) -> subprocess.Popen:
        base = [o for o in self.base if not (drop_backends and o.startswith("--seqbench-backend="))]
        args = [sys.executable, "-m", "seqbench.jobs.worker", str(events), *(["--ids", str(ids)] if ids else []), "--",
                *base, *extra]
        with open(self.log, "a") as log:
            log.write(f"$ {' '.join(args)}\n")
            log.flush()
            return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)  # its own process group: stopped as one

    def _stop(self) -> None:
        try:
            os.killpg(self.worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _limits(self, case_id: str) -> tuple[float, float]:
        """``(seconds the case may take, seconds after which it counts as hung)``: ``--timeout``, else the second."""
        hung_after = TIMEOUT.get(str(self.cases[case_id].get("device", "cpu")).split(":")[0], TIMEOUT["cpu"])
        return self.timeout or hung_after, hung_after

    def _done(self, event: dict) -> None:
        out, case_id = self.outcome, event["done"]
        self.left.remove(case_id)
        self.unsaved += event.get("rows", [])
        out.rows += event.get("rows", [])
        if event["outcome"] == "passed":
            out.passed += 1
        elif event["outcome"] == "skipped":
            out.skipped[event["message"]] += 1
        elif event["outcome"] == "xfailed":
            out.known += 1
        else:
            out.failed.append((_short(case_id), event.get("message") or "failed"))
        self.bar.advance(item=_short(case_id))

    def _fault(self, case_id: str, why: str) -> None:
        """A case that took its worker down (or was never reached): failed, with a row saying why."""
        case = self.cases[case_id]
        self.left.remove(case_id)
        self.outcome.failed.append((_short(case_id), why))
        if case.get("kind") in ("forward", "vjp"):
            row = results.fault_row(case, why)
            self.unsaved.append(row)
            self.outcome.rows.append(row)
        self.bar.advance(item=_short(case_id))

    def _unchecked(self, case_id: str, why: str) -> None:
        """A case a setting stopped before its verdict: no row (it neither passed nor failed), listed with why."""
        self.left.remove(case_id)
        self.outcome.unchecked.append(dict(self.cases[case_id], reason=why))
        self.bar.advance(item=_short(case_id))

    def interrupt(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self._stop()
            self.worker.wait()
        where = f" in {_short(self.current)}" if self.current else ""
        unreached = sum(gives_row(self.cases[i]) for i in self.left)
        self.outcome.interrupted = (f"interrupted{where} after {self.outcome.planned - len(self.left)} of "
                                    f"{self.outcome.planned} cases; rows checked so far are kept, the "
                                    f"{unreached} cases not reached are listed in {self._unchecked_path()}")

    def save(self) -> None:
        """Merge the new rows, and the cases not checked, into the results folder (locked, atomic)."""
        rows, self.unsaved = self.unsaved, []
        unreached = [dict(self.cases[i], reason=results.NOT_REACHED) for i in self.left
                     if gives_row(self.cases[i])] if self.outcome.interrupted else []
        unreached += [case for case in self.outcome.unchecked if gives_row(case)]
        if rows or unreached or self._unchecked_path().exists():
            results.save_conformance(self.results_dir, rows, unreached)

    def _unchecked_path(self) -> Path:
        return results.unchecked_path(self.results_dir)


def gives_row(case: dict) -> bool:
    """Whether a case gives a result row when it runs (a forward or gradient check that is not skipped): the
    cases not checked that a later run's rows remove from ``<machine>.unchecked.json``."""
    return case.get("kind") in ("forward", "vjp") and not case.get("skip")


def _groups(collected: list) -> list[list]:
    """Case ids by worker: every CPU case in one, each backend's GPU cases in one of their own."""
    groups: dict = {}
    for case in collected:
        device = str(case.get("device") or "cpu")
        key = "cpu" if device.split(":")[0] == "cpu" else (case.get("backend"), "gpu")
        groups.setdefault(key, []).append(case["id"])
    return list(groups.values())


def _read(path: Path) -> list:
    return _read_from(path, 0)[0]


def _read_from(path: Path, position: int) -> tuple[list, int]:
    """Complete JSON lines of ``path`` after byte ``position``, and the position after them."""
    try:
        with open(path, "rb") as f:
            f.seek(position)
            data = f.read()
    except FileNotFoundError:
        return [], position
    end = data.rfind(b"\n") + 1
    return [json.loads(line) for line in data[:end].splitlines() if line.strip()], position + end


def _status(code) -> str:
    if code is None:
        return "still running"
    if code < 0:
        name = signal.Signals(-code).name
        return f"killed by {name}" + (" (out of host memory? the kernel's OOM killer sends it)"
                                      if name == "SIGKILL" else "")
    return f"exit status {code}"


def _short(case_id: str) -> str:
    return case_id.rpartition("::")[2]


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
        cells[key] = (ok and r["passed"], max(err, _number(r.get("max_err_eps"))), max(ratio, _number(r.get("ratio"))))
    body = [[op] + [_cell(*cells[(op, c)]) if (op, c) in cells else "-" for c in columns] for op in ops]
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
            worst = max(_number(r.get("ratio")) for r in mine)
            line.append(f"{'ok' if passed == len(mine) else 'FAIL'} {passed}/{len(mine)}"
                        + (f" x{worst:.2g}" if worst < float("inf") else " (a case crashed or hung)"))
        table.append(line)
    return console.table(table, ["backend"] + devices) if table else "no conformance results"


def _number(value) -> float:
    """A row's error or ratio; a case that could not be judged (``None``: it crashed or hung) is infinite."""
    return float("inf") if value is None else float(value)


def _cell(ok: bool, err: float, ratio: float) -> str:
    if err == float("inf"):
        return "FAIL (no verdict: see below)"
    return f"{'ok' if ok else 'FAIL'} {err:.3g} x{ratio:.2g}"


def problems(outcome: Outcome, limit: int = 8) -> list[str]:
    """Lines on what did not pass: failures (first lines), then skip reasons grouped, most common first."""
    lines = [f"FAILED {case}: {message}" for case, message in outcome.failed[:limit]]
    if len(outcome.failed) > limit:
        lines.append(f"... and {len(outcome.failed) - limit} more failures (see {outcome.log})")
    lines += [f"NOT CHECKED {_short(case['id'])}: {case['reason']}" for case in outcome.unchecked[:limit]]
    if len(outcome.unchecked) > limit:
        lines.append(f"... and {len(outcome.unchecked) - limit} more cases not checked")
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
    for line in problems(outcome, limit=8 if outcome.checked else max(len(outcome.skipped), 1)):
        print(line, file=file)
    if outcome.interrupted:
        print(f"{outcome.interrupted}; run the same command again to check them", file=file)
    elif outcome.unchecked:
        print(f"{len(outcome.unchecked)} cases stopped by --timeout have no verdict and no result row; they are "
              f"listed in {results.unchecked_path(results_dir)}: check them with a longer --timeout, or none",
              file=file)
    elif not outcome.checked:
        skipped = sum(outcome.skipped.values())
        print(f"nothing was checked: all {skipped} cases of this selection were skipped here (why: above)" if skipped
              else "nothing was checked: no case matches this selection", file=file)
    print(f"results: {results_dir}/   pytest's output: {outcome.log}", file=file)
