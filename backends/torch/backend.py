"""The torch backends: ``torch`` (the notes' cells, eager), ``torch-compile`` (each cell step under
``torch.compile``) and ``torch-native`` (PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU``)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np

from seqbench.backends.protocol import Backend, BackendUnavailable, TrainingSteps, Traits, Unsupported, tree_map

#: what asv's fork server imports for every torch backend (torch-compile adds its compiler)
PREIMPORT = ("torch",)


class TorchBackend(Backend):
    """The cells of :mod:`.cells`, one line per equation, run eagerly in a Python time loop after one GEMM for
    the input-side products of all steps (ragged batches by masking inside the loop, ``reverse`` by reversing
    within lengths).

    ``torch-native`` runs the same sequence loss (:mod:`.loss`) and embedding ops (:mod:`.embedding`).
    Gradients come from autograd with respect to the op's differentiated arguments (``op.wrt``); an initial
    state given as ``None`` becomes zeros first, so it gets a gradient as in the reference.

    Dtypes: float64, float32, float16 and bfloat16 on every device (half precision on the CPU too, so its
    conformance runs without a GPU). Devices: ``cpu``, and on a GPU ``cuda`` (float32 pinned to IEEE) and
    ``cuda:tf32`` (TF32 on for matmuls and cuDNN RNNs, float32 only); see :mod:`.math`. Every call runs in
    its device's math mode, which :meth:`math_mode` records.
    """

    name = "torch"
    traits = Traits(
        implementation="custom cells, eager",
        grid_dtypes={"gpu": (("float32",), "torch's cells run a Python loop of small kernels: float32 only")},
        preimport=PREIMPORT,
    )
    dtypes_by_device = dict.fromkeys(("cpu", "cuda"), ("float64", "float32", "float16", "bfloat16"))

    def __init__(self):
        try:
            import torch
        except ImportError as error:
            raise BackendUnavailable(f"torch is not installed ({error}); pip install 'seqbench[torch]'") from None
        from . import embedding, loss, math as torch_math

        self.torch = torch
        self.tm = torch_math
        recurrent = self._recurrent_functions()
        self._recurrent = set(recurrent)
        self._functions = {**loss.FUNCTIONS, **embedding.FUNCTIONS, **recurrent}

    def _recurrent_functions(self) -> dict:
        """Reference function name -> function, of the recurrent ops."""
        from .cells import Recurrent

        return Recurrent().functions()

    # --- devices and dtypes --------------------------------------------------------

    def devices(self):
        return ["cpu"] + self.tm.cuda_devices()

    def dtypes(self, device):
        return ("float32",) if device == self.tm.TF32_DEVICE else super().dtypes(device)

    def implemented(self):
        from seqbench import catalog

        return {name for name, op in catalog.ops().items() if op.function in self._functions}

    def to_device(self, array, device, dtype):
        tensor = self.torch.as_tensor(array)
        if dtype is not None:
            tensor = tensor.to(getattr(self.torch, dtype))
        return tensor.to(self.tm.torch_device(device))

    def to_numpy(self, tensor):
        tensor = tensor.detach().cpu()
        return (tensor.float() if tensor.dtype == self.torch.bfloat16 else tensor).numpy()

    # --- ops -----------------------------------------------------------------------

    def training_steps(self, device, dtype):
        if self.name != "torch":
            raise Unsupported(f"{self.name}: its embedding ops are backend 'torch''s; train with --backend torch")
        from .embedding import glove_step, negative_sampling_step, skipgram_window_step

        # Set the thread count again, to its own value: after a compiled trainer with threads of its own ran in
        # this process (bench_training trains every trainer in one), torch's steps ran at 0.4-0.5x their speed
        # until it was (measured, CBOW).
        self.torch.set_num_threads(self.torch.get_num_threads())
        return TrainingSteps(negative_sampling_step, glove_step, skipgram_windows=skipgram_window_step)

    def _fixups(self, op, inputs, device, dtype):
        """Initial states given as ``None`` become zeros shaped like the final states; 0-d integers Python ints."""
        inputs = dict(inputs)
        if op.function in self._recurrent:
            for name, shape in zip(("h0", "c0"), op.output_shapes(inputs)[1:]):
                if inputs.get(name) is None:
                    inputs[name] = self.to_device(np.zeros(shape), device, dtype)
        for k, v in inputs.items():
            if isinstance(v, self.torch.Tensor) and v.ndim == 0 and not v.is_floating_point():
                inputs[k] = int(v)
        return inputs

    def forward_impl(self, op, device, dtype):
        fn = self._functions[op.function]
        torch = self.torch

        def forward(**inputs):
            inputs = self._fixups(op, inputs, device, dtype)
            with torch.no_grad(), self.tm.pinned(device, dtype):
                return self._call(op, "forward", device, dtype, lambda **kw: _as_tuple(fn(**kw)), inputs)

        return forward

    def vjp_impl(self, op, device, dtype):
        fn = self._functions[op.function]
        torch = self.torch

        def pullback(cotangents, **inputs):
            present = [k for k in op.wrt if inputs.get(k) is not None]
            primals = {k: tree_map(lambda t: t.detach().requires_grad_(), inputs[k]) for k in present}
            leaves = []
            tree_map(leaves.append, primals)
            with torch.enable_grad():
                outputs = _as_tuple(fn(**{**inputs, **primals}))
                used = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
                grads = torch.autograd.grad(
                    [o for o, _ in used], leaves, [c for _, c in used], allow_unused=True
                ) if used else [None] * len(leaves)
            filled = iter([torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves)])
            return tree_map(lambda _: next(filled), primals)

        def vjp(cotangents, **inputs):
            inputs = self._fixups(op, inputs, device, dtype)
            with self.tm.pinned(device, dtype):
                return self._call(op, "vjp", device, dtype, pullback, {"cotangents": cotangents, **inputs})

        return vjp

    def _call(self, op, kind: str, device: str, dtype: str, fn, inputs: dict):
        """``fn(**inputs)``, the ``kind`` of pass ("forward" or "vjp") of ``op``: how a call runs (here, as is)."""
        return fn(**inputs)

    # --- timing, memory, metadata ----------------------------------------------------

    def synchronize(self, device):
        if device.startswith("cuda"):
            self.torch.cuda.synchronize()

    def reset_peak_memory(self, device):
        if device.startswith("cuda"):
            self.torch.cuda.reset_peak_memory_stats()

    def peak_memory(self, device):
        """Peak bytes allocated by PyTorch's CUDA allocator since :meth:`reset_peak_memory`; ``None`` on CPU."""
        return int(self.torch.cuda.max_memory_allocated()) if device.startswith("cuda") else None

    def device_name(self, device):
        return self.torch.cuda.get_device_name() if device.startswith("cuda") else super().device_name(device)

    def versions(self):
        torch = self.torch
        versions = {"torch": torch.__version__, "numpy": np.__version__}
        if torch.version.cuda:
            versions["cuda"] = torch.version.cuda
        if torch.backends.cudnn.is_available():
            versions["cudnn"] = torch.backends.cudnn.version()
        if torch.cuda.is_available():
            versions["tf32_defaults"] = self.tm.tf32_defaults()
        return versions

    def math_mode(self, device, dtype):
        """``"tf32"`` for float32 on ``cuda:tf32``, else ``"ieee"``: the mode every call runs in."""
        return self.tm.math_mode(device, dtype)

    def probes(self, device):
        """On ``cuda:tf32``: cuBLAS's TF32 matmul against the faithful TF32 model (:mod:`.probes`)."""
        from .probes import TF32

        return [TF32] if device == self.tm.TF32_DEVICE and self.name == "torch" else []


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


class TorchCompileBackend(TorchBackend):
    """``torch`` with each masked cell step compiled by ``torch.compile`` (``dynamic=True``: one graph per cell,
    dtype, device and grad mode whatever the shape, which keeps compile time, and CI, small), and on a GPU
    every call of a recurrent op, all its steps, replayed from one CUDA graph (:mod:`.graphs`).

    The time loop stays in Python (compiling an unrolled loop of ``T`` steps
    would take minutes per shape); the step, the cell's matmuls and gates and
    the ragged-batch select, is one graph per cell, dtype, device and
    grad mode. On CUDA a call's first run at an input signature (shapes,
    dtypes, static arguments) is three warm-up runs and one recorded; every
    later call (forward, or forward and backward) replays the recorded
    kernels of all its steps with no Python between them. The sequence
    loss and embedding ops have no time loop: they are not compiled here (unsupported, with that reason; ``torch`` runs
    them), which keeps this backend's conformance to about a minute of
    compiling.
    """

    name = "torch-compile"
    traits = Traits(
        implementation="custom cells, torch.compile; on a GPU the whole sequence in one CUDA graph",
        compile_seconds={"cpu": 30.0, "cuda": 30.0},
        left_out_of_grids={
            "quick": "torch-compile compiles in every benchmark process (seconds each), too slow for the quick grid: "
                     "use --grid mid",
            "gate": "torch-compile compiles in every benchmark process (seconds each), too slow for a CI gate",
        },
        left_out_of_main_job="compiles each cell for minutes; seqbench check --backend torch-compile checks it",
        preimport=(*PREIMPORT, "torch._dynamo", "torch._inductor.compile_fx"),
    )

    def __init__(self):
        super().__init__()
        from .graphs import GraphedCalls

        self._problems: dict = {}
        self.graphs = GraphedCalls()

    def _call(self, op, kind, device, dtype, fn, inputs):
        """On a GPU, recurrent ops through their recorded whole-sequence graph; elsewhere as ``torch``."""
        if device.startswith("cuda") and op.function in self._recurrent:
            return self.graphs((op.name, kind, device, dtype), fn, inputs)
        return fn(**inputs)

    def _recurrent_functions(self):
        from .cells import Recurrent

        return Recurrent(compile=self._compile).functions()

    def _compile(self, fn):
        """``torch.compile(fn, dynamic=True)``, done at the first call (importing inductor takes seconds)."""
        compiled = []

        def call(*args):
            if not compiled:
                compiled.append(self._compiled(fn))
            return compiled[0](*args)

        return call

    def _compiled(self, fn):
        import torch._dynamo

        # Graphs per step function: dtypes × devices × (inference, training) exceeds dynamo's default of 8.
        config = torch._dynamo.config
        limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
        setattr(config, limit, max(getattr(config, limit), 128))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch's own, raised while importing inductor
            return self.torch.compile(fn, dynamic=True)

    def support_reason(self, op, device, dtype):
        if op.function not in self._recurrent:
            return (
                f"{self.name}: only the recurrent cells are compiled; op {op.name!r} has no time loop and "
                f"runs eagerly in backend 'torch' (compiling it here would only add compile time)"
            )
        kind = self.tm.torch_device(device)
        if kind == "cpu" and dtype in ("float16", "bfloat16") and op.fixed.get("variant") == "reset_after":
            return (
                f"{self.name}: torch.compile's CPU code for the backward of the reset_after GRU in {dtype} does not "
                f"compile (inductor emits C++ with a 'conflicting declaration ... tmp_acc0_vec'; seen with torch 2.13)"
            )
        if kind not in self._problems:
            self._problems[kind] = self._compile_problem(kind)
        return self._problems[kind]

    def _compile_problem(self, kind: str) -> str:
        """Why ``torch.compile`` cannot run on this device kind here ("" = it can)."""
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            return f"{self.name}: torch.compile is not supported on this platform/Python"
        if kind == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
            return f"{self.name}: torch.compile's CPU code generation needs a C++ compiler (g++ or clang++), none found"
        if kind == "cuda":
            from torch.utils._triton import has_triton

            if not has_triton():
                return f"{self.name}: torch.compile's GPU code generation needs triton, which is not installed"
        return ""


class TorchNativeBackend(TorchBackend):
    """PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (cuDNN on GPU) with the notes' parameters packed in
    (:mod:`.native`). ``nn.GRU`` computes the GRU variant ``reset_after`` only, so the notes' GRU is unsupported
    here, with that reason."""

    name = "torch-native"
    traits = Traits(implementation="nn.RNN/LSTM/GRU (cuDNN on GPU)", preimport=PREIMPORT)

    def probes(self, device):
        """On ``cuda``: why cuDNN's float32 RNNs err as they do with TF32 pinned off (:mod:`.probes`)."""
        from .probes import CUDNN

        return [CUDNN] if device == "cuda" else []

    def _recurrent_functions(self):
        from .native import Native

        return Native().functions()

    def support_reason(self, op, device, dtype):
        cell = op.fixed.get("cell", op.function)
        if cell == "gru" and op.fixed.get("variant", "notes") != "reset_after":
            return (
                f"{self.name}: nn.GRU computes the GRU variant 'reset_after' (reset applied after the matmul, "
                f"biases, update gate 1 - z), not the notes' GRU; see op 'gru_reset_after'"
            )
        return ""
