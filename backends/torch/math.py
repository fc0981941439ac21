"""Devices and the float32 math mode of the torch backends: TF32 pinned off, or on as its own device.

Devices of the torch backends:

* ``"cpu"``;
* ``"cuda"``: the current GPU, float32 pinned to IEEE (TF32 off for cuBLAS
  matmuls *and* cuDNN RNNs) during every call, so conformance checks full
  float32 and speed runs say what they measured;
* ``"cuda:tf32"``: the same GPU with TF32 on for both, float32 only; listed
  when the GPU has TF32 (compute capability ≥ 8.0).

PyTorch's own defaults differ per library (cuBLAS matmul TF32 off, cuDNN RNN
TF32 *on*); :func:`tf32_defaults` reads them for the result metadata. The
flags are read and set through the ``fp32_precision`` API where this torch
has it (it refuses to mix with the legacy ``allow_tf32`` flags), else through
``allow_tf32``.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch

TF32_DEVICE = "cuda:tf32"


def torch_device(device: str) -> str:
    """The torch device behind a seqbench device name (``"cuda:tf32"`` is ``"cuda"``)."""
    return "cuda" if device.startswith("cuda") else device


def cuda_devices() -> list[str]:
    """``["cuda", "cuda:tf32"]`` on a GPU with TF32, ``["cuda"]`` on an older one, ``[]`` without CUDA."""
    if not torch.cuda.is_available():
        return []
    return ["cuda", TF32_DEVICE] if torch.cuda.get_device_capability()[0] >= 8 else ["cuda"]


def _new_api() -> bool:
    return hasattr(torch.backends.cudnn, "rnn") and hasattr(torch.backends.cuda.matmul, "fp32_precision")


def _effective(precision: str) -> str:
    """An op-level ``fp32_precision``, with ``"none"`` inherited from CUDA's, then the generic, setting."""
    for value in (precision, torch.backends.cudnn.fp32_precision, torch.backends.fp32_precision):
        if value != "none":
            return value
    return "ieee"


def tf32_flags() -> dict:
    """Whether TF32 is on now: ``{"matmul": bool, "cudnn_rnn": bool}``."""
    if _new_api():
        return {
            "matmul": _effective(torch.backends.cuda.matmul.fp32_precision) == "tf32",
            "cudnn_rnn": _effective(torch.backends.cudnn.rnn.fp32_precision) == "tf32",
        }
    return {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn_rnn": torch.backends.cudnn.allow_tf32}


def tf32_defaults() -> str:
    """The process's TF32 settings outside seqbench's calls, e.g. ``"matmul=off,cudnn_rnn=on"``."""
    return ",".join(f"{k}={'on' if v else 'off'}" for k, v in tf32_flags().items())


@contextmanager
def _tf32(enabled: bool):
    """TF32 on or off for cuBLAS matmuls and cuDNN RNNs inside the block; the previous flags after it."""
    if _new_api():
        flags, attr = (torch.backends.cuda.matmul, torch.backends.cudnn.rnn), "fp32_precision"
        value = "tf32" if enabled else "ieee"
    else:
        flags, attr, value = (torch.backends.cuda.matmul, torch.backends.cudnn), "allow_tf32", enabled
    saved = [getattr(f, attr) for f in flags]
    try:
        for f in flags:
            setattr(f, attr, value)
        yield
    finally:
        for f, old in zip(flags, saved):
            setattr(f, attr, old)


def math_mode(device: str, dtype: str) -> str:
    """``"tf32"`` for float32 on ``"cuda:tf32"``, else ``"ieee"`` (what :func:`pinned` sets)."""
    return "tf32" if device == TF32_DEVICE and dtype == "float32" else "ieee"


def pinned(device: str, dtype: str):
    """A context that sets the math mode of ``device`` for float32 on CUDA (a no-op elsewhere)."""
    if device.startswith("cuda") and dtype == "float32":
        return _tf32(device == TF32_DEVICE)
    return nullcontext()


@contextmanager
def every_switch_ieee():
    """TF32 off at every level torch exposes (generic, CUDA, cuBLAS, cuDNN, cuDNN's RNNs and convolutions) and
    cuDNN's deterministic algorithms, inside the block; the previous settings after it."""
    if _new_api():
        flags = [torch.backends, torch.backends.cuda.matmul, torch.backends.cudnn, torch.backends.cudnn.rnn,
                 torch.backends.cudnn.conv]
        settings = [(f, "fp32_precision", "ieee") for f in flags if hasattr(f, "fp32_precision")]
    else:
        settings = [(f, "allow_tf32", False) for f in (torch.backends.cuda.matmul, torch.backends.cudnn)]
    settings += [(torch.backends.cudnn, "deterministic", True), (torch.backends.cudnn, "benchmark", False)]
    saved = [getattr(f, attr) for f, attr, _ in settings]
    try:
        for f, attr, value in settings:
            setattr(f, attr, value)
        yield
    finally:
        for (f, attr, _), old in zip(settings, saved):
            setattr(f, attr, old)
