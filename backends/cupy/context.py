"""Where the cupy backend's ops run (:class:`Context`): an array module and kernel launchers, a GPU's or the host
build's, so the same orchestration runs on a GPU and, in the tests, on the CPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Context:
    """Where the ops run: an array module, a launcher ``launch(name, dtype, n, *args)`` of the
    elementwise kernels (``n`` threads), ``launch_warps(name, dtype, n, *args)`` of the
    one-warp-per-item kernels, and optionally:

    * ``persistent(spec, packed, buffers) -> bool``, which runs a whole forward
      sequence in one persistent kernel when it fits (GPU only);
    * ``gemm(a, b, out)``: the step loops' GEMM ``out = a @ b`` (default ``xp.matmul``);
    * ``graphs(tag, buffers, loop) -> path``: runs a step loop that touches exactly
      ``buffers``, e.g. from a CUDA graph (:class:`.graphs.StepGraphs`);
      without it the loop runs as it is (path ``"fused"``).

    ``paths`` collects the path each forward sequence took: ``"persistent"``,
    ``"graph"`` or ``"fused"`` (the step-by-step loop run from the host).
    """

    xp: object
    launch: Callable
    launch_warps: Callable
    persistent: Callable | None = None
    gemm: Callable | None = None
    graphs: Callable | None = None
    paths: list = field(default_factory=list)

    def matmul(self, a, b, out):
        if self.gemm is None:
            self.xp.matmul(a, b, out=out)
        else:
            self.gemm(a, b, out)

    def steps(self, tag: tuple, buffers: tuple, loop: Callable) -> str:
        if self.graphs is None:
            loop()
            return "fused"
        return self.graphs(tag, buffers, loop)
