"""What the ``seqbench`` command prints: one progress bar per phase, aligned tables, durations.

Progress bars are rich's. On an interactive terminal a bar shows the count,
the elapsed time and the current item while a phase runs; in a log (output
not a terminal, as in CI) each phase prints one line when it ends, so a log
stays short. Raw tool output (pytest's, asv's) goes to log files whose paths
the commands print at the end.
"""

from __future__ import annotations

import contextlib
import os
import sys
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


#: the exit status of a command stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it)
INTERRUPTED = 130


class Phase:
    """One running phase: ``advance``/``update`` move its bar, ``done`` sets its closing note."""

    def __init__(self, progress: Progress, task):
        self._progress, self._task = progress, task

    def total(self, total: float) -> None:
        self._progress.update(self._task, total=total)

    def advance(self, steps: float = 1, item: str = "") -> None:
        self._progress.update(self._task, advance=steps, item=_short(item))

    def update(self, completed: float, item: str = "") -> None:
        self._progress.update(self._task, completed=completed, item=_short(item))

    def done(self, note: str) -> None:
        task = self._progress.tasks[0]
        self._progress.update(self._task, total=task.total or task.completed or 1,
                              completed=task.total or task.completed or 1, item=escape(note))


@contextmanager
def phase(description: str, total: float | None = None, counts: bool = True):
    """A progress bar for one phase, drawn on the standard output as it is when the phase starts, so
    output sent to a log inside the phase (:func:`to_log`) does not take the bar with it."""
    columns = [TextColumn("{task.description:<24}"), BarColumn(bar_width=24)]
    columns += [MofNCompleteColumn()] if counts else [TextColumn("{task.percentage:>4.0f}%")]
    columns += [TimeElapsedColumn(), TextColumn("{task.fields[item]}")]
    with _terminal() as stream:
        width = None if stream.isatty() else 120  # a log is not 80 columns narrow
        progress = Progress(*columns, console=Console(file=stream, highlight=False, width=width), transient=False,
                            redirect_stdout=False, redirect_stderr=False)
        with progress:
            yield Phase(progress, progress.add_task(description, total=total, item=""))


@contextmanager
def _terminal():
    """The standard output as a stream of its own (a duplicate of its file descriptor where it has one)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a stream without a descriptor (a test's capture)
        yield sys.stdout
        return
    sys.stdout.flush()
    stream = os.fdopen(os.dup(fd), "w", buffering=1, encoding=sys.stdout.encoding or "utf-8", errors="replace")
    try:
        yield stream
    finally:
        stream.close()


@contextmanager
def to_log(path):
    """Send the standard output and error of this process, Python's and C libraries' alike, to the file
    ``path`` (appended) until the block ends."""
    with open(path, "a", buffering=1) as log:
        saved = []
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                continue
            saved.append((fd, os.dup(fd)))
            os.dup2(log.fileno(), fd)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield log
        finally:
            log.flush()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


def _short(text: str, width: int = 60) -> str:
    """``text`` cut to ``width`` characters, its brackets escaped (a case id is not rich markup)."""
    return escape(text if len(text) <= width else text[: width - 1] + "…")


def table(rows: list[list], headers: list[str]) -> str:
    """Rows as aligned plain-text columns (two spaces apart), headers first."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def duration(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour)."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
