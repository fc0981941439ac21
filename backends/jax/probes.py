"""What the jax backend asks of XLA on a GPU (``seqbench probe``; see
:class:`~seqbench.backends.protocol.Probe`): which loop setting runs its ``lax.scan`` fastest.

A recurrent op is a loop of small steps, and on a GPU XLA's loop costs a launch of every step's kernels from
the host. The settings that could change that, each timed on the LSTM's forward pass at a gpu-grid shape
(float32, ``T`` 512, ``B`` 16, ``H`` 1024) in a fresh process (XLA reads its flags once, when it starts):

* the backend as it is (``lax.scan``, :data:`~seqbench.backends.jax.cells.UNROLL` steps an iteration);
* the scan unrolled 4 and 16 steps an iteration (fewer, larger iterations);
* XLA's command buffers for loops (``--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL``): the loop replayed
  from a CUDA graph with the trip count on the device;
* the initial states donated (``jax.jit(donate_argnums=...)``): XLA may write the final states into their
  buffers. A caller's inputs are its own in the protocol (conformance compares them, benchmarks call again
  with them), so the backend cannot donate them; the probe gives each call fresh copies, made untimed, to
  show what donation would be worth.

The rows are milliseconds a call (median of :data:`CALLS` after two warm-up calls, wall clock around the call
and ``block_until_ready``): a diagnostic beside asv's benchmarks, not one of them. On the CPU the same code
runs at a small shape (a dry run).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from seqbench.backends.protocol import Probe, fresh_process

CALLS = 20
UNIT = "ms a call"
#: setting -> (environment added, options of the timed call)
SETTINGS = {
    "as the backend runs it": ({}, {}),
    "scan unrolled 4 steps": ({}, {"unroll": 4}),
    "scan unrolled 16 steps": ({}, {"unroll": 16}),
    "loops as CUDA graphs (XLA command buffers)": (
        {"XLA_FLAGS": "--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL --xla_gpu_graph_min_graph_size=1"}, {}),
    "initial states donated": ({}, {"donate": True}),
}
BASE = "as the backend runs it"


def shape(device: str) -> dict:
    """The probe's LSTM shape: a gpu-grid one on a GPU, a small one on the CPU."""
    if device.startswith("cuda"):
        return {"T": 512, "B": 16, "I": 1024, "H": 1024}
    return {"T": 32, "B": 8, "I": 64, "H": 64}


def time_lstm(device: str, unroll: int | None = None, donate: bool = False) -> float:
    """Milliseconds a call of the jitted LSTM forward on ``device`` (median of :data:`CALLS`)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax
    import numpy as np

    from seqbench import catalog

    from . import cells

    if unroll:
        cells.UNROLL = unroll
    target = jax.devices("gpu" if device.startswith("cuda") else "cpu")[0]
    inputs = catalog.get("lstm").inputs(shape(device), seed=0)
    arrays = jax.device_put({k: jax.tree.map(lambda a: np.asarray(a, np.float32), inputs[k])
                             for k in ("x", "params", "h0", "c0")}, target)
    step = jax.jit(lambda x, params, h0, c0: cells.lstm(x, params, h0, c0),
                   donate_argnums=(2, 3) if donate else ())
    states = [(arrays["h0"] + 0, arrays["c0"] + 0) for _ in range(CALLS + 2)] if donate else None
    times = []
    for k in range(CALLS + 2):
        h0, c0 = states[k] if donate else (arrays["h0"], arrays["c0"])
        jax.block_until_ready((h0, c0))
        start = time.perf_counter()
        jax.block_until_ready(step(arrays["x"], arrays["params"], h0, c0))
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:]) * 1e3


def loop_rows(device: str, settings=None) -> list[dict]:
    """Each setting of :data:`SETTINGS` (or the names given) timed in a fresh process."""
    rows = []
    for name in settings or SETTINGS:
        env, options = SETTINGS[name]
        row = {"case": "LSTM forward, float32, " + ", ".join(f"{k} {v}" for k, v in shape(device).items()),
               "setting": name, "unit": UNIT}
        try:
            out = fresh_process(__name__, device, json.dumps(options), env=env)
            rows.append({**row, "value": float(out.strip().splitlines()[-1])})
        except RuntimeError as error:
            rows.append({**row, "value": float("nan"), "detail": str(error)})
    return rows


def loop_answer(rows: list[dict]) -> str:
    """The fastest setting and each one's time over the backend's own."""
    times = {r["setting"]: r["value"] for r in rows if r["value"] == r["value"]}
    if BASE not in times:
        return "The backend's own setting did not run: no comparison."
    best = min(times, key=times.get)
    ratios = ", ".join(f"{name} {times[BASE] / t:.2f}x" for name, t in times.items() if name != BASE)
    failed = [r["setting"] for r in rows if r["value"] != r["value"]]
    return (f"Fastest: {best} ({times[best]:.3g} ms; the backend's own {times[BASE]:.3g} ms). Speed over the "
            f"backend's own: {ratios}." + (f" Did not run: {', '.join(failed)}." if failed else ""))


LOOP = Probe("jax-gpu-loop", "Which loop setting runs jax's lax.scan fastest on this GPU?", loop_rows, loop_answer)


if __name__ == "__main__":  # one setting, in the fresh process loop_rows starts
    print(time_lstm(sys.argv[1], **json.loads(sys.argv[2])))
