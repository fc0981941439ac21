"""CUDA graphs of the ``cupy`` backend's step loops: the per-step host work paid once, not per call.

The step-by-step path (:func:`.cells.cell_forward`, :func:`.cells.cell_backward`)
issues per time step one recurrent GEMM and one fused kernel from Python. On an
H200 that host work is 40–75 µs per step at H = 256, more than the GPU's work
(``../measurements``). Here a step loop is *captured* once into a CUDA graph
and then *replayed*: the GPU runs the same kernels with the same arguments in
the same order, launched by the driver from one call.

Two things make it possible:

* The recurrent GEMMs go to cuBLAS through its C API (:class:`Cublas`, ctypes)
  on a handle of our own, its stream and workspace set before the capture.
  CuPy's own cuBLAS calls refuse a capturing stream (CuPy's ``setStream``
  check); cuBLAS itself supports capture with a user workspace.
* A graph holds exact device pointers. :class:`StepGraphs` keys each graph by
  the loop's tag and the (pointer, shape, strides, dtype) of every buffer the
  loop touches, so a graph is replayed only where every buffer is where it was
  captured: replay is then the captured launch sequence, exactly. A call with
  other buffers captures anew (the host cost of one step-by-step run plus the
  graph's instantiation). CuPy's memory pool hands a repeated call the same
  addresses, so steady-state calls replay; the least recently used graphs
  beyond ``capacity`` are dropped.

Inside a captured loop nothing may allocate or read a device value on the
host: it would happen once, at capture. The tests hold the loops to that by
running them through a recording "graph" over the kernels' host build
(:class:`.host_kernels.HostKernels`), which defers every launch to replay.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections import OrderedDict
from pathlib import Path
from typing import Callable

#: cuBLAS workspace for captured GEMMs (the cuBLAS guide's recommendation for Hopper is 32 MiB).
WORKSPACE_BYTES = 32 << 20
#: Graphs kept per device (a buffer set that alternates between two addresses needs two).
CAPACITY = 8

_CUBLAS_OP_N = 0
_CUBLAS_DEFAULT_MATH = 0
_CUBLAS_TF32_TENSOR_OP_MATH = 3
_CUDA_R_16F = 2
_CUBLAS_COMPUTE_32F = 68
_CUBLAS_GEMM_DEFAULT = -1


def loaded_library(stem: str, maps: str = "/proc/self/maps") -> str | None:
    """The path of the shared library ``<stem>.so*`` this process has loaded (Linux), or ``None``."""
    try:
        lines = Path(maps).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if fields and Path(fields[-1]).name.startswith(f"{stem}.so"):
            return fields[-1]
    return None


class Cublas:
    """Row-major ``out = a @ b`` by cuBLAS's C API on an own handle, capturable in a CUDA graph.

    ``bind(stream)`` points the handle at ``stream`` and at the workspace
    (``cublasSetStream`` resets the workspace, so both go together); call it
    before a capture or an eager loop on that stream. float32 runs ``Sgemm``
    (TF32 tensor cores only with ``tf32``, as CuPy's ``CUPY_TF32=1``), float64
    ``Dgemm``, float16 ``GemmEx`` with float32 accumulation (as CuPy's matmul).
    """

    def __init__(self, cupy, tf32: bool):
        from cupy_backends.cuda.libs import cublas as _cupy_cublas  # noqa: F401 - loads libcublas

        path = loaded_library("libcublas") or ctypes.util.find_library("cublas")
        if path is None:
            raise OSError("libcublas is not loaded and not found")
        self.lib = lib = ctypes.CDLL(path)
        handle = ctypes.c_void_p()
        self._check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate_v2")
        self.handle = handle
        self.workspace = cupy.empty(WORKSPACE_BYTES, dtype=cupy.uint8)
        mode = _CUBLAS_TF32_TENSOR_OP_MATH if tf32 else _CUBLAS_DEFAULT_MATH
        self._check(lib.cublasSetMathMode(handle, ctypes.c_int(mode)), "cublasSetMathMode")
        self._scalars = {"float64": (ctypes.c_double(1.0), ctypes.c_double(0.0))}
        self._scalars["float32"] = self._scalars["float16"] = (ctypes.c_float(1.0), ctypes.c_float(0.0))

    @staticmethod
    def _check(status: int, call: str):
        if status != 0:
            raise RuntimeError(f"{call} returned cuBLAS status {status}")

    def bind(self, stream_ptr: int):
        self._check(self.lib.cublasSetStream_v2(self.handle, ctypes.c_void_p(stream_ptr)), "cublasSetStream_v2")
        self._check(self.lib.cublasSetWorkspace_v2(self.handle, ctypes.c_void_p(self.workspace.data.ptr),
                                                   ctypes.c_size_t(WORKSPACE_BYTES)), "cublasSetWorkspace_v2")

    def gemm(self, a, b, out):
        """``out (m, n) = a (m, k) @ b (k, n)``, row-major with unit stride along rows (views allowed)."""
        m, k = a.shape
        n = b.shape[1]
        dtype = out.dtype.name
        item = out.dtype.itemsize
        if b.shape[0] != k or out.shape != (m, n) or not (a.dtype == b.dtype == out.dtype):
            raise ValueError(f"gemm: shapes {a.shape} @ {b.shape} -> {out.shape}, dtypes {a.dtype}, {b.dtype}, "
                             f"{out.dtype}")
        if any(x.strides[1] != item for x in (a, b, out)):
            raise ValueError("gemm: every operand's rows must be contiguous")
        lda, ldb, ldc = (x.strides[0] // item for x in (a, b, out))
        one, zero = (ctypes.byref(s) for s in self._scalars[dtype])
        pa, pb, pc = (ctypes.c_void_p(x.data.ptr) for x in (a, b, out))
        # row-major C = A B is column-major Cᵀ = Bᵀ Aᵀ: cuBLAS gets (n, m, k) and B before A
        dims = (ctypes.c_int(_CUBLAS_OP_N), ctypes.c_int(_CUBLAS_OP_N), ctypes.c_int(n), ctypes.c_int(m),
                ctypes.c_int(k))
        if dtype == "float16":
            half = ctypes.c_int(_CUDA_R_16F)
            status = self.lib.cublasGemmEx(self.handle, *dims, one, pb, half, ctypes.c_int(ldb), pa, half,
                                           ctypes.c_int(lda), zero, pc, half, ctypes.c_int(ldc),
                                           ctypes.c_int(_CUBLAS_COMPUTE_32F), ctypes.c_int(_CUBLAS_GEMM_DEFAULT))
        else:
            call = self.lib.cublasSgemm_v2 if dtype == "float32" else self.lib.cublasDgemm_v2
            status = call(self.handle, *dims, one, pb, ctypes.c_int(ldb), pa, ctypes.c_int(lda), zero, pc,
                          ctypes.c_int(ldc))
        self._check(status, f"gemm ({dtype})")


class StepGraphs:
    """Step loops run from CUDA graphs, one graph per (tag, buffer layout); see the module docstring.

    The engine is three functions, so the same cache runs on a GPU
    (:meth:`on_device`) and, in the tests, over host kernels that record
    their launches: ``capture(loop) -> graph`` records ``loop()`` without
    running it, ``launch(graph)`` runs a graph, ``eager(loop)`` runs
    ``loop()`` now. ``layout(array)`` is an array's (pointer, shape, strides,
    dtype); ``gemm(a, b, out)`` is the GEMM the loops must call (one that can
    be captured). Should a capture fail, ``error`` says why and every later
    loop runs eagerly.
    """

    def __init__(self, capture: Callable, launch: Callable, eager: Callable, layout: Callable,
                 capacity: int = CAPACITY, gemm: Callable | None = None):
        self.capture, self.launch, self.eager, self.layout = capture, launch, eager, layout
        self.capacity, self.gemm = capacity, gemm
        self.error = ""
        self.captures = self.replays = 0
        self._graphs: OrderedDict = OrderedDict()

    def __call__(self, tag: tuple, buffers: tuple, loop: Callable) -> str:
        """Run ``loop`` (which touches exactly ``buffers``); ``"graph"``, or ``"fused"`` where it ran eagerly."""
        if self.error:
            self.eager(loop)
            return "fused"
        key = (tag, *(None if b is None else self.layout(b) for b in buffers))
        graph = self._graphs.get(key)
        if graph is None:
            try:
                graph = self.capture(loop)
            except Exception as error:  # noqa: BLE001 - the loop still runs, eagerly; `error` says why
                self.error = f"{type(error).__name__}: {str(error)[:300]}"
                self.eager(loop)
                return "fused"
            self.captures += 1
            self._graphs[key] = graph
            while len(self._graphs) > self.capacity:
                self._graphs.popitem(last=False)
        else:
            self.replays += 1
            self._graphs.move_to_end(key)
        self.launch(graph)
        return "graph"

    @classmethod
    def on_device(cls, cupy, cublas: Cublas, capacity: int = CAPACITY) -> "StepGraphs":
        """The GPU engine: capture on a private stream (relaxed mode), launch on the current stream."""
        capture_stream = cupy.cuda.Stream(non_blocking=True)

        def capture(loop):
            with capture_stream:
                cublas.bind(capture_stream.ptr)
                capture_stream.begin_capture(mode=cupy.cuda.runtime.streamCaptureModeRelaxed)
                try:
                    loop()
                finally:
                    graph = capture_stream.end_capture()
            return graph

        def launch(graph):
            graph.launch(stream=cupy.cuda.get_current_stream())

        def eager(loop):
            cublas.bind(cupy.cuda.get_current_stream().ptr)
            loop()

        def layout(a):
            return a.data.ptr, a.shape, a.strides, a.dtype.str

        return cls(capture, launch, eager, layout, capacity, gemm=cublas.gemm)
