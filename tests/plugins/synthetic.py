"""A small synthetic results tree with known answers, for tests and demos of the report.

Two machines in asv's results format plus conformance JSON lines:

* ``gpubox`` (an H100), device ``cuda``: ``cupy`` is fastest but fails LSTM
  conformance (so it must be dropped for LSTM), ``torch-compile`` has times
  but no conformance results (dropped: not checked); among the rest ``torch``
  wins at B=32 (1.2x over ``jax``) and ``jax`` wins at B=8 (1.25x over
  ``torch``); ``jax`` has no time at T=1024, H=256, B=32 (benchmark skipped).
  For GRU ``cupy`` conforms but is slowest.
* ``cpubox`` (4 x86 cores), device ``cpu``: ``numpy`` wins at T=64 (2x over
  ``torch``), ``torch`` wins at longer T (1.5x over ``numpy``).

Time model: ``factor(backend, shape) * 1e-9 * T * H**2 * B / 8`` seconds.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

GRID = {"seq_len": [64, 256, 1024], "hidden": [128, 256], "batch": [8, 32]}
PARAM_NAMES = ["backend", "device", "dtype", "seq_len", "hidden", "batch"]
MACHINES = {
    "gpubox": {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3",
               "backends": ["cupy", "jax", "torch", "torch-compile"],
               "info": {"arch": "x86_64", "cpu": "Intel Xeon Platinum 8480+", "num_cpu": "16", "os": "Linux",
                        "ram": "131072000"}},
    "cpubox": {"device": "cpu", "device_name": "AMD EPYC 7R13", "backends": ["numpy", "torch"],
               "info": {"arch": "x86_64", "cpu": "AMD EPYC 7R13", "num_cpu": "4", "os": "Linux", "ram": "16384000"}},
}
OPS = {"LSTM": "lstm", "GRU": "gru"}
UNCHECKED = {"torch-compile"}
FAILS = {("cupy", "lstm")}
MEASURED_PEAK = {"cpubox": 400.0}  # GFLOP/s of a float32 matmul (gpubox keeps the datasheet figures)
LESS_ACCURATE = {"jax": 4.0}  # conforms, at 4x a faithful implementation's error: an accuracy outlier


def factor(machine: str, backend: str, op: str, T: int, H: int, B: int) -> float | None:
    """Relative time of a backend at a shape (None: the benchmark was skipped)."""
    if machine == "cpubox":
        return {"numpy": 1.0 if T == 64 else 3.0, "torch": 2.0}[backend]
    if backend == "jax" and (T, H, B) == (1024, 256, 32):
        return None
    return {"cupy": 0.5 if op == "lstm" else 2.0, "torch-compile": 0.8, "jax": 1.2,
            "torch": 1.0 if B == 32 else 1.5}[backend]


def time_s(machine: str, backend: str, op: str, T: int, H: int, B: int) -> float | None:
    f = factor(machine, backend, op, T, H, B)
    return None if f is None else f * 1e-9 * T * H * H * B / 8


def write(root: Path, commit: str = "0123456789abcdef0123456789abcdef01234567", date: int = 1700000000000) -> Path:
    """Write the synthetic tree under ``root`` (asv results + ``conformance/*.jsonl``); returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    benchmarks = {}
    backends = sorted({b for spec in MACHINES.values() for b in spec["backends"]})
    devices = sorted({spec["device"] for spec in MACHINES.values()})
    # Like a real suite, every machine runs the same parameter grid; what does not apply is NaN (skipped).
    params = [[repr(b) for b in backends], [repr(d) for d in devices], ["'float32'"],
              *[[str(v) for v in GRID[k]] for k in PARAM_NAMES[3:]]]
    for machine, spec in MACHINES.items():
        results = {}
        for cls, op in OPS.items():
            times, mems = [], []
            for b, dev, T, H, B in itertools.product(backends, devices, *GRID.values()):
                runs = b in spec["backends"] and dev == spec["device"]
                t = time_s(machine, b, op, T, H, B) if runs else None
                times.append(t)
                mems.append(None if t is None else float(4 * T * H * B * 8))
            for method, values, kind, unit in (("time_forward", times, "time", "seconds"),
                                               ("peakmem_forward", mems, "peakmemory", "bytes")):
                name = f"bench_recurrent.{cls}.{method}"
                results[name] = [[float("nan") if v is None else v for v in values], params, "v1", date, 1.0]
                benchmarks[name] = {"name": name, "param_names": PARAM_NAMES, "params": params, "type": kind,
                                    "unit": unit, "version": "v1"}
        if machine in MEASURED_PEAK:  # bench_peak: this machine's own matmul rate, the roofline's peak
            name, peak_params = "bench_peak.matmul.track_gflops", [[repr(d) for d in devices], ["'float32'"]]
            rates = [MEASURED_PEAK[machine] if d == spec["device"] else float("nan") for d in devices]
            results[name] = [rates, peak_params, "v1", date, 1.0]
            benchmarks[name] = {"name": name, "param_names": ["device", "dtype"], "params": peak_params,
                                "type": "track", "unit": "GFLOP/s", "version": "v1"}
        mdir = root / machine
        mdir.mkdir(exist_ok=True)
        (mdir / "machine.json").write_text(json.dumps({"machine": machine, **spec["info"], "version": 1}))
        data = {"commit_hash": commit, "env_name": "existing-py", "date": date,
                "params": {"machine": machine, "python": "3.11", **spec["info"]}, "python": "3.11",
                "requirements": {}, "env_vars": {},
                "result_columns": ["result", "params", "version", "started_at", "duration"],
                "results": results, "durations": {}, "version": 2}
        (mdir / f"{commit[:8]}-existing-py.json").write_text(json.dumps(data))
        write_conformance(root / "conformance" / f"{machine}.jsonl", machine, spec)
    (root / "benchmarks.json").write_text(json.dumps({**benchmarks, "version": 2}))
    return root


def write_conformance(path: Path, machine: str, spec: dict) -> None:
    rows = []
    for backend, op, kind, T in itertools.product(spec["backends"], OPS.values(), ("forward", "vjp"), (5, 32, 256)):
        if backend in UNCHECKED:
            continue
        bad = (backend, op) in FAILS and T == 256
        shape = {"T": T, "B": 4, "I": 16, "H": 32}
        err = 5000.0 if bad else 2.0 * (1 + T / 32) * (2 if kind == "vjp" else 1)
        rows.append({
            "test_id": f"test_{kind}[{op}-{backend}-{spec['device']}-float32-T{T}-B4-I16-H32]",
            "machine": machine, "device_name": spec["device_name"], "math_mode": "ieee",
            "versions": f"{backend}=1.0" + ("" if backend == "numpy" else ";numpy=2.0"),
            "time": "2025-01-01T00:00:00+00:00", "kind": kind,
            "backend": backend, "device": spec["device"], "dtype": "float32", "op": op, "variant": "notes",
            "shape": str(shape), **shape, "passed": not bad, "max_err_eps": err, "err_eps": err,
            "control_eps": 2.0, "ratio": err / 2.0 if bad else LESS_ACCURATE.get(backend, 1.0),
            "budget_eps": 600.0, "worst": "C_T" if bad else "y",
        })
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
