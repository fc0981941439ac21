"""The cupy backends: ``cupy`` and, one per recurrent path, ``cupy-graph`` and ``cupy-fused``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from seqbench.backends.protocol import Backend, BackendUnavailable, Support, TrainingSteps, Traits

from . import embedding, recurrent
from .context import Context
from .corpus_trainer import gpu_trainer
from .gpu_kernels import GpuKernels
from .graphs import Cublas, StepGraphs
from .planner import PersistentPlanner
from .toolchain import choose_compiler, nvcc_version

#: The recurrent paths (see :class:`CupyBackend`).
PATHS = ("auto", "graph", "persistent", "fused")
#: what asv's fork server imports for the cupy backends
PREIMPORT = ("cupy",)
#: the three paths of these kernels are one family in reports (:class:`~seqbench.backends.protocol.Traits`)
FAMILY = "cupy"


def _nvidia_driver() -> bool:
    """Whether an NVIDIA driver is loaded here at all (its device files or its /proc entry)."""
    return any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version"))


class CupyBackend(Backend):
    """Hand-written CUDA kernels (``kernels/*.cu``) plus cuBLAS GEMMs through CuPy.

    * Recurrent ops (:mod:`.recurrent`, :mod:`.cells`): the input projection of all T steps is
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
      (see :class:`.planner.PersistentPlanner`).
    * Embedding objectives (:mod:`.embedding`): negative sampling and GloVe,
      loss and gradient in one kernel launch each, sparse row updates by atomics.
    * Skip-gram trained from the corpus itself (:mod:`.corpus_trainer`, ``TrainingSteps.corpus``): the encoded
      corpus on the device, subsampling, windows and noise words drawn there, one launch per chunk
      (``kernels/skipgram_corpus.cu``).

    Paths (:data:`PATHS`): ``auto`` (persistent where it was measured faster,
    see :data:`.planner.AUTO_PERSISTENT_MAX_B`, else graph),
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
    ``SEQBENCH_CUPY_COMPILER=nvcc|nvrtc`` forces one (:mod:`.toolchain`). The constructor compiles
    and loads everything, so a missing compiler or a broken kernel makes the
    backend unavailable with the reason, and without a CUDA device it is
    unavailable with ``"no CUDA device: <reason>"`` — never a crash.
    """

    name = "cupy"
    traits = Traits(implementation="raw CUDA kernels", preimport=PREIMPORT, family=FAMILY)
    #: The recurrent path (:data:`PATHS`); ``None``: ``$SEQBENCH_CUPY_RECURRENT_PATH``, else ``auto``.
    path: str | None = None
    #: float16 (half storage, float arithmetic in the kernels, cuBLAS for the GEMMs) where the
    #: half kernels compiled; bfloat16 has no CuPy dtype.
    dtypes_by_device = {"cuda": ("float32", "float64", "float16")}
    _FUNCTIONS = recurrent.FUNCTIONS + embedding.FUNCTIONS

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
        self.compiler = choose_compiler()
        self.recurrent_path = self.path or os.environ.get("SEQBENCH_CUPY_RECURRENT_PATH", "auto")
        self._kernels: dict[int, GpuKernels] = {}
        self._planners: dict[int, PersistentPlanner] = {}
        self._graphs: dict[int, StepGraphs | str] = {}
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

    def _step_graphs(self, index: int) -> StepGraphs | str:
        """The device's step graphs, or why they are unavailable (the loops then run from the host)."""
        if index not in self._graphs:
            try:
                with self.cp.cuda.Device(index):
                    cublas = Cublas(self.cp, tf32=self.math_mode("cuda", "float32") == "tf32")
                    self._graphs[index] = StepGraphs.on_device(self.cp, cublas)
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

    def supports(self, op, device="cuda", dtype="float32"):
        """As every backend's; where the float16 kernels did not compile, says so and why."""
        kernels = self._gpu(0)
        if dtype == "float16" and not kernels.half and device in self.devices():
            return Support(False, f"{self.name}: float16 is not offered here: the float16 kernels did not compile "
                                  f"with {self.compiler} ({kernels.half_error})")
        return super().supports(op, device, dtype)

    def implemented(self):
        from seqbench import catalog

        return {name for name, op in catalog.ops().items() if op.function in self._FUNCTIONS}

    def support_reason(self, op, device, dtype):
        if dtype == "float16" and op.function in embedding.FUNCTIONS:
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
                if op.function in recurrent.FUNCTIONS:
                    return recurrent.recurrent_forward(ctx, op.function, inputs)
                return embedding.embedding_forward(ctx, op.function, inputs)

        return forward

    def vjp_impl(self, op, device, dtype):
        index = self._index(device)

        def vjp(cotangents, **inputs):
            with self.cp.cuda.Device(index):
                ctx = self._context(index)
                if op.function in recurrent.FUNCTIONS:
                    return recurrent.recurrent_vjp(ctx, op.function, tuple(cotangents), inputs)
                return embedding.embedding_vjp(ctx, op.function, tuple(cotangents), inputs)

        return vjp

    def training_steps(self, device, dtype):
        index = self._index(device)

        def on_gpu(step):
            def call(state, *batch):
                with self.cp.cuda.Device(index):
                    return step(self._context(index), state, *batch)
            return call

        def corpus(encoded, keep, noise, window, negative, seed):  # skip-gram drawn and trained on the device
            with self.cp.cuda.Device(index):
                return gpu_trainer(self.cp, self._gpu(index), index, encoded, keep, noise, window, negative, seed)

        return TrainingSteps(on_gpu(embedding.negative_sampling_step), on_gpu(embedding.glove_step), corpus=corpus)

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
            out = nvcc_version()
            versions["nvcc"] = out.strip().splitlines()[-1] if out.strip() else "unknown"
        return versions

    def math_mode(self, device, dtype):
        # CuPy's matmul uses TF32 tensor cores for float32 only when CUPY_TF32=1.
        return "tf32" if dtype == "float32" and os.environ.get("CUPY_TF32", "0") != "0" else "ieee"


class CupyGraphBackend(CupyBackend):
    """``cupy`` with every recurrent sequence, forward and backward, run step by step from CUDA graphs."""

    name = "cupy-graph"
    traits = Traits(implementation="raw CUDA kernels, CUDA-graph step loop", preimport=PREIMPORT, family=FAMILY)
    path = "graph"


class CupyFusedBackend(CupyBackend):
    """``cupy`` with the step loops run from the host, one launch at a time (the path before graphs)."""

    name = "cupy-fused"
    traits = Traits(implementation="raw CUDA kernels, host step loop", preimport=PREIMPORT, family=FAMILY)
    path = "fused"
