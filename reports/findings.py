"""The report's "What the probes found": each probe a backend asked on a machine (``seqbench probe``,
:mod:`seqbench.results.probes`), its question, its answer and the rows it measured.

A probe explains a number the rest of the report states (why cuDNN's float32 error is what it is, which loop
setting is fastest), so its section sits beside the conformance tables and the equations each backend
computes.
"""

from __future__ import annotations

import pandas as pd

from seqbench.results import probes


def load(files, skipped: list) -> list[dict]:
    """The entries of every probe file (a file that is not one goes to ``skipped`` with why)."""
    entries = []
    for file in files:
        try:
            entries += probes.read(file)
        except ValueError as error:
            skipped.append((file, str(error)))
    return sorted(entries, key=lambda e: (e["machine"], e["backend"], e["device"], e["probe"]))


def blocks(entries: list[dict]) -> list[tuple]:
    if not entries:
        return []
    out = [("h2", "What the probes found"), ("p", (
        "Measurements under several settings that say why a backend's numbers are what they are (`seqbench probe`; "
        "each backend declares its own). Errors are relative l2 errors in float32 eps against float64 of the same "
        "float32 values; times are a diagnostic (the median of a few calls), the benchmarks above are asv's."))]
    for e in entries:
        out += [("h3", f"{e['backend']} on {e['device']} ({e.get('device_name') or 'unknown device'}), "
                       f"{e['machine']}: {e['question']}"),
                ("p", f"Finding: {e['answer']} (measured {e.get('date', '?')}; "
                      + ", ".join(f"{k} {v}" for k, v in (e.get("versions") or {}).items()) + ")")]
        if e.get("rows"):
            out.append(("table", pd.DataFrame([{"case": r.get("case", ""), "setting": r["setting"],
                                                "value": probes.figure(r["value"]), "unit": r["unit"]}
                                               for r in e["rows"]])))
    return out
