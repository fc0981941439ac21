"""The device's own ceiling: the rate of a large matrix product, for the reports' roofline.

``bench_peak.matmul.track_gflops(device, dtype)``: the best of a few timed
``n × n @ n × n`` products (n = 2048 on the CPU, 8192 on a GPU), with NumPy
and, where it is installed, PyTorch on the CPU (the faster counts), PyTorch
on a GPU in the device's math mode (``cuda`` IEEE float32, ``cuda:tf32``
TF32). The reports use it as the roofline peak of that machine, device and
dtype, in place of a datasheet figure or an estimate.
"""

import time

import numpy as np

from . import common


def _rate(product, n: int, repeat: int = 3) -> float:
    """GFLOP/s of the fastest of ``repeat`` calls of ``product`` (after one warm-up call)."""
    product()
    best = min(_timed(product) for _ in range(repeat))
    return 2 * n**3 / best / 1e9


def _timed(product) -> float:
    start = time.perf_counter()
    product()
    return time.perf_counter() - start


def _cpu(dtype: str, n: int = 2048) -> float:
    rates = []
    if dtype in ("float32", "float64"):
        a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
        rates.append(_rate(lambda: a @ a, n))
    try:
        import torch
    except ImportError:
        return max(rates, default=float("nan"))
    t = torch.randn(n, n, dtype=getattr(torch, dtype))
    rates.append(_rate(lambda: t @ t, n))
    return max(rates)


def _cuda_reason(device: str, dtype: str) -> str:
    """Why the GPU rate cannot be measured here ("" = it can)."""
    try:
        from seqbench.backends.torch import math as torch_math
    except ImportError as error:
        return f"the GPU matmul rate is measured with torch: {error}"
    if device not in torch_math.cuda_devices():
        return f"no {device} here"
    if device == torch_math.TF32_DEVICE and dtype != "float32":
        return f"{device} is float32 only"
    return ""


def _cuda(device: str, dtype: str) -> float:
    import torch

    from seqbench.backends.torch import math as torch_math

    n = 4096 if dtype == "float64" else 8192
    a = torch.randn(n, n, device="cuda", dtype=getattr(torch, dtype))

    def product():
        with torch_math.pinned(device, dtype):
            a @ a
        torch.cuda.synchronize()

    return _rate(product, n)


class matmul:
    """The matmul rate of one device and dtype (see the module docstring)."""

    params = [list(common.DEVICES), ["float64", "float32", "float16", "bfloat16"]]
    param_names = ["device", "dtype"]
    timeout = 300

    def setup(self, device, dtype):
        if device == "cpu":
            if dtype not in ("float32", "float64"):
                raise NotImplementedError("the CPU peak is measured for float32 and float64")
            return
        reason = "cuda: no GPU driver on this machine" if not common.gpu_present() else _cuda_reason(device, dtype)
        if reason:
            raise NotImplementedError(reason)

    def track_gflops(self, device, dtype):
        return _cpu(dtype) if device == "cpu" else _cuda(device, dtype)

    track_gflops.unit = "GFLOP/s"
