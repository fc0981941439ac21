"""Peak compute and memory bandwidth of known devices, for the roofline fraction.

Numbers are the machine's own matmul rate where a sweep measured it
(``benchmarks/bench_peak.py``), else the vendors' datasheet figures, dense
(no 2:4 sparsity), in GFLOP/s and GB/s. The peak that applies depends on the dtype and the math
mode in effect: a float32 GEMM under TF32 runs on tensor cores, in IEEE
float32 it does not. A device not in the table gets NaN, never a guess;
a CPU gets an *estimate* from its core count, flagged as such.

Roofline: ``attainable = min(peak_flops, intensity * peak_bandwidth)`` with
``intensity = flops / bytes`` from the op catalog's models; the fraction is
``achieved GFLOP/s / attainable``. Without a bandwidth figure the compute
peak alone is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Peaks:
    name: str
    fp64: float  # GFLOP/s (tensor-core FP64 where the GPU has it)
    fp32: float  # GFLOP/s, IEEE float32 (no tensor cores)
    tf32: float  # GFLOP/s, dense TF32 tensor cores
    fp16: float  # GFLOP/s, dense FP16/BF16 tensor cores
    bandwidth: float  # GB/s
    source: str


# Matched in order against the device name (case-insensitive substrings, all must occur).
GPUS = (
    (("h200", "nvl"), Peaks("H200 NVL", 60e3, 60e3, 417.5e3, 835.5e3, 4800, "NVIDIA H200 NVL datasheet")),
    (("h200",), Peaks("H200 SXM", 67e3, 67e3, 494.5e3, 989.5e3, 4800, "NVIDIA H200 SXM datasheet")),
    (("h100", "nvl"), Peaks("H100 NVL", 60e3, 60e3, 417.5e3, 835.5e3, 3900, "NVIDIA H100 NVL datasheet")),
    (("h100", "pcie"), Peaks("H100 PCIe", 51e3, 51e3, 378e3, 756e3, 2000, "NVIDIA H100 PCIe datasheet")),
    (("h100",), Peaks("H100 SXM", 67e3, 67e3, 494.5e3, 989.5e3, 3350, "NVIDIA H100 SXM datasheet")),
    (("a100", "80gb", "pcie"), Peaks("A100 80GB PCIe", 19.5e3, 19.5e3, 156e3, 312e3, 1935, "NVIDIA A100 datasheet")),
    (("a100", "80gb"), Peaks("A100 80GB SXM", 19.5e3, 19.5e3, 156e3, 312e3, 2039, "NVIDIA A100 datasheet")),
    (("a100",), Peaks("A100 40GB", 19.5e3, 19.5e3, 156e3, 312e3, 1555, "NVIDIA A100 datasheet")),
)

# CPU estimate: cores x nominal clock x FLOP/cycle of two 256-bit FMA units (AVX2).
CPU_CLOCK_HZ = 2.5e9
CPU_FLOP_PER_CYCLE = {"float64": 16, "float32": 32}


def gpu_peaks(device_name) -> Peaks | None:
    """The table entry for a GPU name like ``"NVIDIA H100 80GB HBM3"``; ``None`` when unknown."""
    if not isinstance(device_name, str):
        return None
    name = device_name.lower()
    for needles, peaks in GPUS:
        if all(n in name for n in needles):
            return peaks
    return None


def peak(device: str, device_name, dtype: str, math_mode, num_cpu=None, arch=None,
         measured: float | None = None) -> tuple[float, float, str]:
    """``(peak GFLOP/s, peak GB/s, source)`` for one result; NaN where unknown.

    ``measured`` is the machine's own matmul rate for this device and dtype
    (``benchmarks/bench_peak.py``; the better of the sweep's start and end
    rates), recorded by the same sweep: it replaces the datasheet figure or
    the estimate when there is one.
    """
    nan = math.nan
    if measured is not None and measured > 0:
        bandwidth = gpu_peaks(device_name).bandwidth if gpu_peaks(device_name) else nan
        return measured, bandwidth, f"measured: {dtype} matmul on this device, {measured:.3g} GFLOP/s"
    if str(device).startswith("cpu"):
        x86 = str(arch or "").lower() in ("x86_64", "amd64")
        per_cycle = CPU_FLOP_PER_CYCLE.get(dtype)
        if not (x86 and per_cycle and num_cpu):
            return nan, nan, "unknown CPU peak"
        gflops = float(num_cpu) * CPU_CLOCK_HZ * per_cycle / 1e9
        source = f"estimate: {num_cpu} cores x 2.5 GHz x {per_cycle} FLOP/cycle (AVX2 FMA); bandwidth unknown"
        return gflops, nan, source
    peaks = gpu_peaks(device_name)
    if peaks is None:
        return nan, nan, f"no peak figures for {device_name!r}"
    mode = str(math_mode or "").lower()
    if dtype == "float64":
        flops = peaks.fp64
    elif dtype == "float32":
        flops = peaks.tf32 if "tf32" in mode else peaks.fp32
    elif dtype in ("float16", "bfloat16"):
        flops = peaks.fp16
    else:
        return nan, peaks.bandwidth, peaks.source
    return flops, peaks.bandwidth, peaks.source


def roofline_fraction(gflops: float, flops: float, nbytes: float, peak_gflops: float, peak_gbs: float) -> float:
    """Achieved GFLOP/s over what the roofline allows at the op's arithmetic intensity."""
    if not (gflops > 0 and peak_gflops > 0):
        return math.nan
    attainable = peak_gflops
    if peak_gbs > 0 and nbytes > 0:
        attainable = min(peak_gflops, flops / nbytes * peak_gbs)
    return gflops / attainable


def describe(fraction: float, source: str) -> str:
    """A roofline fraction as text: ``"42%"``, marked ``(est.)`` when the peak is an estimate, and saying why
    when it is above 100% (the peak it is measured against is too low)."""
    if not fraction == fraction:
        return "—"
    percent = 100 * fraction
    text = f"{percent:.0f}%" if percent >= 10 else f"{percent:.2g}%"
    estimate = str(source).startswith("estimate")
    if fraction > 1:
        return text + f" (above the {'estimated' if estimate else 'measured' if 'measured' in str(source) else 'datasheet'} peak)"
    return text + (" (est.)" if estimate else "")
