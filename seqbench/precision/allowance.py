"""What the tolerance model allows at the recurrent conformance shape, kept as a committed results file.

The README's tolerance table is :func:`render` of ``results/tolerance/<machine>.json``, which :func:`compute`
wrote on the machine it names. It is never recomputed on the reader's host: the faithful implementation's
float32 and float64 errors depend on the order in which the host's BLAS sums (two x86-64 CPUs differ in the
second digit). :func:`disagreements` compares another host's figures with the committed ones within
:data:`AGREEMENT`. Regenerate the file, on the machine it names, with::

    SEQBENCH_MACHINE=cpu-2core-x86_64 python -m seqbench.precision.allowance
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np

from seqbench import catalog
from seqbench.precision import calibration
from seqbench.results import records

OP = "lstm"
SHAPE = {"T": 32, "B": 8, "I": 16, "H": 32}

#: how far apart two hosts' figures may be. Another summation order is another draw of the same rounding
#: noise, and over input seeds 0-7 the worst leaf's faithful float32 error spans at most 1.5x (max) and
#: 1.25x (l2) (``tests/precision/test_allowance.py`` measures it); a budget is a multiple of it, a cap
#: depends on no rounding at all
AGREEMENT = 2.0


def compute() -> dict:
    """The table's figures on this host (:func:`calibration.summary`), with the machine they were computed on."""
    return {
        "about": "What the tolerance model allows at the recurrent conformance shape, as relative errors; "
                 "the README's tolerance table (seqbench.precision.allowance renders and regenerates it)",
        "machine": records.machine_name(),
        "cpu": records.cpu_name(),
        "blas": _blas(),
        "numpy_version": np.__version__,
        "date": datetime.date.today().isoformat(),
        "op": OP,
        "shape": SHAPE,
        "rows": calibration.summary(catalog.get(OP), SHAPE),
    }


def _blas() -> str:
    """The BLAS NumPy was built with: its summation order is what differs between hosts."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # NumPy before 1.26 prints its configuration only
        return "unknown"
    return f"{blas['name']} {blas.get('version', '')}".strip()


def render(table: dict) -> str:
    """The README's Markdown table of ``table`` (as :func:`compute` returns it or a committed file holds it)."""

    def pair(row, kind, what):
        return f"{row[f'{kind} l2 {what}']:.2g} / {row[f'{kind} max {what}']:.2g}"

    lines = ["| precision | outputs: faithful l2 / max | outputs: budget l2 / max | outputs: cap "
             "| gradients: faithful l2 / max | gradients: budget l2 / max | gradients: cap |",
             "|---|---|---|---|---|---|---|"]
    for row in table["rows"]:
        lines.append(f"| {row['precision']} | {pair(row, 'forward', 'faithful')} | {pair(row, 'forward', 'budget')} "
                     f"| {row['forward cap']:.2g} | {pair(row, 'vjp', 'faithful')} | {pair(row, 'vjp', 'budget')} "
                     f"| {row['vjp cap']:.2g} |")
    return "\n".join(lines)


def disagreements(committed: dict, here: dict, factor: float = AGREEMENT) -> list[str]:
    """Every figure of ``here`` more than ``factor`` times above or below the same figure of ``committed``
    (and every one not computed here), one line each; empty when they agree."""
    rows = {row["precision"]: row for row in here["rows"]}
    found = []
    for row in committed["rows"]:
        mine = rows.get(row["precision"])
        if mine is None:
            found.append(f"{row['precision']}: not computed here")
            continue
        for name, value in row.items():
            if name == "precision":
                continue
            if name not in mine:
                found.append(f"{row['precision']} {name}: not computed here")
            elif not value / factor <= mine[name] <= value * factor:
                found.append(f"{row['precision']} {name}: {mine[name]:.3g} here, {value:.3g} committed "
                             f"(more than {factor:g}x apart)")
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seqbench.precision.allowance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="the file to write (default: results/tolerance/<machine>.json)")
    args = parser.parse_args(argv)
    table = compute()
    out = args.out or Path("results") / "tolerance" / f"{table['machine']}.json"
    records.write_atomic(out, json.dumps(table, indent=1) + "\n")
    print(f"{out} ({table['cpu']}, {table['blas']}):\n{render(table)}")


if __name__ == "__main__":
    main()
