"""The ``cupy`` backend: hand-written CUDA kernels (``kernels/*.cu``) plus cuBLAS GEMMs through CuPy.

* Recurrent ops (:mod:`.cells`): the input projection of all T steps is
  one GEMM; each step is one recurrent GEMM plus ONE fused elementwise kernel
  (gates, activations, state update, lengths mask; the notes' GRU needs two,
  its ``r`` multiplies ``h_{t-1}`` before ``W_hh``); BPTT runs fused backward
  kernels per step and the weight gradients as GEMMs over all steps.
  Bidirectional and stacked RNNs compose single passes.
* The step loops, forward and backward, run from CUDA graphs
  (:mod:`.graphs`): captured once per buffer set, replayed per call, so
  a step costs the GPU's work, not Python's.
* Small batches (B ≤ 16) can run the forward sequence in ONE persistent kernel
  (``kernels/persistent_lstm.cu``): recurrent weights in shared memory for the
  whole sequence, a grid-wide barrier between steps, cooperative launch
  (see :class:`PersistentPlanner`).
* Embedding objectives (:mod:`.embedding`): negative sampling and GloVe,
  loss and gradient in one kernel launch each, sparse row updates by atomics.

Paths (:data:`PATHS`): ``auto`` (persistent where it was measured faster,
see :data:`AUTO_PERSISTENT_MAX_B`, else graph),
``graph``, ``persistent`` (forward; an error where it does not fit) and
``fused`` (the step loops run from the host, one launch at a time: the path
before graphs, kept for comparison). Each is a backend of its own name —
``cupy`` (auto), ``cupy-graph``, ``cupy-fused`` — so reports compare them;
``SEQBENCH_CUPY_RECURRENT_PATH`` (or the ``recurrent_path`` attribute)
overrides ``cupy``'s, and ``last_paths`` records which path each forward
sequence of the last call took.

Kernels are compiled per device by ``nvcc`` (for the device's exact
``sm_XY``, cached under ``~/.cache/seqbench/kernels``) when nvcc is on the
PATH, otherwise by NVRTC through ``cupy.RawModule``;
``SEQBENCH_CUPY_COMPILER=nvcc|nvrtc`` forces one. The constructor compiles
and loads everything, so a missing compiler or a broken kernel makes the
backend unavailable with the reason, and without a CUDA device it is
unavailable with ``"no CUDA device: <reason>"`` — never a crash.

This module imports no CuPy at import time: the tests use its compile
settings (:func:`nvcc_command`, :data:`KERNELS`) and :class:`HostKernels`
(the kernels' host build through ctypes) on machines without a GPU.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from seqbench.backends.protocol import Backend, BackendUnavailable, TrainingSteps

from . import cells as cupy_cells, embedding as cupy_embedding, graphs as cupy_graphs
from .cells import SUFFIX, Context

KERNELS_DIR = Path(__file__).with_name("kernels")
HEADERS = ("cell_math.cuh", "kernel_common.cuh")
CXX_FLAGS = ("-std=c++17",)
#: Also instantiate the float16 kernels (storage in half, arithmetic in float: cell_math.cuh's Acc).
DEFINES = ("-DSEQBENCH_HALF",)

#: The exported kernels of each source, without the dtype suffix (``_f32``/``_f64`` are appended).
KERNELS = {
    "rnn_cells.cu": (
        "rnn_forward_step", "rnn_backward_step", "lstm_forward_step", "lstm_backward_step",
        "gru_notes_gates_step", "gru_notes_candidate_step", "gru_notes_backward_step_1",
        "gru_notes_backward_step_2", "gru_reset_after_step", "gru_reset_after_backward_step",
    ),
    "persistent_lstm.cu": (
        "persistent_rnn_forward", "persistent_lstm_forward", "persistent_gru_notes_forward",
        "persistent_gru_reset_after_forward",
    ),
    "embedding.cu": ("negative_sampling", "glove"),
}
#: Sources whose kernels need a cooperative launch (grid-wide sync).
COOPERATIVE = ("persistent_lstm.cu",)
#: Sources without float16 kernels (their gradients are scattered with float/double atomics).
NO_HALF = ("embedding.cu",)
#: The host build of the kernels and their math (tests; see its header).
HOST_HARNESS = "host_harness.cu"

BLOCK = 256  # SB_BLOCK in kernel_common.cuh
PERSISTENT_THREADS = 256  # in persistent_lstm.cu
PERSISTENT_MAX_B = 16
PERSISTENT_ROWS = {"rnn": 1, "lstm": 4, "gru_notes": 2, "gru_reset_after": 3}  # R (+1 for W_hh: notes)
MAX_GRID = 65535
#: The recurrent paths (see the module docstring).
PATHS = ("auto", "graph", "persistent", "fused")
#: Where ``auto`` takes the persistent kernel rather than the graph path: measured on an H200
#: (results/nvidia-h200, LSTM float32, T 64 and 512), it was faster only at batch 1 with at most two
#: hidden units per block (H = 256 on 132 SMs: 0.96-0.98 of the graph path's time forward, 0.71-0.85
#: forward+backward); at H = 1024 (8 units per block) it took 1.8-2.4x the graph path's time, and at
#: B = 16, H = 256 up to 1.3x.
AUTO_PERSISTENT_MAX_B = 1
AUTO_PERSISTENT_MAX_UNITS = 2


def suffixes(source: str, half: bool = True) -> tuple:
    """The dtype suffixes of ``source``'s kernels (``f16`` needs :data:`DEFINES`)."""
    return ("f32", "f64") + (("f16",) if half and source not in NO_HALF else ())


def kernel_names(source: str, suffixes=("f32", "f64")) -> list[str]:
    """The ``extern "C"`` names ``source`` exports."""
    return [f"{stem}_{suffix}" for stem in KERNELS[source] for suffix in suffixes]


def find_nvcc() -> str | None:
    """``nvcc`` from ``$SEQBENCH_NVCC``, the PATH, ``$CUDA_PATH/bin`` or ``/usr/local/cuda/bin``."""
    candidates = [os.environ.get("SEQBENCH_NVCC"), shutil.which("nvcc")]
    roots = (os.environ.get("CUDA_PATH"), "/usr/local/cuda")
    candidates += [str(Path(root) / "bin" / "nvcc") for root in roots if root]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def nvcc_command(nvcc: str, source: str | Path, arch: int | str, output: str | Path, defines: tuple = ()) -> list[str]:
    """The nvcc command line compiling kernel ``source`` to a cubin for ``sm_<arch>`` at ``output``.

    The backend compiles with it for its device; the tests compile every source
    with exactly this command for sm_80 and sm_90.
    """
    return [nvcc, *CXX_FLAGS, f"-arch=sm_{arch}", "-cubin", f"-I{KERNELS_DIR}", *defines, "-o", str(output),
            str(KERNELS_DIR / source)]


def host_build_command(output: str | Path, compiler: str | None = None) -> list[str]:
    """The command building :data:`HOST_HARNESS` into a shared library (g++/c++ if found, else nvcc)."""
    compiler = compiler or shutil.which("g++") or shutil.which("c++") or find_nvcc()
    if compiler is None:
        raise FileNotFoundError("no g++, c++ or nvcc to build the host harness")
    source = str(KERNELS_DIR / HOST_HARNESS)
    if Path(compiler).name.startswith("nvcc"):
        return [compiler, *CXX_FLAGS, "-O1", "-shared", "-Xcompiler", "-fPIC", f"-I{KERNELS_DIR}", "-o", str(output),
                source]
    return [compiler, *CXX_FLAGS, "-O1", "-shared", "-fPIC", f"-I{KERNELS_DIR}", "-x", "c++", "-o", str(output),
            source]


def persistent_geometry(kernel: str, B: int, H: int, sms: int, dtype: str) -> tuple[int, int, int]:
    """``(grid, U, smem_bytes)`` of the persistent kernel: ``U = ceil(H / sms)`` units per block,
    ``grid = ceil(H / U)`` blocks, and the shared memory one block needs (``PersistentSmem::bytes``)."""
    item = np.dtype(dtype).itemsize
    acc = max(item, 4)  # half types compute in float
    R = PERSISTENT_ROWS[kernel]
    extra = 1 if kernel == "gru_notes" else 0
    U = math.ceil(H / sms)
    grid = math.ceil(H / U)
    smem = (R * U * B + U * B) * acc + (R + extra) * U * H * item + B * H * item
    return grid, U, smem


def auto_takes_persistent(B: int, U: int) -> bool:
    """Whether ``auto`` runs a forward sequence of batch ``B`` with ``U`` units per block persistently."""
    return B <= AUTO_PERSISTENT_MAX_B and U <= AUTO_PERSISTENT_MAX_UNITS


def persistent_args(spec, P, xp_all, hs, cs, y, saved, rh, lengths, U: int) -> tuple:
    """The persistent kernel's arguments; unused buffers are passed as some valid array."""
    T, B, _ = xp_all.shape
    H = hs.shape[2]
    return (xp_all, P.W_h, P.W_hh if P.W_hh is not None else P.W_h, P.b_h if P.b_h is not None else P.W_h, hs,
            cs if cs is not None else hs, y, saved, rh if rh is not None else y, lengths,
            np.int32(T), np.int32(B), np.int32(H), np.int32(U))


def _sources_digest(*extra: str) -> str:
    h = hashlib.sha256()
    for name in (*HEADERS, *KERNELS):
        h.update((KERNELS_DIR / name).read_bytes())
    for item in extra:
        h.update(item.encode())
    return h.hexdigest()[:16]


# ---- launchers -----------------------------------------------------------------------------------


class HostKernels:
    """The kernels' host build (:data:`HOST_HARNESS`, a shared library) behind the launcher interface
    of :class:`~.cells.Context`: NumPy arrays in, every "thread" run in one loop on the CPU."""

    def __init__(self, library: str | Path):
        self.lib = ctypes.CDLL(str(library))
        self._recording: list | None = None  # launches deferred by a capture (see `graphs`)

    @staticmethod
    def _arg(value):
        if isinstance(value, np.ndarray):
            if not value.flags.c_contiguous:
                raise ValueError(f"kernel arguments must be C-contiguous, got strides {value.strides}")
            return ctypes.c_void_p(value.ctypes.data)
        if isinstance(value, np.float32):
            return ctypes.c_float(value)
        if isinstance(value, np.float64):
            return ctypes.c_double(value)
        if isinstance(value, (int, np.integer)):
            return ctypes.c_int(int(value))
        raise TypeError(f"unsupported kernel argument {value!r}")

    def function(self, name: str, dtype: str):
        return getattr(self.lib, f"{name}_{SUFFIX[dtype]}")

    def launch(self, name, dtype, n, *args):
        fn, c_args = self.function(name, dtype), tuple(self._arg(a) for a in args)
        self._run(lambda: fn(*c_args))

    launch_warps = launch

    def gemm(self, a, b, out):
        self._run(lambda: np.matmul(a, b, out=out))

    def _run(self, call):
        if self._recording is None:
            call()
        else:
            self._recording.append(call)

    def graphs(self, capacity: int = cupy_graphs.CAPACITY) -> cupy_graphs.StepGraphs:
        """Step graphs with a CUDA graph's semantics over the host build: a capture records the
        loop's launches and GEMMs with their arguments (pointers, step numbers) frozen and runs
        nothing; a replay runs the record. A loop that read a device value on the host, or
        allocated, during its capture would compute wrong results here, as on a GPU."""

        def capture(loop):
            self._recording = calls = []
            try:
                loop()
            finally:
                self._recording = None
            return calls

        def replay(calls):
            for call in calls:
                call()

        def layout(a):
            return a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str

        return cupy_graphs.StepGraphs(capture, replay, lambda loop: loop(), layout, capacity, gemm=self.gemm)

    def context(self, persistent_sms: int | None = None, graphs: cupy_graphs.StepGraphs | None = None) -> Context:
        """A NumPy context; with ``persistent_sms``, forward sequences run the persistent
        kernel's host emulation as if the device had that many SMs; with ``graphs`` (from
        :meth:`graphs`), the step loops run through them."""
        steps = {} if graphs is None else {"gemm": graphs.gemm, "graphs": graphs}
        if persistent_sms is None:
            return Context(np, self.launch, self.launch_warps, **steps)

        def persistent(spec, P, xp_all, hs, cs, y, saved, rh, lengths):
            B, H = hs.shape[1:]
            if B > PERSISTENT_MAX_B:
                return False
            grid, U, _ = persistent_geometry(spec.kernel, B, H, persistent_sms, hs.dtype.name)
            fn = getattr(self.lib, f"persistent_{spec.kernel}_forward_host_{SUFFIX[hs.dtype.name]}")
            fn(ctypes.c_int(grid), *(self._arg(a) for a in persistent_args(spec, P, xp_all, hs, cs, y, saved, rh,
                                                                           lengths, U)))
            return True

        return Context(np, self.launch, self.launch_warps, persistent, **steps)

    def persistent_smem_bytes(self, kernel: str, dtype: str, B: int, H: int, U: int) -> int:
        fn = getattr(self.lib, f"persistent_smem_bytes_{kernel}_{SUFFIX[dtype]}")
        fn.restype = ctypes.c_longlong
        return fn(ctypes.c_int(B), ctypes.c_int(H), ctypes.c_int(U))


class GpuKernels:
    """The kernels compiled for one device and loaded as CuPy RawModules.

    Compiled with :data:`DEFINES` (float16 kernels too); should that fail
    (e.g. NVRTC without the CUDA headers for ``cuda_fp16.h``), compiled again
    without, and ``half`` is False (the backend then offers no float16). The
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
            cubin = self._nvcc_cubin(source, defines)
            return self.cupy.RawModule(path=str(cubin), enable_cooperative_groups=cooperative)
        code = (KERNELS_DIR / source).read_text()
        return self.cupy.RawModule(code=code, options=(*CXX_FLAGS, *defines, f"-I{KERNELS_DIR}"),
                                   enable_cooperative_groups=cooperative)

    def _nvcc_cubin(self, source: str, defines: tuple) -> Path:
        nvcc = find_nvcc()
        cache = Path(os.environ.get("SEQBENCH_CACHE", Path.home() / ".cache" / "seqbench")) / "kernels"
        cache.mkdir(parents=True, exist_ok=True)
        version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
        digest = _sources_digest(version, *CXX_FLAGS, *defines)
        cubin = cache / f"{Path(source).stem}-sm{self.arch}-{digest}.cubin"
        if not cubin.exists():
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                out = Path(tmp) / cubin.name
                done = subprocess.run(nvcc_command(nvcc, source, self.arch, out, defines=defines),
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"nvcc failed on {source} for sm_{self.arch}:\n{done.stderr[-4000:]}")
                os.replace(out, cubin)  # atomic: concurrent processes never load half a file
        return cubin

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


class PersistentPlanner:
    """Runs a forward sequence in one persistent kernel where it fits (``Context.persistent``).

    Block k owns ``U = ceil(H / #SMs)`` hidden units and keeps their recurrent
    weight rows on chip, so it needs (kernels/persistent_lstm.cu)::

        smem = (R + E)·U·H·sizeof(T) + B·H·sizeof(T) + (R·U·B + U·B)·sizeof(A)

    (``R`` gate rows per unit, ``E = 1`` for the notes GRU's ``W_hh``, ``A`` the
    arithmetic type) within the opt-in shared memory per block, one block per
    SM, all co-resident. It does not fit when ``B > 16``, when that exceeds
    the device's shared memory (e.g. float32 LSTM at B = 16 needs ~195 KB at
    H = 1024 on 132 SMs), or without cooperative launch; the caller then takes
    the step-by-step path.
    """

    def __init__(self, cupy, kernels: GpuKernels, mode: str):
        self.cupy, self.kernels, self.mode = cupy, kernels, mode
        rt = cupy.cuda.runtime
        dev = kernels.device
        self.sms = rt.deviceGetAttribute(rt.cudaDevAttrMultiProcessorCount, dev)
        self.smem_max = rt.deviceGetAttribute(rt.cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)
        self.cooperative = bool(rt.deviceGetAttribute(rt.cudaDevAttrCooperativeLaunch, dev))
        self._plans: dict = {}  # (kernel, B, H, dtype) -> plan or reason

    def plan(self, kernel: str, B: int, H: int, dtype: str):
        """``(grid, U, smem_bytes)`` or a string saying why the persistent kernel does not fit."""
        if not self.cooperative:
            return "the device has no cooperative launch"
        if self.kernels.persistent_error:
            return f"the persistent kernels did not build or load: {self.kernels.persistent_error}"
        if B > PERSISTENT_MAX_B:
            return f"batch {B} > {PERSISTENT_MAX_B}"
        grid, U, smem = persistent_geometry(kernel, B, H, self.sms, dtype)
        if self.mode == "auto" and not auto_takes_persistent(B, U):
            return (f"the graph path measured faster at batch {B} with {U} units per block (auto takes the "
                    f"persistent kernel at batch <= {AUTO_PERSISTENT_MAX_B}, <= {AUTO_PERSISTENT_MAX_UNITS} units)")
        if smem > self.smem_max:
            return f"needs {smem} B of shared memory per block, the device has {self.smem_max} B"
        fn = self.kernels.function(f"persistent_{kernel}_forward", dtype)
        if smem > 48 * 1024:
            fn.max_dynamic_shared_size_bytes = smem
        occupancy = self.cupy.cuda.driver.occupancyMaxActiveBlocksPerMultiprocessor(
            fn.kernel.ptr, PERSISTENT_THREADS, smem)
        if occupancy * self.sms < grid:
            return f"{grid} blocks are not co-resident ({occupancy} per SM × {self.sms} SMs)"
        return grid, U, smem

    def __call__(self, spec, P, xp_all, hs, cs, y, saved, rh, lengths) -> bool:
        if self.mode in ("fused", "graph"):
            return False
        B, H = hs.shape[1:]
        dtype = hs.dtype.name
        key = (spec.kernel, B, H, dtype)
        if key not in self._plans:
            self._plans[key] = self.plan(*key)
        plan = self._plans[key]
        if isinstance(plan, str):
            if self.mode == "persistent":
                raise RuntimeError(f"recurrent_path='persistent' but the persistent kernel does not fit: {plan}")
            return False
        grid, U, smem = plan
        fn = self.kernels.function(f"persistent_{spec.kernel}_forward", dtype)
        fn((grid,), (PERSISTENT_THREADS,), persistent_args(spec, P, xp_all, hs, cs, y, saved, rh, lengths, U),
           shared_mem=smem)
        return True


# ---- the backend ---------------------------------------------------------------------------------


def _compiler() -> str:
    choice = os.environ.get("SEQBENCH_CUPY_COMPILER", "auto")
    if choice not in ("auto", "nvcc", "nvrtc"):
        raise BackendUnavailable(f"SEQBENCH_CUPY_COMPILER must be auto, nvcc or nvrtc, got {choice!r}")
    if choice == "auto":
        return "nvcc" if find_nvcc() else "nvrtc"
    if choice == "nvcc" and not find_nvcc():
        raise BackendUnavailable("SEQBENCH_CUPY_COMPILER=nvcc but nvcc is not on the PATH")
    return choice


def _nvidia_driver() -> bool:
    """Whether an NVIDIA driver is loaded here at all (its device files or its /proc entry)."""
    return any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version"))


class CupyBackend(Backend):
    name = "cupy"
    #: The recurrent path (:data:`PATHS`); ``None``: ``$SEQBENCH_CUPY_RECURRENT_PATH``, else ``auto``.
    path: str | None = None
    #: float16 (half storage, float arithmetic in the kernels, cuBLAS for the GEMMs) where the
    #: half kernels compiled; bfloat16 has no CuPy dtype.
    dtypes_by_device = {"cuda": ("float32", "float64", "float16")}
    _FUNCTIONS = cupy_cells.FUNCTIONS + cupy_embedding.FUNCTIONS

    def __init__(self):
        try:
            import cupy
        except Exception as error:  # ImportError, or a CUDA library missing at import
            raise BackendUnavailable(f"cupy is not importable ({type(error).__name__}: {error}); "
                                     "pip install 'seqbench[cupy]'") from None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as error:  # e.g. cudaErrorInsufficientDriver / cudaErrorNoDevice
            if not _nvidia_driver():  # CUDA's own words ("driver version is insufficient") mislead here
                raise BackendUnavailable("no NVIDIA GPU/driver on this machine") from None
            raise BackendUnavailable(f"no CUDA device: {type(error).__name__}: {error}") from None
        if count == 0:
            raise BackendUnavailable("no CUDA device: cupy.cuda.runtime.getDeviceCount() returned 0")
        self.cp = cupy
        self._count = count
        self.compiler = _compiler()
        self.recurrent_path = self.path or os.environ.get("SEQBENCH_CUPY_RECURRENT_PATH", "auto")
        self._kernels: dict[int, GpuKernels] = {}
        self._planners: dict[int, PersistentPlanner] = {}
        self._graphs: dict[int, cupy_graphs.StepGraphs | str] = {}
        self._paths: list = []
        self._peak: dict[int, int] = {}
        self._tracking = False
        try:
            self._gpu(0)
        except Exception as error:
            raise BackendUnavailable(f"the CUDA kernels did not compile or load with {self.compiler} "
                                     f"({type(error).__name__}: {str(error)[:2000]})") from None
        if self.path == "graph" and isinstance(self._step_graphs(0), str):
            raise BackendUnavailable(f"cuBLAS for captured GEMMs did not load: {self._step_graphs(0)}")

    # --- devices ---------------------------------------------------------------------------

    def devices(self):
        return ["cuda" if k == 0 else f"cuda:{k}" for k in range(self._count)]

    @staticmethod
    def _index(device: str) -> int:
        return int(device.partition(":")[2] or 0)

    def _gpu(self, index: int) -> GpuKernels:
        if index not in self._kernels:
            with self.cp.cuda.Device(index):
                self._kernels[index] = GpuKernels(self.cp, index, self.compiler)
        return self._kernels[index]

    def _step_graphs(self, index: int) -> cupy_graphs.StepGraphs | str:
        """The device's step graphs, or why they are unavailable (the loops then run from the host)."""
        if index not in self._graphs:
            try:
                with self.cp.cuda.Device(index):
                    cublas = cupy_graphs.Cublas(self.cp, tf32=self.math_mode("cuda", "float32") == "tf32")
                    self._graphs[index] = cupy_graphs.StepGraphs.on_device(self.cp, cublas)
            except Exception as error:  # noqa: BLE001 - reported by graph_status; the host loop still works
                self._graphs[index] = f"{type(error).__name__}: {str(error)[:500]}"
        return self._graphs[index]

    def _context(self, index: int) -> Context:
        kernels = self._gpu(index)
        if self.recurrent_path not in PATHS:
            raise ValueError(f"recurrent_path must be one of {', '.join(PATHS)}, got {self.recurrent_path!r}")
        planner = self._planners.get(index)
        if planner is None or planner.mode != self.recurrent_path:
            planner = self._planners[index] = PersistentPlanner(self.cp, kernels, self.recurrent_path)
        graphs = None if self.recurrent_path == "fused" else self._step_graphs(index)
        steps = {} if graphs is None or isinstance(graphs, str) else {"gemm": graphs.gemm, "graphs": graphs}
        ctx = Context(self.cp, kernels.launch, kernels.launch_warps, planner, **steps)
        self._paths = ctx.paths
        return ctx

    @property
    def last_paths(self) -> list:
        """``"persistent"``, ``"graph"`` or ``"fused"`` for each forward sequence of the last call."""
        return list(self._paths)

    def graph_status(self, device: str = "cuda") -> dict:
        """The step graphs of ``device``: graphs captured and replayed so far, and why not, if they failed
        (none yet where no call needed them: the ``fused`` path never does)."""
        graphs = self._graphs.get(self._index(device))
        if graphs is None:
            return {"captures": 0, "replays": 0, "error": ""}
        if isinstance(graphs, str):
            return {"captures": 0, "replays": 0, "error": graphs}
        return {"captures": graphs.captures, "replays": graphs.replays, "error": graphs.error}

    def dtypes(self, device):
        dtypes = super().dtypes(device)
        return dtypes if self._gpu(0).half else tuple(d for d in dtypes if d != "float16")

    def implemented(self):
        from seqbench import catalog

        return {name for name, op in catalog.ops().items() if op.function in self._FUNCTIONS}

    def support_reason(self, op, device, dtype):
        if dtype == "float16" and op.function in cupy_embedding.FUNCTIONS:
            return "cupy: the embedding kernels scatter gradients with float32/float64 atomics; no float16"
        return ""

    def to_device(self, array, device, dtype):
        with self.cp.cuda.Device(self._index(device)):
            return self.cp.asarray(np.asarray(array, dtype=dtype) if dtype else np.asarray(array))

    def to_numpy(self, array):
        return self.cp.asnumpy(array)

    # --- ops -------------------------------------------------------------------------------

    def forward_impl(self, op, device, dtype):
        index = self._index(device)

        def forward(**inputs):
            with self.cp.cuda.Device(index):
                ctx = self._context(index)
                if op.function in cupy_cells.FUNCTIONS:
                    return cupy_cells.recurrent_forward(ctx, op.function, inputs)
                return cupy_embedding.embedding_forward(ctx, op.function, inputs)

        return forward

    def vjp_impl(self, op, device, dtype):
        index = self._index(device)

        def vjp(cotangents, **inputs):
            with self.cp.cuda.Device(index):
                ctx = self._context(index)
                if op.function in cupy_cells.FUNCTIONS:
                    return cupy_cells.recurrent_vjp(ctx, op.function, tuple(cotangents), inputs)
                return cupy_embedding.embedding_vjp(ctx, op.function, tuple(cotangents), inputs)

        return vjp

    def training_steps(self, device, dtype):
        index = self._index(device)

        def on_gpu(step):
            def call(state, *batch):
                with self.cp.cuda.Device(index):
                    return step(self._context(index), state, *batch)
            return call

        return TrainingSteps(on_gpu(cupy_embedding.negative_sampling_step), on_gpu(cupy_embedding.glove_step))

    # --- measurement -----------------------------------------------------------------------

    def synchronize(self, device):
        self.cp.cuda.Device(self._index(device)).synchronize()

    def _track_peaks(self):
        """Route allocations through the default pool, noting its in-use bytes after each one."""
        pool = self.cp.get_default_memory_pool()

        def malloc(size):
            memory = pool.malloc(size)
            index = self.cp.cuda.runtime.getDevice()
            self._peak[index] = max(self._peak.get(index, 0), pool.used_bytes())
            return memory

        self.cp.cuda.set_allocator(malloc)
        self._tracking = True

    def reset_peak_memory(self, device):
        if not self._tracking:
            self._track_peaks()
        index = self._index(device)
        with self.cp.cuda.Device(index):
            self._peak[index] = self.cp.get_default_memory_pool().used_bytes()

    def peak_memory(self, device):
        return self._peak.get(self._index(device)) if self._tracking else None

    def device_name(self, device):
        name = self.cp.cuda.runtime.getDeviceProperties(self._index(device))["name"]
        return name.decode() if isinstance(name, bytes) else str(name)

    def versions(self):
        rt = self.cp.cuda.runtime
        versions = {"cupy": self.cp.__version__, "numpy": np.__version__, "cuda_runtime": rt.runtimeGetVersion(),
                    "cuda_driver": rt.driverGetVersion(), "kernel_compiler": self.compiler}
        if self.compiler == "nvcc":
            out = subprocess.run([find_nvcc(), "--version"], capture_output=True, text=True).stdout
            versions["nvcc"] = out.strip().splitlines()[-1] if out.strip() else "unknown"
        return versions

    def math_mode(self, device, dtype):
        # CuPy's matmul uses TF32 tensor cores for float32 only when CUPY_TF32=1.
        return "tf32" if dtype == "float32" and os.environ.get("CUPY_TF32", "0") != "0" else "ieee"


class CupyGraphBackend(CupyBackend):
    """``cupy`` with every recurrent sequence, forward and backward, run step by step from CUDA graphs."""

    name = "cupy-graph"
    path = "graph"


class CupyFusedBackend(CupyBackend):
    """``cupy`` with the step loops run from the host, one launch at a time (the path before graphs)."""

    name = "cupy-fused"
    path = "fused"
