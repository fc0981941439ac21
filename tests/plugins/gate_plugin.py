"""A plug-in backend for the gate's integration test (``tests/jobs/test_continuous.py``): the reference in NumPy
(rnn and lstm), with two knobs a commit turns. ``WORK``: how much forward work is done (2: the pass twice, twice
the real CPU work, no sleep; 1.3: once, then again over the first 30% of the time steps); ``ERROR``: the outputs
returned are ``y + ERROR · (y − y_ref)``, ``y_ref`` the float64 reference (9: about ten times the error)."""

import numpy as np

from seqbench.backends.numpy_backend import NumpyBackend
from seqbench.backends.protocol import Traits

WORK = 1
ERROR = 0


def _float64(value):
    if isinstance(value, dict):
        return {k: _float64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_float64(v) for v in value]
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value.astype(np.float64)
    return value


class GatePlug(NumpyBackend):
    name = "gateplug"
    traits = Traits(implementation="the reference, with knobs")

    def implemented(self):
        return {"rnn", "lstm"}

    def forward_impl(self, op, device, dtype):
        def forward(**inputs):
            out = op.reference(**inputs)
            for _ in range(int(WORK) - 1):
                op.reference(**inputs)
            steps = round((WORK % 1) * len(inputs["x"]))  # x: (T, B, I)
            if steps:  # ragged lengths cut to the steps kept
                lengths = inputs.get("lengths")
                op.reference(**{**inputs, "x": inputs["x"][:steps],
                                **({} if lengths is None else {"lengths": np.minimum(lengths, steps)})})
            if not ERROR:
                return out
            exact = op.reference(**_float64(inputs))
            return tuple((y + ERROR * (y.astype(np.float64) - e)).astype(y.dtype) for y, e in zip(out, exact))

        return forward
