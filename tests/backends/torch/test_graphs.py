"""Whole-sequence graphs (backends/torch/graphs.py): a recorded call answers every later call with that call's
inputs, forward and gradients, and a new signature records a new graph.

A CUDA graph replays fixed kernels over fixed buffers. Here a recorder with the same contract (outputs in
fixed buffers, recomputed from the fixed input buffers at each replay) stands in for the GPU, so the
bookkeeping (copy in, key, copy out) is checked on any machine; on a GPU the real recorder runs in the
conformance suite (torch-compile on cuda) and in the last test here.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from seqbench import catalog  # noqa: E402
from seqbench.backends.protocol import tree_leaves  # noqa: E402
from seqbench.backends.torch.backend import TorchBackend  # noqa: E402
from seqbench.backends.torch.graphs import GraphedCalls, signature  # noqa: E402

SHAPE = {"T": 5, "B": 3, "I": 4, "H": 6, "ragged": True}


class ReplayByCalling:
    """A recorder with a CUDA graph's contract: ``replay()`` recomputes the recorded outputs, in place, from the
    recorded input buffers."""

    def record(self, fn):
        outputs = fn()

        def replay():
            fresh = [leaf for _, leaf in tree_leaves(fn())]
            for (_, kept), new in zip(tree_leaves(outputs), fresh):
                kept.copy_(new)

        return replay, outputs


class NoCopyIn(GraphedCalls):
    """Deliberately wrong: replays without copying the call's tensors in (answers the first call's inputs)."""

    @staticmethod
    def copy_in(buffers, inputs):
        pass


def graphed(calls: GraphedCalls) -> TorchBackend:
    """``torch`` whose recurrent calls go through ``calls``, on the CPU."""
    backend = TorchBackend()
    backend._call = lambda op, kind, device, dtype, fn, inputs: calls((op.name, kind, device, dtype), fn, inputs)
    return backend


def largest_difference(backend, op_name: str, seeds=(1, 2, 3)) -> float:
    """The largest difference, forward outputs and gradients, between ``backend`` and eager ``torch`` over calls
    with the inputs of each seed in turn (same shape: the graph recorded at the first is replayed after)."""
    eager, op, worst = TorchBackend(), catalog.get(op_name), 0.0
    for seed in seeds:
        inputs = op.inputs(SHAPE, seed=seed)
        cotangents = op.cotangents(op.reference(**inputs), seed=seed)
        pairs = list(zip(backend.run(op_name, dtype="float64", **inputs), eager.run(op_name, dtype="float64", **inputs)))
        got = backend.vjp(op_name, cotangents, dtype="float64", **inputs)
        want = eager.vjp(op_name, cotangents, dtype="float64", **inputs)
        pairs += [(leaf, dict(tree_leaves(want))[path]) for path, leaf in tree_leaves(got)]
        worst = max([worst] + [float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs])
    return worst


@pytest.mark.parametrize("op_name", ["lstm", "bidirectional_gru", "stacked_rnn"])
def test_a_replayed_graph_answers_each_calls_inputs(op_name):
    calls = GraphedCalls(recorder=ReplayByCalling())
    assert largest_difference(graphed(calls), op_name) == 0.0
    assert calls.recorded == 2  # one forward and one vjp graph, replayed for the second and third inputs


def test_a_graph_that_does_not_copy_the_inputs_in_fails_the_comparison():
    assert largest_difference(graphed(NoCopyIn(recorder=ReplayByCalling())), "lstm") > 1e-3


def test_a_new_signature_records_a_new_graph_and_old_ones_are_dropped_beyond_capacity():
    calls = GraphedCalls(recorder=ReplayByCalling(), capacity=2)
    double = lambda x, scale: (x * scale,)  # noqa: E731
    x3, x4 = torch.ones(3), torch.ones(4)
    assert calls(("k",), double, {"x": x3, "scale": 2})[0].tolist() == [2.0] * 3
    assert calls(("k",), double, {"x": x3 + 1, "scale": 2})[0].tolist() == [4.0] * 3
    assert calls.recorded == 1
    assert calls(("k",), double, {"x": x4, "scale": 2})[0].tolist() == [2.0] * 4  # another shape
    assert calls(("k",), double, {"x": x4, "scale": 3})[0].tolist() == [3.0] * 4  # another static value
    assert calls.recorded == 3 and len(calls.graphs) == 2


def test_the_signature_tells_apart_what_changes_the_kernels():
    x = torch.ones(2, 3)
    base = signature(("lstm", "forward"), {"x": x, "reverse": False})
    assert base == signature(("lstm", "forward"), {"x": torch.zeros(2, 3), "reverse": False})  # values do not
    for other in ({"x": torch.ones(3, 2), "reverse": False}, {"x": x.double(), "reverse": False},
                  {"x": x, "reverse": True}, {"x": x.requires_grad_(), "reverse": False}):
        assert signature(("lstm", "forward"), other) != base


def test_returned_outputs_are_the_callers_not_the_graphs():
    calls = GraphedCalls(recorder=ReplayByCalling())
    first = calls(("k",), lambda x: (x + 1,), {"x": torch.zeros(2)})
    calls(("k",), lambda x: (x + 1,), {"x": torch.ones(2)})
    assert first[0].tolist() == [1.0, 1.0]  # the second replay did not overwrite the first answer


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: records a real CUDA graph")
def test_torch_compile_on_cuda_replays_the_whole_sequence():
    from seqbench.backends import registry

    backend = registry.backend("torch-compile")
    op = catalog.get("lstm")
    for seed in (1, 2):
        inputs = op.inputs(SHAPE, seed=seed)
        got = backend.run("lstm", device="cuda", dtype="float64", **inputs)
        for a, b in zip(got, op.reference(**inputs)):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    assert backend.graphs.recorded == 1
