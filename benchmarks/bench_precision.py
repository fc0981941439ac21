"""Precision per commit: the conformance cases' errors as asv tracks, so ``asv publish`` finds their steps too.

``bench_precision.<op>.track_error(backend, device, dtype)`` (unit eps): the
largest worst-entry error, in eps of the precision the case runs in (the
dtype, or TF32 on ``cuda:tf32``), over the op's conformance cases — every
catalog shape, forward and gradients, on the seeded inputs the conformance
suite uses — against the float64 reference; ``track_ratio`` (× faithful): the
largest ratio of a case's error to that of a faithful implementation in the
same precision (:mod:`seqbench.precision.tolerance`'s pooled ``l2`` ratio;
about 1 is as accurate as plain same-precision arithmetic). Both are lower is
better, as asv's step detection assumes. Each case runs and is judged by the
conformance suite's own code (:func:`seqbench.precision.calibration.measure`);
on the CPU the inputs are seeded and the errors deterministic, so a step in
the history is a change of the arithmetic, not noise.

The grid is small (:data:`common.PRECISION`: rnn, lstm and gru in float32),
the backend axis the other suites' (every registered backend the grid keeps),
the devices theirs; what cannot run here is skipped in setup with the reason.
"""

from seqbench import catalog
from seqbench.backends import registry
from seqbench.backends.protocol import BackendUnavailable
from seqbench.precision import calibration

from . import common

#: the verdicts of this process's point (asv runs every method and parameter combination in a process of its own)
_verdicts: dict = {}


class _Precision:
    op_name = ""
    timeout = 300
    param_names = ["backend", "device", "dtype"]

    def setup(self, backend, device, dtype):
        key = (self.op_name, backend, device, dtype)
        if key not in _verdicts:
            _verdicts[key] = _run(catalog.get(self.op_name), backend, device, dtype)
        self.verdicts = _verdicts[key]

    def track_error(self, *params):
        return max(v.max_error for v in self.verdicts)

    track_error.unit = "eps"

    def track_ratio(self, *params):
        return max(v.ratio for v in self.verdicts)

    track_ratio.unit = "x faithful"


def _run(op, backend, device, dtype) -> list:
    """The verdicts of ``op``'s conformance cases on one point; ``NotImplementedError`` (asv's skip) with the
    reason where the point cannot run here."""
    if device.split(":")[0] == "cuda" and not common.gpu_present():
        raise NotImplementedError("cuda: no GPU driver on this machine")
    try:
        be = registry.backend(backend)
    except (BackendUnavailable, ValueError) as error:
        raise NotImplementedError(str(error)) from None
    if device not in be.devices():
        raise NotImplementedError(f"{backend}: no device {device!r} here (devices: {be.devices()})")
    support = be.supports(op, device, dtype)
    if not support:
        raise NotImplementedError(support.reason)
    return [calibration.measure(be, op, shape, device, dtype, kind)[1]
            for shape in op.shapes for kind in calibration.KINDS]


def _classes() -> dict:
    grid = common.grid_name()
    dtypes = [t for t in common.PRECISION["dtypes"] if t in common.GRIDS[grid]["dtypes"]]
    return {name: type(name, (_Precision,), {
        "__module__": __name__, "__doc__": catalog.get(name).doc, "op_name": name,
        "params": [list(common.backends(grid)), list(common.DEVICES), dtypes],
    }) for name in common.PRECISION["ops"]}


globals().update(_classes())
