"""The jax backends: ``jax`` (``jax.jit`` + ``lax.scan``, gradients by ``jax.vjp``) and ``jax-highest`` (the
same, every matmul at precision ``"highest"``)."""

from __future__ import annotations

import os

import numpy as np

from seqbench.backends.protocol import Backend, BackendUnavailable, TrainingSteps, Traits, Unsupported

#: seconds jax takes to compile one op at one shape and dtype, per device kind
COMPILE_SECONDS = {"cpu": 0.5, "cuda": 2.5}
#: what asv's fork server imports for the jax backends
PREIMPORT = ("jax", "jax.numpy")


def _functions() -> dict:
    """Reference function name -> JAX function."""
    from . import cells, embedding, loss

    return {**cells.FUNCTIONS, **loss.FUNCTIONS, **embedding.FUNCTIONS}


def _is_static(value) -> bool:
    """Non-array arguments (but flags) are compile-time constants of the jitted function."""
    return value is None or isinstance(value, (str, int, float)) and not isinstance(value, bool)


class JaxBackend(Backend):
    """Every op as a pure JAX function, ``jax.jit`` + ``lax.scan``, gradients by ``jax.vjp``.

    * Functions live in :mod:`.cells` (recurrent ops), :mod:`.loss` (the sequence
      loss) and :mod:`.embedding` (embedding ops), with the reference's argument
      names, keyed by the catalog entry's reference function.
    * One jitted function per (reference function, static arguments, matmul
      precision, forward or vjp), cached on the backend; static arguments are the
      non-array ones (``cell``, ``variant``, ``None``, sizes such as ``c``) while
      flags (``reverse``) are traced, so both directions share one program.
      Repeated calls never retrace; JAX re-specializes only on new shapes/dtypes.
    * Gradients: ``jax.vjp`` of the forward with respect to the op's
      differentiated arguments (``op.wrt``: ``x``, ``h0``, ``c0``, ``params``, ... ); an
      initial state given as ``None`` becomes zeros first, so it gets a gradient
      like in the reference.
    * float64 needs ``jax_enable_x64``, which this backend turns on for the whole
      process; every float input is cast to the tested dtype on its way to the
      device, so float32 still computes in float32.
    * Matmul precision is part of the backend: ``jax`` runs JAX's default (full
      float32 on CPU; on GPU XLA may use TF32 for float32), ``jax-highest``
      (GPU only) pins ``"highest"``. :meth:`JaxBackend.math_mode` records which.
    * GPU memory is allocated on demand (``XLA_PYTHON_CLIENT_PREALLOCATE=false``
      unless set), so JAX shares the GPU with the other backends of a run.
    * Compiling is most of the cost of a conformance run on the CPU; JAX's own
      persistent cache (``JAX_COMPILATION_CACHE_DIR=...``, with
      ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0``) makes a rerun several times faster.
    * Dispatch is asynchronous: each forward/vjp call remembers its outputs per
      device and :meth:`JaxBackend.synchronize` blocks until they are ready, so
      ``fn(); backend.synchronize(device)`` times the work, as with other backends.
    """

    name = "jax"
    traits = Traits(
        implementation="jit + lax.scan",
        compile_seconds=COMPILE_SECONDS,
        preimport=PREIMPORT,
    )
    precision = "default"
    # half precision on the CPU too, so its conformance runs without a GPU
    dtypes_by_device = dict.fromkeys(("cpu", "cuda"), ("float32", "float64", "bfloat16", "float16"))

    def __init__(self):
        # JAX grabs 75% of GPU memory up front by default, starving other backends in this process.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        try:
            import jax
        except ImportError as error:
            raise BackendUnavailable(f"jax is not installed ({error}); pip install 'seqbench[jax]'") from None
        jax.config.update("jax_enable_x64", True)  # process-wide; inputs are cast, so float32 stays float32
        self.jax = jax
        self._gpus = self._gpu_devices()
        self._functions = _functions()
        self._jitted: dict = {}
        self._last: dict = {}
        self._peak_at_reset: dict = {}
        self.traces = 0  # how often a function was traced (tests check that repeated calls do not retrace)

    def _gpu_devices(self) -> list:
        try:
            return list(self.jax.devices("gpu"))
        except Exception:  # no GPU platform in this jaxlib, or none on this machine
            return []

    # --- devices and dtypes --------------------------------------------------------

    def devices(self):
        return ["cpu"] + ["cuda" if k == 0 else f"cuda:{k}" for k in range(len(self._gpus))]

    def _device(self, device: str):
        if device == "cpu":
            return self.jax.devices("cpu")[0]
        return self._gpus[int(device.partition(":")[2] or 0)]

    def implemented(self):
        from seqbench import catalog

        return {name for name, op in catalog.ops().items() if op.function in self._functions}

    def to_device(self, array, device, dtype):
        if dtype is not None:
            array = np.asarray(array, dtype=self.jax.numpy.dtype(dtype))
        return self.jax.device_put(array, self._device(device))

    def to_numpy(self, array):
        array = np.asarray(array)
        return array.astype(np.float32) if array.dtype.name == "bfloat16" else array

    # --- ops -----------------------------------------------------------------------

    def training_steps(self, device, dtype):
        from .embedding import training_steps

        if self.precision != "default":
            raise Unsupported(f"{self.name}: the trainer steps have no matmul to set a precision for; "
                              "train with --backend jax")
        return TrainingSteps(**training_steps(self._device(device)))

    def _compiled(self, function: str, static: dict, wrt: tuple | None):
        """The jitted forward (``wrt=None``) or vjp of ``function`` with ``static`` arguments fixed."""
        key = (function, tuple(sorted(static.items())), wrt)
        if key not in self._jitted:
            self._jitted[key] = self.jax.jit(self._traced(self._functions[function], static, wrt))
        return self._jitted[key]

    def _traced(self, fn, static, wrt):
        """``f(cotangents, **arrays)``: the outputs of ``fn`` (``wrt=None``) or its gradients w.r.t. ``wrt``."""
        jax = self.jax

        def forward(**inputs):
            return fn(**inputs, **static)

        def vjp(cotangents, **inputs):
            primals = {k: inputs.pop(k) for k in wrt}
            outputs, pullback = jax.vjp(lambda primals: forward(**primals, **inputs), primals)
            return pullback(cotangents)[0]

        def traced(cotangents, **inputs):
            self.traces += 1
            with jax.default_matmul_precision(None if self.precision == "default" else self.precision):
                return forward(**inputs) if wrt is None else vjp(cotangents, **inputs)

        return traced

    def _jitted_call(self, op, device, dtype, inputs, cotangents=None):
        """``(jitted function, cotangents, array inputs)`` of a forward (``cotangents=None``) or vjp call."""
        inputs = self._host_fixups(op, inputs, device, dtype)
        static = {k: v for k, v in inputs.items() if _is_static(v)}
        arrays = {k: v for k, v in inputs.items() if k not in static}
        wrt = None if cotangents is None else tuple(k for k in op.wrt if k in arrays)
        return self._compiled(op.function, static, wrt), None if cotangents is None else tuple(cotangents), arrays

    def _call(self, op, device, dtype, inputs, cotangents=None):
        jitted, cotangents, arrays = self._jitted_call(op, device, dtype, inputs, cotangents)
        self._last[device] = result = jitted(cotangents, **arrays)
        return result

    def lower(self, op: str, device: str = "cpu", dtype: str = "float32", cotangents=None, **inputs):
        """The XLA program behind :meth:`run` (or :meth:`vjp`, given ``cotangents``), as a
        ``jax.stages.Lowered``: ``.as_text()``, ``.compile().cost_analysis()``, ``.memory_analysis()``."""
        entry, inputs = self._checked(op, device, dtype, inputs)
        if cotangents is not None:
            cotangents = self._to_device_tree(self._cotangents(entry, cotangents, inputs), device, dtype)
        jitted, cotangents, arrays = self._jitted_call(entry, device, dtype, self._to_device_tree(inputs, device, dtype), cotangents)
        return jitted.lower(cotangents, **arrays)

    def _host_fixups(self, op, inputs, device, dtype):
        """Before the jitted call: ``h0``/``c0`` given as ``None`` become zeros shaped like the
        final states (so they get gradients), a 0-d integer (a size such as ``c``) a static
        Python int, a scipy sparse matrix or a (nested) list of numbers a device array."""
        inputs = dict(inputs)
        for k, v in inputs.items():
            if hasattr(v, "toarray") or isinstance(v, (list, tuple)) and not any(isinstance(e, dict) for e in v):
                v = np.asarray(v.toarray() if hasattr(v, "toarray") else v)
                inputs[k] = self.to_device(v, device, dtype if np.issubdtype(v.dtype, np.floating) else None)
            elif getattr(v, "ndim", None) == 0 and np.issubdtype(v.dtype, np.integer):
                inputs[k] = int(v)
        states = dict(zip(("h0", "c0"), op.output_shapes(inputs)[1:])) if {"h0", "c0"} & inputs.keys() else {}
        for k in states.keys() & {k for k, v in inputs.items() if v is None}:
            inputs[k] = self.to_device(np.zeros(states[k]), device, dtype)
        return inputs

    def forward_impl(self, op, device, dtype):
        return lambda **inputs: self._call(op, device, dtype, inputs)

    def vjp_impl(self, op, device, dtype):
        return lambda cotangents, **inputs: self._call(op, device, dtype, inputs, cotangents)

    # --- timing, memory, metadata ----------------------------------------------------

    def synchronize(self, device):
        """Block until the last result computed on ``device`` is ready (JAX dispatch is asynchronous)."""
        self.jax.block_until_ready(self._last.pop(device, None))

    def reset_peak_memory(self, device):
        stats = self._device(device).memory_stats()
        self._peak_at_reset[device] = stats and stats.get("peak_bytes_in_use")

    def peak_memory(self, device):
        """Peak device bytes in use since :meth:`reset_peak_memory`, on GPU; ``None`` on CPU.

        XLA's allocator keeps one process-wide peak that cannot be reset, so
        the window's peak is known only when it set a new one; otherwise
        ``None`` (under asv every benchmark runs in a fresh process, where
        the window always sets it).
        """
        stats = self._device(device).memory_stats()
        peak = stats and stats.get("peak_bytes_in_use")
        if peak is None or peak <= (self._peak_at_reset.get(device) or 0):
            return None
        return int(peak)

    def device_name(self, device):
        return self._device(device).device_kind if device.startswith("cuda") else super().device_name(device)

    def versions(self):
        import jaxlib

        versions = {"jax": self.jax.__version__, "jaxlib": jaxlib.__version__, "numpy": np.__version__}
        if self._gpus:
            versions["gpu_platform"] = getattr(self._gpus[0].client, "platform_version", "unknown")
        return versions

    def math_mode(self, device, dtype):
        """The math in effect, with the matmul precision setting: at ``"default"``
        precision XLA runs float32 matmuls on a GPU in TF32; on the CPU, and at
        ``"highest"``, they are IEEE float32."""
        tf32 = device.startswith("cuda") and dtype == "float32" and self.precision == "default"
        return f"{'tf32' if tf32 else 'ieee'} (precision={self.precision})"

    def probes(self, device):
        """On a GPU: which loop setting runs ``lax.scan`` fastest (:mod:`.probes`)."""
        from .probes import LOOP

        return [LOOP] if device.startswith("cuda") and self.precision == "default" else []


class JaxHighestBackend(JaxBackend):
    """``jax`` with every matmul at ``precision="highest"`` (no TF32 or bf16 passes on GPU).

    GPU only: on the CPU JAX's default precision already is full float32,
    so this backend would repeat ``jax`` exactly.
    """

    name = "jax-highest"
    traits = Traits(
        implementation="jit + lax.scan, matmul precision 'highest'",
        compile_seconds={"cuda": COMPILE_SECONDS["cuda"]},
        left_out_of_grids={"gpu": "jax-highest compiles in every benchmark process (seconds on a GPU), too slow for "
                                  "the gpu grid: use --grid full"},
        preimport=PREIMPORT,
    )
    precision = "highest"

    def __init__(self):
        super().__init__()
        if not self._gpus:
            raise BackendUnavailable("no GPU here; on the CPU the default matmul precision is already 'highest' (see backend 'jax')")

    def devices(self):
        return [d for d in super().devices() if d != "cpu"]
