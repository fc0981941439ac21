"""What the torch backends ask of the libraries under them on a GPU (``seqbench probe``; see
:class:`~seqbench.backends.protocol.Probe`).

* **cuDNN's float32 RNNs** (``torch-native`` on ``cuda``): conformance found them 30 to 50 times a faithful
  float32 implementation's error on some shapes with TF32 pinned off, and as accurate as one on others.
  :data:`CASES` × :func:`cudnn_settings` measure the error of ``nn.RNN``/``nn.LSTM`` against float64 under
  every explanation there is: a TF32 switch left on somewhere (every switch off; ``NVIDIA_TF32_OVERRIDE=0``,
  which the CUDA libraries read when they start, so in a fresh process), the algorithm (PyTorch gives
  unpacked float32 input at a small hidden size cuDNN's persistent small-H kernel, packed input the standard
  algorithm; H 512 is above that kernel's limit), the activation functions (ReLU is exact, tanh is not),
  one step or many, and ATen's own CUDA RNN with cuDNN off. :func:`cudnn_answer` reads the cause off the
  rows.
* **cuBLAS's TF32 matmuls** (``torch`` on ``cuda:tf32``) against the faithful TF32 model that calibrates
  conformance (:mod:`seqbench.precision.faithful`: inputs rounded to 10 mantissa bits, to nearest even,
  float32 sums), and against the same model with the inputs truncated instead.

Errors are relative l2 errors in float32 eps, each against the float64 result of the very float32 values
the probe ran on. On the CPU the same code runs with the settings that need CUDA left out (a dry run).
"""

from __future__ import annotations

import copy
import json
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqbench.backends.protocol import Probe, fresh_process
from seqbench.precision.faithful import round_to

from . import math as tm

EPS32 = float(np.finfo(np.float32).eps)
UNIT = "eps (l2)"
#: an error this many times the plain float32 control's or more is "off"
FAR = 4.0
BATCH = 16


def l2_eps(got, want) -> float:
    """``‖got − want‖₂ / ‖want‖₂`` in float32 eps."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want) / EPS32)


# --- cuDNN's float32 RNNs --------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    label: str
    module: str  # "RNN" or "LSTM"
    T: int
    H: int
    nonlinearity: str = "tanh"
    packed: bool = False


CASES = (
    Case("RNN tanh, H 32, T 64", "RNN", 64, 32),
    Case("RNN tanh, H 32, T 64, packed", "RNN", 64, 32, packed=True),
    Case("RNN relu, H 32, T 64", "RNN", 64, 32, nonlinearity="relu"),
    Case("RNN tanh, H 32, T 1", "RNN", 1, 32),
    Case("RNN tanh, H 512, T 64", "RNN", 64, 512),
    Case("LSTM, H 32, T 64", "LSTM", 64, 32),
    Case("LSTM, H 32, T 64, packed", "LSTM", 64, 32, packed=True),
)
AS_RUN = "as conformance runs it (TF32 pinned off)"
EVERY_SWITCH = "every TF32 switch off, deterministic algorithms"
OVERRIDE = "NVIDIA_TF32_OVERRIDE=0 (a fresh process)"
CUDNN_OFF = "cuDNN off (ATen's own CUDA RNN)"
TF32_ON = "TF32 on (for scale)"
CONTROL = "float32 on the CPU (control)"


@contextmanager
def _cudnn_off():
    saved = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        with tm.pinned("cuda", "float32"):
            yield
    finally:
        torch.backends.cudnn.enabled = saved


def cudnn_settings(device: str) -> dict:
    """Setting -> a context to run in, on ``device`` (on the CPU only :data:`AS_RUN`)."""
    settings = {AS_RUN: lambda: tm.pinned(device, "float32")}
    if device.startswith("cuda"):
        settings.update({EVERY_SWITCH: tm.every_switch_ieee, CUDNN_OFF: _cudnn_off,
                         TF32_ON: lambda: tm.pinned(tm.TF32_DEVICE, "float32")})
    return settings


def _module_and_input(case: Case, seed: int = 0):
    """A float32 module with PyTorch's default initialisation and an input ``(T, B, H)``, on the CPU."""
    torch.manual_seed(seed)
    kwargs = {"nonlinearity": case.nonlinearity} if case.module == "RNN" else {}
    module = getattr(torch.nn, case.module)(case.H, case.H, **kwargs)
    return module, torch.randn(case.T, BATCH, case.H)


def _outputs(module, x, case: Case):
    if not case.packed:
        return module(x)[0]
    packed = pack_padded_sequence(x, torch.full((x.shape[1],), x.shape[0]), enforce_sorted=False)
    return pad_packed_sequence(module(packed)[0])[0]


def case_error(case: Case, device: str, setting) -> float:
    """The error of ``case`` in float32 on ``device`` under ``setting`` (a context), against float64."""
    module, x = _module_and_input(case)
    with torch.no_grad():
        want = _outputs(copy.deepcopy(module).double(), x.double(), case)
        with setting():
            got = _outputs(module.to(tm.torch_device(device)), x.to(tm.torch_device(device)), case)
        return l2_eps(got.double().cpu(), want)


def _rows(device: str, settings: dict) -> list[dict]:
    return [{"case": c.label, "setting": name, "value": case_error(c, device, ctx), "unit": UNIT}
            for name, ctx in settings.items() for c in CASES]


def _fresh_process(device: str, env: dict) -> list[dict]:
    """:data:`AS_RUN` rows measured in a new Python process with ``env`` added (for variables a library reads
    once, when it starts)."""
    try:
        return json.loads(fresh_process(__name__, device, env=env))
    except RuntimeError as error:
        return [{"case": c.label, "setting": AS_RUN, "value": float("nan"), "unit": UNIT, "detail": str(error)}
                for c in CASES]


def cudnn_rows(device: str) -> list[dict]:
    """Every case under every setting on ``device``, ``NVIDIA_TF32_OVERRIDE=0`` and the CPU control included."""
    rows = _rows(device, cudnn_settings(device))
    rows += [{**r, "setting": OVERRIDE} for r in _fresh_process(device, {"NVIDIA_TF32_OVERRIDE": "0"})]
    return rows + _rows("cpu", {CONTROL: nullcontext})


def cudnn_answer(rows: list[dict]) -> str:
    """What the rows show about cuDNN's float32 error: how far off it is as conformance runs it, and which
    setting or case brings it back to a plain float32 implementation's (or does not)."""
    err = {(r["case"], r["setting"]): r["value"] for r in rows}

    def off(case, setting=AS_RUN):
        value, plain = err.get((case, setting)), err.get((case, CONTROL))
        return value is not None and plain is not None and not value <= FAR * max(plain, 0.5)

    def figure(case, setting=AS_RUN):
        return f"{err[(case, setting)]:.3g} eps"

    failing = [c.label for c in CASES if off(c.label)]
    if not failing:
        return (f"Every case is within {FAR:g}x float32 on the CPU as conformance runs it "
                f"(worst {max(err.get((c.label, AS_RUN), 0) for c in CASES):.3g} eps): nothing to explain here.")
    first = failing[0]
    said = [f"As conformance runs it, {len(failing)} of {len(CASES)} cases are off: {', '.join(failing)} "
            f"(e.g. {first}: {figure(first)}, float32 on the CPU {figure(first, CONTROL)})."]
    for setting in (EVERY_SWITCH, OVERRIDE):
        if all((case, setting) in err for case in failing):
            still = [case for case in failing if off(case, setting)]
            said.append(f"{setting}: {'still off' if still else 'brings every case back'} "
                        f"({first}: {figure(first, setting)})" + (": not a TF32 switch." if still else "."))
    pairs = [(c.label, c.label + ", packed") for c in CASES if (c.label + ", packed", AS_RUN) in err]
    algorithm = [(u, p) for u, p in pairs if off(u) and not off(p)]
    if algorithm:
        u, p = algorithm[0]
        said.append(f"The algorithm: the same shape packed (PyTorch then runs cuDNN's standard algorithm) is "
                    f"{figure(p)} where unpacked (cuDNN's persistent small-H kernel, PyTorch's choice for float32 "
                    f"at a small hidden size) is {figure(u)}.")
    if "RNN relu, H 32, T 64" in failing:
        said.append("ReLU is off too: not the transcendental functions.")
    elif "RNN tanh, H 32, T 64" in failing and ("RNN relu, H 32, T 64", AS_RUN) in err:
        said.append("ReLU is not off where tanh is: the activation functions.")
    if "RNN tanh, H 32, T 1" in failing:
        said.append("Off after one step already: the step's arithmetic, not an accumulation over time.")
    if (first, CUDNN_OFF) in err:
        said.append(f"With cuDNN off (ATen's CUDA RNN, cuBLAS IEEE) {first} is {figure(first, CUDNN_OFF)}.")
    return " ".join(said)


# --- cuBLAS's TF32 matmuls ---------------------------------------------------------------------------

#: ``(M, K, N)``: an LSTM's recurrent product at B 16, H 1024 (K = H, N = 4H), and a square-ish one
MATMULS = ((16, 1024, 4096), (256, 256, 1024))
MODEL = "faithful TF32 model (inputs to nearest even)"
TRUNCATED = "TF32 model, inputs truncated"


def _truncated(a: np.ndarray) -> np.ndarray:
    """``a`` (float32) with the 13 mantissa bits TF32 lacks set to zero."""
    return (np.asarray(a, np.float32).view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32)


def tf32_rows(device: str) -> list[dict]:
    """The matmul as the backend runs it on ``device`` (TF32 on ``cuda:tf32``), the faithful model and the
    truncating one, each against float64, per shape of :data:`MATMULS`."""
    rows, rng = [], np.random.default_rng(0)
    run = f"cuBLAS as run on {device}" if device.startswith("cuda") else f"matmul on {device} (IEEE)"
    for M, K, N in MATMULS:
        a, b = rng.standard_normal((M, K), np.float32), rng.standard_normal((K, N), np.float32)
        exact = a.astype(np.float64) @ b.astype(np.float64)
        with torch.no_grad(), tm.pinned(device, "float32"):
            got = (torch.from_numpy(a).to(tm.torch_device(device)) @ torch.from_numpy(b).to(tm.torch_device(device)))
        case = f"{M}x{K} @ {K}x{N}"
        for setting, value in ((run, got.cpu().numpy()),
                               (MODEL, round_to(a, "tf32").astype(np.float32) @ round_to(b, "tf32").astype(np.float32)),
                               (TRUNCATED, _truncated(a) @ _truncated(b))):
            rows.append({"case": case, "setting": setting, "value": l2_eps(value, exact), "unit": UNIT})
    return rows


def tf32_answer(rows: list[dict]) -> str:
    """cuBLAS's TF32 error over the faithful model's (and over the truncating model's), per shape."""
    err = {(r["case"], r["setting"]): r["value"] for r in rows}
    runs = [r for r in rows if r["setting"].startswith("cuBLAS")]
    if not runs:
        return "No TF32 matmul here (no GPU with TF32): the model's rows only."
    parts = [f"{r['case']}: {r['value'] / err[(r['case'], MODEL)]:.3g}x the faithful model's error, "
             f"{r['value'] / err[(r['case'], TRUNCATED)]:.3g}x the truncating model's" for r in runs]
    return "cuBLAS TF32 against the models: " + "; ".join(parts) + "."


CUDNN = Probe("cudnn-float32", "Why are cuDNN's float32 RNNs off by tens of eps with TF32 pinned off?",
              cudnn_rows, cudnn_answer)
TF32 = Probe("tf32-matmul", "Does cuBLAS's TF32 matmul err as seqbench's faithful TF32 model does?",
             tf32_rows, tf32_answer)


if __name__ == "__main__":  # one process's AS_RUN rows, for settings read when the libraries start
    print(json.dumps(_rows(sys.argv[1], {AS_RUN: cudnn_settings(sys.argv[1])[AS_RUN]})))
