"""The kernels compiled for one GPU and loaded as CuPy RawModules (:class:`GpuKernels`), with their launch geometry."""

from __future__ import annotations

import math

import numpy as np

from .toolchain import COOPERATIVE, CXX_FLAGS, DEFINES, KERNELS, KERNELS_DIR, SUFFIX, kernel_names, nvcc_cubin, suffixes

BLOCK = 256  # SB_BLOCK in kernel_common.cuh
MAX_GRID = 65535


class GpuKernels:
    """The kernels compiled for one device and loaded as CuPy RawModules.

    Compiled with :data:`DEFINES` (float16 kernels too); should that fail
    (e.g. NVRTC without the CUDA headers for ``cuda_fp16.h``), compiled again
    without: ``half`` is False and ``half_error`` says why (the backend then
    offers no float16, with that reason). The
    persistent kernels are optional: if they do not build or load (e.g. no
    cooperative-launch support in this CuPy/NVRTC setup), ``persistent_error``
    says why and every sequence takes the step-by-step path.
    """

    def __init__(self, cupy, device: int, compiler: str):
        self.cupy = cupy
        self.device = device
        self.compiler = compiler
        self.arch = cupy.cuda.Device(device).compute_capability  # e.g. "90"
        self.half_error = self.persistent_error = ""
        self._functions: dict = {}
        try:
            self._load_required(DEFINES)
            self.half = True
        except Exception as error:  # noqa: BLE001 - retried without half types; a second failure propagates
            self.half_error = f"{type(error).__name__}: {str(error)[:500]}"
            self._load_required(())
            self.half = False
        try:
            self._load_source(COOPERATIVE[0], DEFINES if self.half else ())
        except Exception as error:  # noqa: BLE001 - the step-by-step path still works
            self.persistent_error = f"{type(error).__name__}: {str(error)[:500]}"

    def _load_required(self, defines: tuple):
        """Compile and load the sources every op needs now, so failures surface in the constructor."""
        for source in KERNELS:
            if source not in COOPERATIVE:
                self._load_source(source, defines)

    def _load_source(self, source: str, defines: tuple):
        module = self._load(source, defines)
        for name in kernel_names(source, suffixes(source, half=bool(defines))):
            self._functions[name] = module.get_function(name)

    def _load(self, source: str, defines: tuple):
        cooperative = source in COOPERATIVE
        if self.compiler == "nvcc":
            cubin = nvcc_cubin(source, self.arch, defines)
            return self.cupy.RawModule(path=str(cubin), enable_cooperative_groups=cooperative)
        code = (KERNELS_DIR / source).read_text()
        return self.cupy.RawModule(code=code, options=(*CXX_FLAGS, *defines, f"-I{KERNELS_DIR}"),
                                   enable_cooperative_groups=cooperative)

    def function(self, name: str, dtype: str):
        return self._functions[f"{name}_{SUFFIX[dtype]}"]

    @staticmethod
    def _args(args):
        """Every integer becomes a C ``int`` (CuPy would pass a Python int as 64 bits)."""
        return tuple(np.int32(a) if isinstance(a, (int, np.integer)) else a for a in args)

    def launch(self, name, dtype, n, *args):
        """An elementwise kernel over ``n`` threads (grid-stride inside)."""
        blocks = max(1, min(math.ceil(n / BLOCK), MAX_GRID))
        self.function(name, dtype)((blocks,), (BLOCK,), self._args(args))

    def launch_warps(self, name, dtype, n, *args):
        """A one-warp-per-item kernel over ``n`` items."""
        warps = BLOCK // 32
        blocks = max(1, min(math.ceil(n / warps), MAX_GRID))
        self.function(name, dtype)((blocks,), (BLOCK,), self._args(args))
