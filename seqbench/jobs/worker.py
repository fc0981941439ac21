"""A worker process of ``seqbench check``: it runs conformance cases and reports each one as it goes.

``python -m seqbench.jobs.worker EVENTS [--ids IDS] -- PYTEST_ARGS...`` runs the
conformance suite (``PYTEST_ARGS`` narrow it, ``--collect-only`` only
collects) and appends one JSON line to the file ``EVENTS`` per event:

* ``{"collected": [{"id", "backend", "device", "dtype", "op", "kind"}, ...]}``;
* ``{"start": id}`` before a case runs, ``{"done": id, "outcome", "message",
  "rows"}`` after (``rows``: its result rows);

with ``--ids`` (a file of test ids, one a line) it runs those cases only. A
case that kills the process, hangs or exhausts memory takes only this
process down: :mod:`seqbench.jobs.check` sees the last ``start`` without its
``done``, records that case as failed, and starts another worker for the
rest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

class Events:
    """The pytest plugin of a worker: keeps the selected cases, reports each."""

    def __init__(self, path: Path, ids: set | None):
        self.out = open(path, "a", buffering=1)
        self.ids = ids
        self.rows_seen = 0

    def emit(self, **event) -> None:
        self.out.write(json.dumps(event) + "\n")
        self.out.flush()

    def pytest_collection_modifyitems(self, config, items):
        if self.ids is None:
            return
        keep = [item for item in items if item.nodeid in self.ids]
        config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in self.ids])
        items[:] = keep

    def pytest_collection_finish(self, session):
        from seqbench.conformance.plugin import case_info

        self.emit(collected=[case_info(item) for item in session.items])

    def pytest_runtest_logstart(self, nodeid, location):
        self.emit(start=nodeid)

    def pytest_runtest_logreport(self, report):
        if not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return
        from seqbench.conformance.plugin import rows as case_rows

        rows = case_rows(self.session.config)
        new, self.rows_seen = rows[self.rows_seen:], len(rows)
        if hasattr(report, "wasxfail"):
            outcome, message = "xfailed", report.wasxfail
        elif report.skipped:
            longrepr = report.longrepr
            outcome, message = "skipped", (longrepr[2] if isinstance(longrepr, tuple) else str(longrepr))
            message = message.removeprefix("Skipped: ")
        else:
            outcome, message = report.outcome, "" if report.passed else first_line(report)
        self.emit(done=report.nodeid, outcome=outcome, message=message, rows=new)

    def pytest_sessionstart(self, session):
        self.session = session


def first_line(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else report.longreprtext
    return text.strip().splitlines()[0] if text.strip() else "failed"


def main(argv: list[str]) -> int:
    import pytest

    events, rest = Path(argv[0]), argv[1:]
    ids = None
    if rest[:1] == ["--ids"]:
        ids = set(Path(rest[1]).read_text().split("\n")) - {""}
        rest = rest[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return int(pytest.main(rest, plugins=[Events(events, ids)]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
