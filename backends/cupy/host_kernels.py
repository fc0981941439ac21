"""The kernels' host build (``kernels/host_harness.cu``) behind the launcher interface of a :class:`~.context.Context`:
the cupy backend's own code run on the CPU, over NumPy arrays (tests only)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from .context import Context
from .corpus_trainer import CorpusTrainer, Launch, MIN_SEGMENT
from .graphs import CAPACITY, StepGraphs
from .planner import PERSISTENT_MAX_B, persistent_args, persistent_geometry
from .toolchain import SUFFIX


class HostKernels:
    """The kernels' host build (:data:`.toolchain.HOST_HARNESS`, a shared library) behind the launcher interface
    of :class:`~.context.Context`: NumPy arrays in, every "thread" run in one loop on the CPU."""

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

    _TYPED = {np.int32: ctypes.c_int, np.int64: ctypes.c_longlong, np.uint64: ctypes.c_ulonglong,
              np.float32: ctypes.c_float, np.float64: ctypes.c_double}

    def launch_typed(self, name, dtype, launch, *args):
        """Kernel ``name`` with its arguments typed as given (NumPy int32, int64, uint64, float32, float64 scalars
        and C-contiguous arrays), run by one warp on the host; ``launch`` (a GPU's geometry) is not used."""
        fn = self.function(name, dtype)
        c_args = tuple(self._arg(a) if isinstance(a, np.ndarray) else self._TYPED[type(a)](a) for a in args)
        self._run(lambda: fn(*c_args))

    def corpus_trainer(self, encoded, keep, noise, window, negative, seed, segment: int = MIN_SEGMENT
                       ) -> CorpusTrainer:
        """The device-corpus skip-gram trainer (:class:`~.corpus_trainer.CorpusTrainer`) on the host build: one
        warp takes the runs of ``segment`` positions one after the other, so pairs train in corpus order."""

        def plan(n, per_warp):
            return Launch(segment, max(1, -(-n // segment)), 1, 1, per_warp)

        return CorpusTrainer(np, self.launch_typed, plan, encoded, keep, noise, window, negative, seed)

    def gemm(self, a, b, out):
        self._run(lambda: np.matmul(a, b, out=out))

    def _run(self, call):
        if self._recording is None:
            call()
        else:
            self._recording.append(call)

    def graphs(self, capacity: int = CAPACITY) -> StepGraphs:
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

        return StepGraphs(capture, replay, lambda loop: loop(), layout, capacity, gemm=self.gemm)

    def context(self, persistent_sms: int | None = None, graphs: StepGraphs | None = None) -> Context:
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
