"""Misbehaving third-party backends for tests/test_faults.py, found through the ``seqbench.backends`` entry point.

Each computes the reference (it is the numpy backend) except in one place,
where it faults as real backends and GPU kernels do: it kills its own
process, exits, hangs, runs out of host or device memory, leaves a CUDA
context unusable, or just takes its time. ``cuda`` here is a fake device
(the backend claims it; nothing touches a GPU), so the GPU paths of the
runner are tested on any machine.
"""

import os
import signal
import time
from pathlib import Path

import numpy as np

from seqbench.backends.numpy_backend import NumpyBackend


class Faulty(NumpyBackend):
    name = "faulty"
    ops = {"rnn", "lstm", "gru"}
    fault_op = "lstm"
    fault_T = None  # the sequence length the fault strikes at (None: every call of fault_op)
    dtypes_by_device = {"cpu": ("float64", "float32"), "cuda": ("float32",)}

    def implemented(self):
        return self.ops

    def forward_impl(self, op, device, dtype):
        forward = super().forward_impl(op, device, dtype)
        if op.name != self.fault_op:
            return forward

        def faulty(**inputs):
            if self.triggered(inputs, device):
                self.fault()
            return forward(**inputs)

        return faulty

    def triggered(self, inputs, device) -> bool:
        return self.fault_T is None or inputs["x"].shape[0] == self.fault_T

    def fault(self):
        raise NotImplementedError


class Segfaulting(Faulty):
    """The lstm forward pass dies of a segmentation fault, as a kernel reading out of bounds does."""

    name = "segfaulting"

    def fault(self):
        os.kill(os.getpid(), signal.SIGSEGV)


class Exiting(Faulty):
    """The rnn forward pass exits the process (``os._exit``) at the T = 32 shape."""

    name = "exiting"
    fault_op = "rnn"
    fault_T = 32

    def fault(self):
        os._exit(3)


class Hanging(Faulty):
    """The gru forward pass never returns at the T = 32 shape."""

    name = "hanging"
    fault_op = "gru"
    fault_T = 32

    def fault(self):
        time.sleep(3600)


class OutOfMemory(Faulty):
    """rnn: a host allocation of 8 TiB (NumPy's MemoryError); lstm on the (fake) GPU: CUDA out of memory."""

    name = "out-of-memory"
    ops = {"rnn", "lstm"}

    def forward_impl(self, op, device, dtype):
        forward = super().forward_impl(op, device, dtype)

        def faulty(**inputs):
            if op.name == "rnn" and device == "cpu":
                np.empty(2**40)
            if op.name == "lstm" and device == "cuda":
                raise RuntimeError("CUDA out of memory. Tried to allocate 8.00 GiB (GPU 0; 79.19 GiB total capacity)")
            return forward(**inputs)

        return faulty

    def devices(self):
        return ["cpu", "cuda"]


class PoisonedCuda(Faulty):
    """On the (fake) GPU: lstm at T = 32 hits an illegal memory access, after which every call in the process
    fails as a poisoned CUDA context does, until a fresh process."""

    name = "poisoned-cuda"
    fault_T = 32
    poisoned = False

    def devices(self):
        return ["cuda"]

    def forward_impl(self, op, device, dtype):
        forward = super().forward_impl(op, device, dtype)

        def maybe(**inputs):
            self.check()
            return forward(**inputs)

        return maybe

    def vjp_impl(self, op, device, dtype):
        vjp = super().vjp_impl(op, device, dtype)

        def maybe(cotangents, **inputs):
            self.check()
            return vjp(cotangents, **inputs)

        return maybe

    def check(self):
        if PoisonedCuda.poisoned:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def fault(self):
        PoisonedCuda.poisoned = True
        self.check()


class Slow(Faulty):
    """Every forward pass takes ``SEQBENCH_TEST_SLOW`` seconds and leaves a mark in ``SEQBENCH_TEST_MARKS``,
    so a test can interrupt a run in the middle."""

    name = "slow"
    ops = {"rnn"}
    fault_op = "rnn"

    def fault(self):
        time.sleep(float(os.environ.get("SEQBENCH_TEST_SLOW", "0")))
        marks = os.environ.get("SEQBENCH_TEST_MARKS")
        if marks:
            Path(marks).mkdir(parents=True, exist_ok=True)
            (Path(marks) / f"{time.monotonic_ns()}").touch()


BACKENDS = (Segfaulting, Exiting, Hanging, OutOfMemory, PoisonedCuda, Slow)
