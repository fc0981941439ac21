"""Skip-gram over the encoded corpus on the device: the cupy backend's ``TrainingSteps.corpus``.

:class:`CorpusTrainer` uploads the encoded corpus (:class:`~seqbench.embed.pipeline.Encoded`: int32 ids and
sentence starts), the keep probabilities (V,) and the alias table of the noise distribution
(:class:`~seqbench.embed.pipeline.NoiseTable`) once; each call then trains one chunk of corpus positions with
ONE launch of ``kernels/skipgram_corpus.cu``, whose header states the algorithm and its equations:
subsampling, dynamic windows and a window's ``K`` noise words drawn on the device from a counter-based hash
of (seed, epoch, position) — so the draws do not depend on the launch configuration — and skip-gram trained
with the window's noise words shared (HogBatch), pair after pair, a warp per run of positions, lock-free
across warps. Run by one warp (the host build), a launch is exactly the reference's
:func:`~seqbench.reference.training.negative_sampling_step` with ``B = 1`` applied to the pairs it trains,
in order; :meth:`CorpusTrainer.record` returns those pairs (the kernel's record mode) so tests check it.

The launch (:class:`Launch`, :func:`plan`): runs of at least :data:`MIN_SEGMENT` positions, about
:data:`RUNS_PER_WARP` runs per warp resident on the device, up to :data:`MAX_WARPS_PER_BLOCK` warps per
block as the warps' shared memory allows (:func:`warp_bytes`). ``$SEQBENCH_CUPY_CORPUS_LAUNCH`` (e.g.
``segment=64,warps=4,blocks=528``) overrides any of the three, to compare launch configurations.
"""

from __future__ import annotations

import math
import os
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

KERNEL = "skipgram_corpus"
#: positions per run at least (a warp's run: its windows read the ids of neighbouring runs, never their rows)
MIN_SEGMENT = 32
#: runs per warp resident on the device, so a launch's tail is short
RUNS_PER_WARP = 4
MAX_WARPS_PER_BLOCK = 8
#: dynamic shared memory a block may use without opting in
DEFAULT_SHARED = 48 * 1024
#: the record's fields per pair trained, then the window's K noise words
RECORD_FIELDS = ("centre_pos", "context_pos", "reach", "centre", "context")
#: the environment variable overriding the launch: ``segment=..,warps=..,blocks=..``
LAUNCH_ENV = "SEQBENCH_CUPY_CORPUS_LAUNCH"
DTYPES = ("float32", "float64")


def _align16(n: int) -> int:
    return (n + 15) // 16 * 16


def warp_bytes(d: int, K: int, window: int, dtype) -> int:
    """The shared memory one warp uses (the kernel's ``warp_bytes<T>``): ``h`` and the window's target rows
    twice, ``(2K + 3)·d`` values; the coefficients ``c_j``; the target ids and context positions (int64); the
    distinct-row index of each target (int32)."""
    item = np.dtype(dtype).itemsize
    return (_align16((2 * K + 3) * d * item) + _align16((K + 1) * item) + _align16((K + 1) * 8)
            + _align16(2 * window * 8) + _align16((K + 1) * 4))


@dataclass(frozen=True)
class Launch:
    """A chunk's launch: ``segments`` runs of ``segment`` positions over ``blocks`` blocks of ``warps`` warps,
    ``shared`` bytes of dynamic shared memory per block."""

    segment: int
    segments: int
    blocks: int
    warps: int
    shared: int


def plan(n: int, per_warp: int, *, sms: int, shared_per_sm: int, shared_per_block: int, threads_per_sm: int = 2048,
         segment: int | None = None, warps: int | None = None, blocks: int | None = None) -> Launch:
    """The launch of ``n`` positions on a device of ``sms`` multiprocessors; ``per_warp``: :func:`warp_bytes`.
    ``segment``, ``warps`` (per block), ``blocks``: given, or chosen (see the module docstring)."""
    if per_warp > shared_per_block:
        raise ValueError(f"skip-gram on the device needs {per_warp} bytes of shared memory per warp (dim, "
                         f"negatives and window too large); the device offers {shared_per_block} per block")
    warps = warps or max(1, min(MAX_WARPS_PER_BLOCK, DEFAULT_SHARED // per_warp))
    if warps * per_warp > shared_per_block:
        raise ValueError(f"{warps} warps per block need {warps * per_warp} bytes of shared memory; the device offers "
                         f"{shared_per_block}")
    per_sm = max(1, min(threads_per_sm // (32 * warps), shared_per_sm // (warps * per_warp)))
    resident = sms * per_sm * warps
    segment = segment or max(MIN_SEGMENT, math.ceil(n / (RUNS_PER_WARP * resident)))
    segments = max(1, math.ceil(n / segment))
    blocks = blocks or max(1, min(math.ceil(segments / warps), sms * per_sm))
    return Launch(segment, segments, blocks, warps, warps * per_warp)


def launch_options(value: str | None = None) -> dict:
    """``{"segment": .., "warps": .., "blocks": ..}`` from ``value`` (default ``$SEQBENCH_CUPY_CORPUS_LAUNCH``)."""
    value = os.environ.get(LAUNCH_ENV, "") if value is None else value
    options = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, number = item.partition("=")
        if name not in ("segment", "warps", "blocks") or not number.isdigit() or int(number) < 1:
            raise ValueError(f"{LAUNCH_ENV} takes segment=N, warps=N, blocks=N (N ≥ 1), comma-separated; "
                             f"got {item!r}")
        options[name] = int(number)
    return options


@dataclass(frozen=True)
class Record:
    """What a launch trained, from the kernel's record mode.

    ``pairs``: (P, 5 + K) int64, one row per pair in the order trained (run by run): the centre's and the
    context word's corpus positions, the reach ``b_t`` drawn, the centre, the context word, the K noise words;
    ``kept``: (n,) bool, whether each position of the chunk was kept by subsampling; ``launch``: the launch.
    """

    pairs: np.ndarray
    kept: np.ndarray
    launch: Launch

    def __getattr__(self, name):
        if name in RECORD_FIELDS:
            return self.pairs[:, RECORD_FIELDS.index(name)]
        raise AttributeError(name)

    @property
    def negatives(self) -> np.ndarray:
        return self.pairs[:, len(RECORD_FIELDS):]


class CorpusTrainer:
    """Skip-gram with negative sampling on the device over an encoded corpus (see the module docstring).

    ``xp``: the array module (CuPy, or NumPy for the host build); ``launch(kernel, dtype, Launch, *args)``
    runs the kernel; ``plan(n, per_warp) -> Launch`` chooses its launch; ``device()``: the context the
    device's work runs in. ``keep``: (V,) keep probabilities; ``noise``: an alias table (``prob``, ``alias``);
    ``window``, ``negative`` (K) and ``seed`` as the trainers' settings.

    ``trainer(state, part, epoch, lr)`` trains the corpus positions ``part`` (a slice) of epoch ``epoch`` at
    learning rate ``lr`` into ``state = {"E_in", "E_out"}`` (device arrays (V, d), float32 or float64) in place.
    """

    def __init__(self, xp, launch: Callable, plan: Callable, encoded, keep, noise, window: int, negative: int,
                 seed: int, device: Callable = nullcontext):
        V = len(noise.prob)
        if np.shape(keep) != (V,) or np.shape(noise.alias) != (V,):
            raise ValueError(f"keep and the alias table must have one entry per word ({V}), got "
                             f"{np.shape(keep)} and {np.shape(noise.alias)}")
        for name, value in (("window", window), ("negative", negative)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}")
        starts = np.asarray(encoded.starts, dtype=np.int64)
        if len(starts) < 2 or starts[0] != 0 or starts[-1] != len(encoded.ids):
            raise ValueError("encoded.starts must run from 0 to the corpus length, one entry per sentence and one more")
        self.xp, self.launch, self.plan, self.device = xp, launch, plan, device
        self.V, self.window, self.negative, self.seed = V, int(window), int(negative), int(seed) % 2**64
        self.words, self.sentences = len(encoded.ids), len(starts) - 1
        with device():
            self.ids = xp.asarray(np.ascontiguousarray(encoded.ids, dtype=np.int32))
            self.starts = xp.asarray(starts)
            self.keep = xp.asarray(np.ascontiguousarray(keep, dtype=np.float64))
            self.prob = xp.asarray(np.ascontiguousarray(noise.prob, dtype=np.float64))
            self.alias = xp.asarray(np.ascontiguousarray(noise.alias, dtype=np.int32))
            self.unrecorded = (xp.zeros(1, np.int64), xp.zeros(1, np.int32), xp.zeros(1, np.int32))  # record off

    def __call__(self, state: dict, part: slice, epoch: int, lr: float) -> dict:
        self._run(state, part, epoch, lr, record=False)
        return state

    def record(self, state: dict, part: slice, epoch: int, lr: float) -> Record:
        """Train as a call does, and return the pairs trained and the positions kept (:class:`Record`)."""
        return self._run(state, part, epoch, lr, record=True)

    def launch_of(self, part: slice, d: int, dtype) -> Launch:
        return self.plan(part.stop - part.start, warp_bytes(d, self.negative, self.window, dtype))

    def _run(self, state, part, epoch, lr, record):
        xp = self.xp
        E_in, E_out = state["E_in"], state["E_out"]
        dtype = np.dtype(E_in.dtype)
        if dtype.name not in DTYPES or E_out.dtype != dtype:
            raise TypeError(f"E_in and E_out must both be float32 or float64, got {E_in.dtype} and {E_out.dtype}")
        if E_in.ndim != 2 or E_in.shape[0] != self.V or E_out.shape != E_in.shape:
            raise ValueError(f"E_in and E_out must be ({self.V}, d), got {E_in.shape} and {E_out.shape}")
        if not (E_in.flags.c_contiguous and E_out.flags.c_contiguous):
            raise ValueError("E_in and E_out must be C-contiguous (the kernel updates them in place)")
        first, last, step = part.indices(self.words)
        if step != 1 or (part.start, part.stop) != (first, last):
            raise ValueError(f"part must be a slice of positions in [0, {self.words}], got {part}")
        if not lr > 0:
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        n = max(last - first, 0)
        d = E_in.shape[1]
        launch = self.launch_of(slice(first, first + n), d, dtype)
        with self.device():
            if record:
                capacity = launch.segment * 2 * self.window  # every pair a run can train
                pairs = xp.zeros((launch.segments, capacity, len(RECORD_FIELDS) + self.negative), np.int64)
                counts, kept = xp.zeros(launch.segments, np.int32), xp.zeros(max(n, 1), np.int32)
            else:
                capacity, (pairs, counts, kept) = 0, self.unrecorded
            if n:
                self.launch(KERNEL, dtype.name, launch, E_in, E_out, np.int64(self.V), np.int32(d), self.ids,
                            self.starts, np.int64(self.sentences), np.int64(first), np.int64(first + n),
                            np.int64(launch.segment), np.int32(launch.segments), self.keep, self.prob, self.alias,
                            np.int32(self.window), np.int32(self.negative), np.uint64(self.seed), np.int32(epoch),
                            dtype.type(lr), pairs, counts, kept, np.int64(capacity))
            if not record:
                return None
            to_numpy = xp.asnumpy if hasattr(xp, "asnumpy") else np.asarray
            pairs, counts, kept = to_numpy(pairs), to_numpy(counts), to_numpy(kept)
        return Record(np.concatenate([pairs[r, :counts[r]] for r in range(len(counts))]), kept[:n].astype(bool),
                      launch)


# ---- on a GPU ---------------------------------------------------------------------------------------------


def gpu_trainer(cupy, kernels, index: int, encoded, keep, noise, window: int, negative: int, seed: int,
                **options) -> CorpusTrainer:
    """A :class:`CorpusTrainer` on CUDA device ``index`` with the kernels ``kernels``
    (:class:`~.gpu_kernels.GpuKernels`); ``options``: :func:`plan`'s ``segment``, ``warps``, ``blocks``
    (default: ``$SEQBENCH_CUPY_CORPUS_LAUNCH``, else chosen)."""
    rt = cupy.cuda.runtime

    def attribute(name):
        return rt.deviceGetAttribute(getattr(rt, f"cudaDevAttr{name}"), index)

    device_plan = partial(plan, sms=attribute("MultiProcessorCount"),
                          shared_per_sm=attribute("MaxSharedMemoryPerMultiprocessor"),
                          shared_per_block=attribute("MaxSharedMemoryPerBlockOptin"),
                          threads_per_sm=attribute("MaxThreadsPerMultiProcessor"),
                          **{**launch_options(), **options})

    def launch(name, dtype, geometry: Launch, *args):
        function = kernels.function(name, dtype)
        if geometry.shared > DEFAULT_SHARED and function.max_dynamic_shared_size_bytes < geometry.shared:
            function.max_dynamic_shared_size_bytes = geometry.shared
        function((geometry.blocks,), (32 * geometry.warps,), args, shared_mem=geometry.shared)

    return CorpusTrainer(cupy, launch, device_plan, encoded, keep, noise, window, negative, seed,
                         device=lambda: cupy.cuda.Device(index))
