"""``seqbench probe``: the questions backends ask of the libraries under them, measured here
(:class:`~seqbench.backends.protocol.Probe`: why an error is what it is, which setting is fastest).

Every available backend (or those given) names its probes per device; each probe runs, its rows and its
answer are printed, and the result is filed in ``<results-dir>/<machine>.probes.json``: one entry per
machine, backend, device and probe, replaced when probed again, every other entry kept (a narrowed run never
erases another backend's findings). ``seqbench report`` shows them under "What the probes found".
"""

from __future__ import annotations

import datetime
import traceback

from seqbench import console
from seqbench.backends import registry
from seqbench.results import probes as probe_files, records
from seqbench.selection import Selection, require_here

SCHEMA = 1


def measure(backend, device: str, probe) -> dict:
    """One probe of ``backend`` on ``device``, as a file entry (a probe that raises is an entry saying so)."""
    entry = {"schema": SCHEMA, "machine": records.machine_name(), "backend": backend.name, "device": device,
             "device_name": backend.device_name(device), "probe": probe.name, "question": probe.question,
             "versions": backend.versions(),
             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    try:
        rows = probe.measure(device)
        return {**entry, "rows": rows, "answer": probe.answer(rows), "ok": True}
    except Exception as error:  # a probe is a diagnostic: its failure is a finding, the others still run
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return {**entry, "rows": [], "answer": f"the probe failed: {detail}", "ok": False}


def main(sel: Selection, results_dir) -> int:
    """Every probe of the selected backends on the selected devices here; 0 when all ran, 1 when one failed."""
    statuses = [s for s in registry.backends() if s.available and sel.wants("backends", s.name)]
    require_here(sel.devices, {d for s in statuses for d in s.devices})
    planned = [(s.name, device, probe) for s in statuses for device in s.devices if sel.wants("devices", device)
               for probe in registry.backend(s.name).probes(device)]
    if not planned:
        print("seqbench probe: no backend here has a probe on these devices (the probes ask of GPU libraries: "
              "cuDNN, cuBLAS, XLA on CUDA)")
        return 0
    entries = []
    with console.phase("probes", total=len(planned)) as bar:
        for name, device, probe in planned:
            entries.append(measure(registry.backend(name), device, probe))
            bar.advance(item=f"{name} {device} {probe.name}")
    for entry in entries:
        print(f"\n{entry['backend']} on {entry['device']} ({entry['device_name']}): {entry['question']}")
        if entry["rows"]:
            print(console.table([[r.get("case", ""), r["setting"], probe_files.figure(r["value"]), r["unit"]]
                                 for r in entry["rows"]], ["case", "setting", "value", "unit"]))
        print(f"Finding: {entry['answer']}")
    print(f"\nProbes: {probe_files.save(results_dir, entries)}")
    return 0 if all(e["ok"] for e in entries) else 1
