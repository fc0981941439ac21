"""Results of plug-in backends with asv's samples kept, written as asv and the conformance suite write them.

:func:`write` takes what each plug-in measured — per (backend, pass, shape) a list of sample times — and how
each conformed, and writes ``<root>/<machine>/`` (asv results with ``samples`` and ``stats_*``, computed by
asv's own statistics) and ``<root>/conformance/<machine>.jsonl``. Tests build the cases they need: two
plug-ins within each other's noise, one twice as slow, one fast but inaccurate, one whose backward is faster
than its forward.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

from asv_runner.statistics import compute_stats

PARAM_NAMES = ["backend", "device", "dtype", "seq_len", "hidden", "batch"]
COMMIT = "feedfacefeedfacefeedfacefeedfacefeedface"


def samples(median: float, spread: float = 0.02, n: int = 10) -> list[float]:
    """``n`` samples around ``median``, evenly spread by ±``spread`` (relative)."""
    return [median * (1 + spread * (2 * i / (n - 1) - 1)) for i in range(n)]


def write(root: Path, runs: dict, checks: dict, machine: str = "plugbox", device: str = "cpu",
          op: str = "lstm") -> Path:
    """``runs``: (backend, kind, T, H, B) -> sample times (s); ``checks``: backend -> (passed, max_err_eps, ratio)."""
    root = Path(root)
    backends = sorted({k[0] for k in runs})
    shapes = [sorted({k[i] for k in runs}) for i in (2, 3, 4)]
    params = [[repr(b) for b in backends], [repr(device)], ["'float32'"], *[[str(v) for v in s] for s in shapes]]
    results, listed = {}, {}
    for kind in sorted({k[1] for k in runs}):
        columns = {"result": [], "samples": [], **{f"stats_{s}": [] for s in ("ci_99_a", "ci_99_b", "q_25",
                                                                             "q_75", "number", "repeat")}}
        for b, T, H, B in itertools.product(backends, *shapes):
            got = runs.get((b, kind, T, H, B))
            result, stats = compute_stats(got, 1) if got else (math.nan, None)
            columns["result"].append(result)
            columns["samples"].append(got)
            for s in ("ci_99_a", "ci_99_b", "q_25", "q_75", "number", "repeat"):
                columns[f"stats_{s}"].append(stats[s] if stats else None)
        name = f"bench_recurrent.{op}.time_{kind}"
        results[name] = [columns["result"], params, "v1", 1700000000000, 1.0,
                         *[columns[f"stats_{s}"] for s in ("ci_99_a", "ci_99_b", "q_25", "q_75", "number",
                                                           "repeat")], columns["samples"]]
        listed[name] = {"name": name, "param_names": PARAM_NAMES, "params": params, "type": "time",
                        "unit": "seconds", "version": "v1"}
    folder = root / machine
    folder.mkdir(parents=True, exist_ok=True)
    info = {"arch": "x86_64", "cpu": "Test CPU", "num_cpu": "4", "os": "Linux", "ram": "1000"}
    (folder / "machine.json").write_text(json.dumps({"machine": machine, **info, "version": 1}))
    (folder / f"{COMMIT[:8]}-existing-py.json").write_text(json.dumps({
        "commit_hash": COMMIT, "env_name": "existing-py", "date": 1700000000000, "python": "3.11",
        "params": {"machine": machine, "python": "3.11", **info}, "requirements": {}, "env_vars": {},
        "result_columns": ["result", "params", "version", "started_at", "duration", "stats_ci_99_a",
                           "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples"],
        "results": results, "durations": {}, "version": 2}))
    (root / "benchmarks.json").write_text(json.dumps({**listed, "version": 2}))
    rows = [{"test_id": f"test_{kind}[{op}-{b}-{device}-float32]", "machine": machine, "device_name": "Test CPU",
             "math_mode": "ieee", "time": "2025-01-01T00:00:00+00:00", "kind": kind, "backend": b,
             "device": device, "dtype": "float32", "op": op, "variant": "notes", "passed": passed,
             "max_err_eps": err, "err_eps": err, "ratio": ratio, "budget_eps": 25.0, "worst": "y"}
            for b, (passed, err, ratio) in checks.items() for kind in ("forward", "vjp")]
    (root / "conformance").mkdir(exist_ok=True)
    (root / "conformance" / f"{machine}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
