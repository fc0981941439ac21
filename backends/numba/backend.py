"""The ``numba`` backend: word2vec's and GloVe's own training loops, compiled (:mod:`.kernels`), on the CPU.

It implements no catalog op: it is a trainer, compared with the frameworks'
minibatch steps by ``bench_training`` and ``seqbench embed``. Its steps are
sequential (:class:`~seqbench.backends.protocol.TrainingSteps`): one item
after the other, in place, several threads on one set of matrices.
"""

from __future__ import annotations

import numpy as np

from seqbench.backends.protocol import Backend, BackendUnavailable, TrainingSteps, Traits
from seqbench.reference.glove import weighting
from seqbench.reference.training import GLOVE_PARAMETERS


def _word2vec(state, w_ctx, w_o, w_neg, lr):
    from . import kernels

    E_in, E_out = state["E_in"], state["E_out"]
    kernels.word2vec_items(E_in, E_out, np.asarray(w_ctx), np.asarray(w_o), np.asarray(w_neg), E_in.dtype.type(lr))
    return state


def _glove(state, rows, cols, x, lr, x_max=100, alpha=0.75):
    from . import kernels

    dtype = state["theta"].dtype
    x = np.asarray(x, dtype=np.float64)
    kernels.glove_entries(*(state[k] for k in GLOVE_PARAMETERS), *(state[f"G_{k}"] for k in GLOVE_PARAMETERS),
                          np.asarray(rows), np.asarray(cols), weighting(x, x_max, alpha).astype(dtype),
                          np.log(x).astype(dtype), dtype.type(lr))
    return state


#: why the op grids leave it out: it is benchmarked as a trainer (bench_training's trainer axis), not per op
TRAINER_ONLY = "a trainer only (seqbench embed, bench_training): no catalog op"


class NumbaBackend(Backend):
    name = "numba"
    traits = Traits(implementation="numba: word2vec's and GloVe's loops, compiled, hogwild threads",
                    left_out_of_main_job=TRAINER_ONLY,
                    left_out_of_grids=dict.fromkeys(("quick", "mid", "gpu", "gate", "full"), TRAINER_ONLY))
    dtypes_by_device = {"cpu": ("float32", "float64")}

    def __init__(self):
        try:
            import numba
        except ImportError as error:
            raise BackendUnavailable(f"numba is not installed ({error}); pip install 'seqbench[numba]'") from None
        self.numba_version = numba.__version__

    def to_device(self, array, device, dtype):
        return np.ascontiguousarray(array, dtype=dtype) if dtype else np.ascontiguousarray(array)

    def to_numpy(self, array):
        return np.asarray(array)

    def training_steps(self, device, dtype):
        return TrainingSteps(_word2vec, _glove, sequential=True)

    def versions(self):
        return {"numpy": np.__version__, "numba": self.numba_version}
