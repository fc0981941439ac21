"""The backend protocol: what a backend implements and what every backend offers.

A backend subclasses :class:`Backend`, imports its framework in ``__init__``
(raising :class:`BackendUnavailable` with a reason when it cannot), and
implements per op a forward and a vjp over *device-resident* inputs:

* ``forward_impl(op, device, dtype) -> f(**inputs) -> tuple of outputs``
* ``vjp_impl(op, device, dtype) -> g(cotangents, **inputs) -> gradient dict``

plus ``to_device``/``to_numpy``. The public methods :meth:`Backend.run`,
:meth:`Backend.vjp` and :meth:`Backend.prepare` are shared: they check the
arguments with the reference's own checks (so every backend rejects bad input
with the reference's error), move inputs to the device once, and bring
results back as NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from seqbench import catalog, reference
from seqbench.reference import validate
from seqbench.reference.training import window_pairs

DTYPES = ("float64", "float32", "float16", "bfloat16")


class BackendUnavailable(RuntimeError):
    """The backend cannot run here; ``str(error)`` says why."""


class Unsupported(ValueError):
    """A backend was asked for an op, device or dtype it does not support; says why."""


@dataclass(frozen=True)
class Support:
    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def tree_map(fn: Callable, tree):
    """Apply ``fn`` to every leaf of nested dicts, lists and tuples."""
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(fn, v) for v in tree)
    return fn(tree)


def _lists_as_arrays(inputs: dict) -> dict:
    """Plain lists of numbers (``lengths=[3, 2]``) as arrays, as the reference reads them;
    lists of parameter dicts (a stack's ``params``) stay lists."""
    out = {}
    for name, value in inputs.items():
        if isinstance(value, (list, tuple)) and not any(isinstance(v, dict) for v in value):
            value = np.asarray(value)
        out[name] = value
    return out


def tree_leaves(tree, path=()):
    """``(path, leaf)`` for every leaf of nested dicts, lists and tuples; a path is a tuple of keys."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from tree_leaves(v, path + (k,))
    elif isinstance(tree, (list, tuple)):
        for k, v in enumerate(tree):
            yield from tree_leaves(v, path + (k,))
    else:
        yield path, tree


def tree_get(tree, path):
    """The leaf of ``tree`` at ``path`` (as given by :func:`tree_leaves`)."""
    for k in path:
        tree = tree[k]
    return tree


@dataclass(frozen=True)
class TrainingSteps:
    """A backend's update steps for the embedding trainers (:mod:`seqbench.embed`), on one device and dtype.

    * ``negative_sampling(state, w_ctx, w_o, w_neg, lr)``: state ``{"E_in", "E_out"}``;
    * ``glove(state, rows, cols, x, lr)``: state ``{"theta", "e", "b", "b_prime"}`` and their AdaGrad
      accumulators ``"G_theta"``, ...;

    both the math of :mod:`seqbench.reference.training`. The state holds device arrays (``to_device``); the
    batches are NumPy arrays (integer ids, float64 counts); a step returns the new state and may update the
    old one in place.

    ``sequential``: the steps apply a batch's items one after the other, each a reference step of its own
    (``B = 1``) on the parameters the items before it left, in place, and may run in several threads at
    once on one state (hogwild: word2vec's and GloVe's own loops). The trainers then hand each thread
    chunks of the corpus (:mod:`seqbench.embed.trainers`) and the step check applies the reference item by
    item. ``False``: one summed minibatch update per call.

    ``skipgram_windows(state, w_ctx, w_o, w_neg, lr)``: skip-gram over whole windows whose noise words are
    shared (:func:`seqbench.reference.training.skipgram_window_step`, HogBatch), a minibatch backend's
    skip-gram; ``None``: :meth:`windows` expands them into pairs for ``negative_sampling``.

    ``corpus(encoded, keep, noise, window, negative, seed)``: skip-gram over whole windows with shared noise
    words (as ``skipgram_windows``) trained on the device from the corpus itself. It uploads the encoded corpus
    (:class:`~seqbench.embed.pipeline.Encoded`), the keep probabilities ``keep`` (V,) and the alias table
    ``noise`` (:class:`~seqbench.embed.pipeline.NoiseTable`) once and returns ``train(state, part, epoch, lr)``,
    which trains a chunk of the encoded corpus (``part``, a slice of positions) in place, drawing subsampling,
    windows and noise words on the device from ``seed``, ``epoch`` and the positions. The trainers use it for
    skip-gram with shared noise words where it is given; ``None``: the corpus's items are made on the host and
    handed to the per-batch steps (which CBOW and the step check use in any case).
    """

    negative_sampling: Callable
    glove: Callable
    sequential: bool = False
    skipgram_windows: Callable | None = None
    corpus: Callable | None = None

    def windows(self) -> Callable:
        """The step of :func:`~seqbench.reference.training.skipgram_window_step`: the backend's own, or its
        ``negative_sampling`` over the windows' pairs (:func:`~seqbench.reference.training.window_pairs`)."""
        if self.skipgram_windows is not None:
            return self.skipgram_windows
        return lambda state, w_ctx, w_o, w_neg, lr: self.negative_sampling(state, *window_pairs(w_ctx, w_o, w_neg), lr)


@dataclass(frozen=True)
class Traits:
    """What the harness knows of a backend beyond its ops, declared on its class (``traits = Traits(...)``).

    Read from the class without instantiating it (:func:`seqbench.backends.registry.traits`), so a backend
    that cannot run here keeps its traits in grids, shard plans and reports. Every field has a neutral
    default: a backend that declares nothing is benchmarked on every grid in the grid's dtypes, costs no
    compile time, and is labelled by its name.

    * ``implementation``: the label reports show beside the name ("cuDNN via nn.LSTM", "raw CUDA kernels");
    * ``compile_seconds``: device kind ("cpu", "cuda") -> seconds it takes to compile one op at one shape and
      dtype (shard plans cost it; on a device where it is a second or more, the main job checks the backend on
      one shape);
    * ``grid_dtypes``: grid name -> ``(dtypes, why)``: the dtypes that grid benchmarks it in, when fewer than
      the grid's own;
    * ``left_out_of_grids``: grid name -> why that grid's backend axis leaves it out;
    * ``left_out_of_main_job``: why ``seqbench run`` leaves it out unless asked for by name ("" = it runs);
    * ``preimport``: modules worth importing once in asv's fork server (its framework), so every benchmark
      process starts with them;
    * ``family``: the name of the kernel family the backend is one path of (one set of kernels run three ways:
      reports show a family as one row naming the path taken, and a runner-up from another family); ""
      = a family of its own.
    """

    implementation: str = ""
    compile_seconds: dict = field(default_factory=dict)
    grid_dtypes: dict = field(default_factory=dict)
    left_out_of_grids: dict = field(default_factory=dict)
    left_out_of_main_job: str = ""
    preimport: tuple = ()
    family: str = ""


@dataclass(frozen=True)
class Probe:
    """A question about a backend's numbers that its verdicts and times alone do not answer (why its error is
    what it is; which setting makes it fast), answered by measuring under several settings.

    * ``measure(device) -> rows``: one dict per setting, ``{"setting", "value", "unit"}`` and optionally
      ``"detail"`` (what else was seen);
    * ``answer(rows) -> str``: what the rows show, in a sentence or two: the report prints it as the finding.
    """

    name: str
    question: str
    measure: Callable[[str], list]
    answer: Callable[[list], str]


def fresh_process(module: str, *args: str, env: dict | None = None, timeout: float = 600) -> str:
    """The standard output of ``python -m module args`` in a new process with ``env`` added to this one's: for a
    probe's setting that a library reads once, when it starts (``XLA_FLAGS``, ``NVIDIA_TF32_OVERRIDE``). A
    process that fails raises RuntimeError with its last line of output."""
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", module, *args], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"the process failed: {tail[0]}")
    return done.stdout


class Backend:
    """Base class of every backend; see the module docstring for what to implement."""

    name = ""
    #: what the harness knows of it beyond its ops (:class:`Traits`)
    traits = Traits()
    #: dtypes per device kind, e.g. {"cpu": ("float32", "float64")}
    dtypes_by_device: dict = {"cpu": ("float32", "float64")}

    # --- what a backend implements -------------------------------------------------

    def devices(self) -> list[str]:
        return ["cpu"]

    def implemented(self) -> set[str]:
        """Names of the catalog ops this backend implements."""
        return set()

    def support_reason(self, op: catalog.Op, device: str, dtype: str) -> str:
        """Why ``op`` cannot run on ``device`` in ``dtype`` beyond the generic checks ("" = it can)."""
        return ""

    def to_device(self, array: np.ndarray, device: str, dtype: str | None):
        raise NotImplementedError

    def to_numpy(self, array) -> np.ndarray:
        raise NotImplementedError

    def forward_impl(self, op: catalog.Op, device: str, dtype: str) -> Callable:
        raise NotImplementedError

    def vjp_impl(self, op: catalog.Op, device: str, dtype: str) -> Callable:
        raise NotImplementedError

    def synchronize(self, device: str) -> None:
        """Wait until queued work on ``device`` is done (no-op for synchronous backends)."""

    def reset_peak_memory(self, device: str) -> None:
        """Start a new peak-memory window on ``device``."""

    def peak_memory(self, device: str) -> int | None:
        """Peak device memory in bytes since :meth:`reset_peak_memory`; ``None`` if not measurable."""
        return None

    def device_name(self, device: str) -> str:
        """The hardware behind ``device``, e.g. the CPU model or the GPU's name."""
        from seqbench.results.records import cpu_name

        return cpu_name()

    def versions(self) -> dict:
        """Framework and library versions, for result records."""
        return {"numpy": np.__version__}

    def math_mode(self, device: str, dtype: str) -> str:
        """The math mode in effect, e.g. ``"ieee"`` or ``"tf32"``: recorded with every result."""
        return "ieee"

    def probes(self, device: str) -> list[Probe]:
        """The :class:`Probe` s this backend asks on ``device`` (``seqbench probe``); none by default."""
        return []

    def training_steps(self, device: str, dtype: str) -> TrainingSteps:
        """The embedding trainers' update steps (:class:`TrainingSteps`); a backend without them raises."""
        raise Unsupported(f"{self.name}: offers no embedding trainer steps")

    # --- what every backend offers -------------------------------------------------

    def dtypes(self, device: str) -> tuple:
        return self.dtypes_by_device.get(device.split(":")[0], ())

    def supports(self, op: str | catalog.Op, device: str = "cpu", dtype: str = "float32") -> Support:
        """Whether ``op`` runs here on ``device`` in ``dtype``, with the reason when not."""
        entry = catalog.get(op) if isinstance(op, str) else op
        if device not in self.devices():
            return Support(False, f"{self.name}: no device {device!r} here (devices: {self.devices()})")
        if dtype not in self.dtypes(device):
            return Support(False, f"{self.name}: dtype {dtype} is not supported on {device} (supported: {list(self.dtypes(device))})")
        if entry.name not in self.implemented():
            return Support(False, f"{self.name}: op {entry.name!r} is not implemented")
        reason = self.support_reason(entry, device, dtype)
        return Support(not reason, reason)

    def _checked(self, op_name, device, dtype, inputs):
        validate.choice("dtype", dtype, DTYPES)
        if not isinstance(device, str):
            raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
        op, inputs = catalog.resolve(op_name, _lists_as_arrays(inputs))
        reference.check(op.function, **inputs)
        support = self.supports(op, device, dtype)
        if not support:
            raise Unsupported(support.reason)
        return op, inputs

    def _to_device_tree(self, tree, device, dtype):
        def move(leaf):
            if isinstance(leaf, np.ndarray) or isinstance(leaf, (np.floating, np.integer)):
                array = np.asarray(leaf)
                return self.to_device(array, device, dtype if np.issubdtype(array.dtype, np.floating) else None)
            return leaf

        return tree_map(move, tree)

    def _to_numpy_tree(self, tree):
        return tree_map(lambda leaf: leaf if leaf is None else self.to_numpy(leaf), tree)

    def _cotangents(self, op, cotangents, inputs):
        shapes = op.output_shapes(inputs)
        if len(shapes) == 1 and not isinstance(cotangents, (tuple, list)):
            cotangents = (cotangents,)
        if not isinstance(cotangents, (tuple, list)) or len(cotangents) != len(shapes):
            raise ValueError(f"cotangents must be a tuple of {len(shapes)} arrays, one per output {op.outputs}")
        return tuple(
            np.zeros(shape) if c is None else validate.float_array(f"cotangents[{k}]", np.asarray(c, dtype=float) if np.isscalar(c) else c, shape)
            for k, (c, shape) in enumerate(zip(cotangents, shapes))
        )

    def run(self, op: str, device: str = "cpu", dtype: str = "float32", **inputs) -> tuple:
        """Forward ``op`` with the reference function's arguments; NumPy outputs (always a tuple)."""
        entry, inputs = self._checked(op, device, dtype, inputs)
        outputs = self.forward_impl(entry, device, dtype)(**self._to_device_tree(inputs, device, dtype))
        return self._to_numpy_tree(tuple(outputs))

    def vjp(self, op: str, cotangents, device: str = "cpu", dtype: str = "float32", **inputs) -> dict:
        """Gradients of ``op`` pulled back from ``cotangents``; the reference's result structure."""
        entry, inputs = self._checked(op, device, dtype, inputs)
        cotangents = self._cotangents(entry, cotangents, inputs)
        grads = self.vjp_impl(entry, device, dtype)(
            self._to_device_tree(cotangents, device, dtype), **self._to_device_tree(inputs, device, dtype)
        )
        return self._to_numpy_tree(grads)

    def prepare(self, op: str, device: str, dtype: str, inputs: dict, cotangents=None) -> Callable[[], object]:
        """A no-argument callable running ``op`` on inputs already on the device (for timing).

        With ``cotangents`` it runs the forward and backward pass (the vjp),
        otherwise the forward pass. The caller synchronizes.
        """
        entry, inputs = self._checked(op, device, dtype, inputs)
        device_inputs = self._to_device_tree(inputs, device, dtype)
        if cotangents is None:
            forward = self.forward_impl(entry, device, dtype)
            return lambda: forward(**device_inputs)
        device_cotangents = self._to_device_tree(self._cotangents(entry, cotangents, inputs), device, dtype)
        backward = self.vjp_impl(entry, device, dtype)
        return lambda: backward(device_cotangents, **device_inputs)
