"""The persistent whole-sequence forward kernel (``kernels/persistent_lstm.cu``): its geometry and arguments, where
``auto`` takes it, and :class:`PersistentPlanner`, which runs it where it fits.
"""

from __future__ import annotations

import math

import numpy as np

PERSISTENT_THREADS = 256  # in persistent_lstm.cu
PERSISTENT_MAX_B = 16
PERSISTENT_ROWS = {"rnn": 1, "lstm": 4, "gru_notes": 2, "gru_reset_after": 3}  # R (+1 for W_hh: notes)
#: Where ``auto`` takes the persistent kernel rather than the graph path: measured on an H200
#: (results/nvidia-h200, LSTM float32, T 64 and 512), it was faster only at batch 1 with at most two
#: hidden units per block (H = 256 on 132 SMs: 0.96-0.98 of the graph path's time forward, 0.71-0.85
#: forward+backward); at H = 1024 (8 units per block) it took 1.8-2.4x the graph path's time, and at
#: B = 16, H = 256 up to 1.3x.
AUTO_PERSISTENT_MAX_B = 1
AUTO_PERSISTENT_MAX_UNITS = 2


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

    def __init__(self, cupy, kernels, mode: str):
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

