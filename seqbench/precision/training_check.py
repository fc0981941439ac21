"""Does a backend's trainer step compute the reference update? One small minibatch, judged like a conformance case.

A sequential backend's step (``TrainingSteps.sequential``) is judged
against the reference applied item after item, a minibatch backend's
against one summed step.

The step's new parameters (and AdaGrad accumulators) after one update of
small random parameters are compared, leaf by leaf, with
:mod:`seqbench.reference.training` run in float64 on the same rounded
values; the budget comes from the same update run by the reference in the
tested precision (:mod:`seqbench.precision.calibration`'s faithful implementation)
and :mod:`seqbench.precision.tolerance`'s multiples, floor and the gradient cap of
the loss the step descends. The learning rate is 1, so the update is as
large as the parameters and an error in it cannot hide under their rounding.
"""

from __future__ import annotations

import numpy as np

from seqbench.precision import calibration, faithful, tolerance
from seqbench import catalog
from seqbench.backends.protocol import tree_map
from seqbench.reference import training

#: the batches checked: skip-gram pairs (M = 1), skip-gram and CBOW windows of 1 to 4 words, GloVe entries
SHAPES = {
    "skipgram": ("cbow_negative_sampling_loss", {"V": 50, "d": 8, "B": 16, "M": 1, "K": 5}),
    "skipgram_windows": ("cbow_negative_sampling_loss", {"V": 50, "d": 8, "B": 16, "M": 4, "K": 5}),
    "cbow": ("cbow_negative_sampling_loss", {"V": 50, "d": 8, "B": 16, "M": 4, "K": 5}),
    "glove": ("glove_cost", {"V": 20, "d": 4, "N": 50, "c": 2}),
}
DTYPES = ("float32", "float64")
LR = 1.0


def _case(model: str, seed: int):
    """``(op, shape, state, batch)``: float64 parameters and a batch from the catalog's input generator."""
    name, shape = SHAPES[model]
    op = catalog.get(name)
    inputs = op.inputs(shape, seed)
    if model == "glove":
        rows, cols = np.nonzero(inputs["X"])
        state = {k: inputs[k] for k in training.GLOVE_PARAMETERS}
        rng = np.random.default_rng(seed + 1)
        state.update({f"G_{k}": 1 + rng.random(np.shape(v)) for k, v in state.items()})
        return op, shape, state, (rows, cols, inputs["X"][rows, cols])
    state = {"E_in": inputs["E_in"], "E_out": inputs["E_out"]}
    return op, shape, state, (inputs["w_ctx"], inputs["w_o"], inputs["w_neg"])


#: the reference's step of each checked model
STEPS = {"skipgram": training.negative_sampling_state_step, "skipgram_windows": training.skipgram_window_state_step,
         "cbow": training.negative_sampling_state_step, "glove": training.glove_state_step}


def step_of(steps, model: str):
    """The step of ``steps`` (:class:`~seqbench.backends.protocol.TrainingSteps`) that trains ``model``."""
    return {"glove": steps.glove, "skipgram_windows": steps.windows()}.get(model, steps.negative_sampling)


def _reference(model: str, state: dict, batch: tuple, sequential: bool = False) -> dict:
    """The reference update of ``batch``: one summed minibatch step, or (``sequential``) one step per item, in
    order, each on the parameters the items before it left (a window's pairs are its items)."""
    if sequential and model == "skipgram_windows":  # item by item: the windows' pairs, each a step
        model, batch = "skipgram", training.window_pairs(*batch)
    step = STEPS[model]
    if not sequential:
        return step(state, *batch, LR)
    for b in range(len(batch[0])):
        state = step(state, *(np.asarray(a)[b:b + 1] for a in batch), LR)
    return state


def check_step(backend, device: str, dtype: str, model: str, seed: int = 0) -> tolerance.Verdict:
    """``backend``'s update step for ``model`` on one small batch, judged against the float64 reference update."""
    if dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {list(DTYPES)} for training, got {dtype!r}")
    precision = tolerance.precision(dtype, backend.math_mode(device, dtype))
    op, shape, state, batch = _case(model, seed)
    state = faithful.round_tree(state, dtype)
    steps = backend.training_steps(device, dtype)
    expected = _reference(model, state, batch, steps.sequential)
    faithful_precision = "float32" if precision == "float64" else precision  # calibration.control_errors' rule
    control = faithful.as_float64(_reference(model, faithful.in_precision(state, faithful_precision), batch,
                                             steps.sequential))
    step = step_of(steps, model)
    on_device = {k: backend.to_device(v, device, dtype) for k, v in state.items()}
    actual = tree_map(lambda a: backend.to_numpy(a).astype(np.float64), step(on_device, *batch, LR))
    return tolerance.judge(calibration.leaf_errors(actual, expected, precision),
                           calibration.leaf_errors(control, expected, faithful_precision),
                           tolerance.cap(op, shape, precision, "vjp"))
