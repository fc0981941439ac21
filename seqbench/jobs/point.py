"""One benchmark point in a benchmark process: the caps that skip it, then the backend, inputs on the device and
warmed-up passes (the asv suite's classes, ``benchmarks/common.py``, build one per process).

Caps (a skip, with the reason): on the CPU a forward pass above ``SEQBENCH_CPU_MAX_GFLOP`` GFLOP (default 5); on
any device an op whose byte model is above ``SEQBENCH_MAX_GIB`` GiB (default 4); an out-of-memory error in the
warm-up call.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from seqbench import catalog
from seqbench.backends import registry
from seqbench.backends.protocol import BackendUnavailable

#: seconds of repeated forward calls behind one throughput/GFLOP/s number (at least 3 calls)
TRACK_SECONDS = 0.5

def cpu_max_flops() -> float:
    return float(os.environ.get("SEQBENCH_CPU_MAX_GFLOP", "5")) * 1e9


def max_bytes() -> float:
    return float(os.environ.get("SEQBENCH_MAX_GIB", "4")) * 2**30

def itemsize(dtype: str) -> int:
    return 8 if dtype == "float64" else 4 if dtype == "float32" else 2


def gpu_present() -> bool:
    """Whether this machine has a GPU driver at all (checked without importing a framework)."""
    paths = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version", "/dev/dxg", "/dev/kfd")
    return any(os.path.exists(p) for p in paths)


def skip_reason(op: catalog.Op, device: str, dtype: str, shape: dict) -> str:
    """Why this point is not benchmarked, from sizes and the machine alone ("" = go on)."""
    label = f"{op.name} {catalog.shape_id(shape)}"
    if device == "cpu" and op.flops(shape) > cpu_max_flops():
        return (f"{label}: {op.flops(shape) / 1e9:.1f} GFLOP per forward pass is above the CPU cap of "
                f"{cpu_max_flops() / 1e9:g} GFLOP (SEQBENCH_CPU_MAX_GFLOP); sizes this large are for GPUs")
    nbytes = op.bytes(shape, itemsize(dtype))
    if nbytes > max_bytes():
        return (f"{label}: {nbytes / 2**30:.1f} GiB of inputs, parameters and outputs in {dtype} is above "
                f"the cap of {max_bytes() / 2**30:g} GiB (SEQBENCH_MAX_GIB)")
    if device.split(":")[0] == "cuda" and not gpu_present():
        return "cuda: no GPU driver on this machine"
    return ""

def _out_of_memory(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return isinstance(error, MemoryError) or any(
        sign in text for sign in ("out of memory", "outofmemory", "resource_exhausted"))


class Case:
    """One benchmark point in this process: the backend, inputs on the device, warmed-up callables.

    Construction checks everything that can be checked without running the
    op and raises ``NotImplementedError`` (asv's skip) with the reason;
    :meth:`ready_forward` / :meth:`ready_backward` prepare a pass and call it
    once (compilation, caches, allocator warm-up) so timing starts warm.
    """

    def __init__(self, op_name: str, backend: str, device: str, dtype: str, shape: dict):
        self.op = catalog.get(op_name)
        self.device, self.dtype, self.shape = device, dtype, shape
        reason = skip_reason(self.op, device, dtype, shape)
        if reason:
            raise NotImplementedError(reason)
        try:
            self.backend = registry.backend(backend)
        except (BackendUnavailable, ValueError) as error:
            raise NotImplementedError(str(error)) from None
        support = self.backend.supports(self.op, device, dtype)
        if not support:
            raise NotImplementedError(support.reason)
        self.inputs = self.op.inputs(shape, seed=0)
        self.forward = self.backward = None
        self.first_call_peak = None

    def sync(self) -> None:
        self.backend.synchronize(self.device)

    def _warm(self, cotangents=None):
        try:
            prepared = self.backend.prepare(self.op.name, self.device, self.dtype, self.inputs, cotangents)
            prepared()
            self.sync()
        except Exception as error:
            if _out_of_memory(error):
                raise NotImplementedError(f"{self.op.name} {catalog.shape_id(self.shape)} on {self.device}: "
                                          f"out of memory ({type(error).__name__})") from None
            raise
        return prepared

    def ready_forward(self) -> None:
        if self.forward is None:
            self.forward = self._warm()

    def ready_backward(self) -> None:
        if self.backward is None:
            placeholders = tuple(np.zeros(s) for s in self.op.output_shapes(self.inputs))
            self.backward = self._warm(self.op.cotangents(placeholders, seed=0))

    def seconds_per_forward(self) -> float:
        """Median seconds of synchronized forward calls: at least 3, for about :data:`TRACK_SECONDS`."""
        times = []
        end = time.perf_counter() + TRACK_SECONDS
        while len(times) < 3 or (time.perf_counter() < end and len(times) < 100):
            start = time.perf_counter()
            self.forward()
            self.sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)
