"""The ``numpy`` backend: the reference itself, run in float32 or float64 on the CPU.

It is the CPU baseline every other backend is compared with for speed; in
float64 it is the oracle, so its float64 conformance checks the harness.
"""

from __future__ import annotations

import numpy as np

from seqbench import catalog
from seqbench.backends.protocol import Backend, TrainingSteps, Traits
from seqbench.reference import training


class NumpyBackend(Backend):
    name = "numpy"
    traits = Traits(implementation="NumPy reference", left_out_of_grids={"gpu": "numpy runs on the CPU only"})
    dtypes_by_device = {"cpu": ("float32", "float64")}

    def implemented(self):
        return set(catalog.ops())

    def to_device(self, array, device, dtype):
        return np.asarray(array, dtype=dtype) if dtype else np.asarray(array)

    def to_numpy(self, array):
        return np.asarray(array)

    def forward_impl(self, op, device, dtype):
        return op.reference

    def vjp_impl(self, op, device, dtype):
        return op.reference_vjp

    def training_steps(self, device, dtype):
        return TrainingSteps(training.negative_sampling_state_step, training.glove_state_step)

    def versions(self):
        import scipy

        return {"numpy": np.__version__, "scipy": scipy.__version__}
