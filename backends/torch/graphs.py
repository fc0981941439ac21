"""Whole-sequence CUDA graphs: one call of a recurrent function, all ``T`` steps (forward, or forward and
backward), recorded once per input signature and replayed.

A Python time loop launches two to three kernels a step and pays the interpreter, and a compiled step its
guards, for each: at ``T = 512`` that is thousands of launches a call, most of the call's time at small
batches. Recorded in one CUDA graph, the same kernels replay from the device with no Python between them.

:class:`GraphedCalls` keys a graph by everything that decides which kernels run: the op and its static
arguments, and each tensor's shape, dtype, device and whether it asks for a gradient. A call copies its
tensors into the graph's own input buffers, replays, and returns copies of the graph's outputs (a later
replay overwrites them). The recording follows PyTorch's rules for capture: warm-up calls on a side
stream first (they also compile), then one capture; the math mode in effect at capture is the one
replayed, so the caller records inside the same math-mode context it calls in.

The recorder is a parameter: :class:`CudaRecorder` on a GPU; tests pass one that "replays" by calling the
function again on the recorded buffers, which has the same contract (outputs live in fixed buffers,
recomputed from fixed input buffers), so the bookkeeping is tested on any machine.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch

from seqbench.backends.protocol import tree_leaves, tree_map

#: graphs kept per backend (each holds its own memory pool); the least recently used goes first
CAPACITY = 8
#: calls on a side stream before recording (the first compiles; cuBLAS and the allocator settle)
WARMUP = 3


class CudaRecorder:
    """Records ``fn()`` into a ``torch.cuda.CUDAGraph``: ``record(fn) -> (replay, outputs)``."""

    def record(self, fn: Callable[[], object]):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = fn()
        return graph.replay, outputs


def signature(key: tuple, inputs: dict) -> tuple:
    """What decides the recorded kernels: ``key`` (op, device, dtype, pass), each tensor's layout and grad
    flag, and every other argument's value, in argument order."""

    def leaf(x):
        if isinstance(x, torch.Tensor):
            return ("tensor", tuple(x.shape), str(x.dtype), str(x.device), x.requires_grad)
        return ("value", x)

    return key + tuple((path, leaf(x)) for path, x in tree_leaves(inputs))


class GraphedCalls:
    """Calls of recurrent functions through recorded graphs, cached per :func:`signature`."""

    def __init__(self, recorder=None, capacity: int = CAPACITY):
        self.recorder = recorder or CudaRecorder()
        self.capacity = capacity
        self.graphs: OrderedDict = OrderedDict()
        self.recorded = 0  # how many graphs were recorded (tests check that a repeated call replays)

    def __call__(self, key: tuple, fn: Callable, inputs: dict):
        """``fn(**inputs)`` through the graph of this signature (recorded at its first call)."""
        sig = signature(key, inputs)
        if sig not in self.graphs:
            self.graphs[sig] = self._record(fn, inputs)
            self.recorded += 1
            while len(self.graphs) > self.capacity:
                self.graphs.popitem(last=False)
        self.graphs.move_to_end(sig)
        replay, buffers, outputs = self.graphs[sig]
        self.copy_in(buffers, inputs)
        replay()
        return tree_map(lambda t: t.clone() if isinstance(t, torch.Tensor) else t, outputs)

    @staticmethod
    def copy_in(buffers: list, inputs: dict) -> None:
        """This call's tensors into the graph's input buffers (the graph reads nothing else)."""
        for buffer, x in zip(buffers, _tensors(inputs)):
            buffer.copy_(x)

    def _record(self, fn, inputs):
        """``(replay, input buffers, output buffers)``: the buffers hold the graph's inputs and outputs."""
        buffers = [x.detach().clone().requires_grad_(x.requires_grad) for x in _tensors(inputs)]
        fill = iter(buffers)
        fixed = tree_map(lambda x: next(fill) if isinstance(x, torch.Tensor) else x, inputs)
        replay, outputs = self.recorder.record(lambda: fn(**fixed))
        return replay, buffers, outputs


def _tensors(inputs: dict) -> list:
    """Every tensor leaf of ``inputs``, in argument order (:func:`tree_map`'s order too)."""
    return [x for _, x in tree_leaves(inputs) if isinstance(x, torch.Tensor)]
