"""What every benchmark module shares: the grids, the size caps, and the benchmark classes made from the catalog.

Each ``bench_<area>.py`` asks :func:`benchmark_classes` for one asv class per
catalog op of its area. A class is named after its op
(``bench_recurrent.lstm.time_forward``) and has

* ``time_forward``, ``time_forward_backward``: one call of the backend's
  prepared callable (inputs already on the device), then
  ``backend.synchronize(device)``, so the time of an asynchronous backend
  (CUDA, JAX dispatch) is the time of the work, not of the launch. Inputs,
  compilation and one warm-up call happen in setup, outside the timed region;
* ``peakmem_forward``: peak resident memory of the process (host);
* ``track_device_peak_memory`` (bytes): peak device memory of one forward call,
  inputs included, on accelerators (skipped on the CPU, where it is host memory);
* ``track_throughput`` (tokens/s; words/s for embedding ops) and
  ``track_gflops`` (GFLOP/s from the catalog's FLOP model) of the forward pass.

Parameters: ``backend``, ``device``, ``dtype``, then the op's own shape axes
(``seq_len``/``hidden``/``batch`` for RNNs, ``seq_len``/``vocab``/``batch`` for
the sequence loss, ``vocab``/``dim``/``batch`` or ``words`` for embeddings). The
lists depend only on the grid chosen, never on what is installed: a backend
that cannot run here, a device that is absent, an op a backend does not
implement, and a shape above a cap raise ``NotImplementedError`` in setup,
which asv records as skipped (with the reason in ``asv run -e`` output).

Grids, chosen by the environment variable ``SEQBENCH_GRID``:

``quick`` (default)
    CI-sized: seq_len 16, 64; hidden 32; batch 8 (the loss: vocab 1000;
    embeddings: vocab 1000, dim 64, batch 256, words 512); float32; every
    backend but torch-compile, which compiles in each benchmark process.
    ``seqbench bench`` (only what can run here) runs it in about 4.5 minutes
    on two CPU cores (4:18 measured), 10 to 20 samples of every time
    included; ``asv run --python=same --record-samples`` (every combination,
    the unavailable ones skipped) in a little more.
``mid``
    a CPU-box sweep: seq_len 32, 64, 256; hidden 64, 128, 256 (three sizes,
    so that a shape has measured neighbours on both sides: what
    ``seqbench select`` interpolates between and its hold-one-out test
    predicts from); batch 1, 8 (the loss: vocab 1000, 10000; embeddings: vocab
    1000, 10000; dim 64, 256; batch 256, 4096; words 1000, 10000); float32 and
    float64; every backend. About 2 minutes per recurrent cell and dtype for
    numpy, torch, torch-native and jax on two cores (torch-compile compiles in
    every benchmark process: much longer): narrow it, e.g.
    ``seqbench bench --grid mid --op lstm --dtype float32``.
``gpu``
    a short GPU session (``seqbench run`` on a GPU): seq_len 64, 512;
    hidden 256, 1024; batch 1, 16, 64, 256 — the shapes where the persistent
    kernels, the fused step kernels, cuDNN and XLA trade places — in float32
    (``cuda`` IEEE and ``cuda:tf32``), float16 and bfloat16; the passes' times
    only (:data:`METHODS`); torch's eager cells in float32 only; jax and
    torch-compile in every dtype (each compiles in every benchmark process,
    seconds; torch-compile's steps come from inductor's cache on disk after the
    first, and replay the whole sequence from one CUDA graph), jax-highest left
    out.
``gate``
    ``seqbench continuous``'s grid, a CI gate on two cores: seq_len 64, hidden
    64, batch 8, float32, the forward time only (:data:`METHODS`), 12 to 20
    samples a run, of :data:`GATE_OPS` (rnn and lstm) unless ``--op`` says
    otherwise; torch-compile left out (it compiles in every benchmark process).
``full``
    for GPU machines: seq_len 16, 64, 256, 1024, 4096; hidden 64, 256, 1024,
    2048; batch 1, 8, 64, 512 (the loss: vocab 1000 to 50000; embeddings:
    vocab 1000 to 100000, dim 64 to 512, batch 256 to 65536, words 1000 to
    100000); float32 and float64; every backend.

The backend axis is every backend registered in the ``seqbench.backends``
entry-point group, a plug-in's as a built-in's, available here or not, less
those a grid leaves out by their traits (``Traits.left_out_of_grids``; the
dtypes by ``Traits.grid_dtypes``). Devices are cpu, cuda and cuda:tf32
(torch's float32 with TF32 matmuls).

Caps (setup skips what is above them, with the reason):

* on the CPU, a forward pass above ``SEQBENCH_CPU_MAX_GFLOP`` GFLOP (default
  5, up to about a second of numpy; numpy float64 LSTM at T=4096, H=2048,
  B=512 would take hours): the large end of the full grid is for GPUs;
* on any device, an op whose byte model (inputs, parameters, outputs) is above
  ``SEQBENCH_MAX_GIB`` GiB (default 4); an out-of-memory error in the warm-up
  call is a skip too.

Timing (:data:`TIMING`): one round (one benchmark process per point) of
samples of one call each, no asv warm-up (setup made a warm-up call); asv
keeps every sample (``asv run --record-samples``), so two points can be
compared with asv's Mann–Whitney test, which needs at least 6 samples each.
The quick grid takes 10 to 20 samples (adding none after 0.25 s of sampling:
cheap, its calls take milliseconds); the others 6 to 10 (none after 1 s). A
benchmark process may take ``TIMEOUTS[grid]`` seconds. Under asv's fork server (``launch_method``
in asv.conf.json) the frameworks are imported once in the server
(:func:`preimport`), so ``peakmem_forward`` of every backend includes torch and
jax as imported modules (about 170 MB): compare it across shapes, or set
``SEQBENCH_PREIMPORT=0`` for each framework's own footprint.

Sizes not on an axis are the op's catalog shape (input size ``I = hidden``;
stacked RNNs have ``L = 2`` layers; sequences are full length, not ragged).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys

from seqbench import catalog, selection
from seqbench.backends import registry
from seqbench.catalog.axes import bench_shape, shape_axes
from seqbench.jobs.point import Case, gpu_present  # noqa: F401  (gpu_present: bench_peak's skip)

DEVICES = selection.NAMED
DTYPES = ("float32", "float64")

GRIDS = {
    "quick": {
        "dtypes": ("float32",),
        "recurrent": {"seq_len": (16, 64), "hidden": (32,), "batch": (8,), "vocab": (1000,)},
        "embedding": {"vocab": (1000,), "dim": (64,), "batch": (256,), "words": (512,)},
    },
    "mid": {
        "dtypes": DTYPES,
        "recurrent": {"seq_len": (32, 64, 256), "hidden": (64, 128, 256), "batch": (1, 8), "vocab": (1000, 10000)},
        "embedding": {"vocab": (1000, 10000), "dim": (64, 256), "batch": (256, 4096), "words": (1000, 10000)},
    },
    "gpu": {
        "dtypes": ("float32", "float16", "bfloat16"),
        "recurrent": {"seq_len": (64, 512), "hidden": (256, 1024), "batch": (1, 16, 64, 256), "vocab": (10000,)},
        "embedding": {"vocab": (100000,), "dim": (128,), "batch": (65536,), "words": (10000,)},
    },
    "gate": {
        "dtypes": ("float32",),
        "recurrent": {"seq_len": (64,), "hidden": (64,), "batch": (8,), "vocab": (1000,)},
        "embedding": {"vocab": (1000,), "dim": (64,), "batch": (256,), "words": (512,)},
    },
    "full": {
        "dtypes": DTYPES,
        "recurrent": {
            "seq_len": (16, 64, 256, 1024, 4096), "hidden": (64, 256, 1024, 2048),
            "batch": (1, 8, 64, 512), "vocab": (1000, 10000, 50000),
        },
        "embedding": {
            "vocab": (1000, 10000, 100000), "dim": (64, 128, 512),
            "batch": (256, 4096, 65536), "words": (1000, 10000, 100000),
        },
    },
}

#: asv timing settings per grid: a benchmark (one parameter combination) may run ``timeout`` seconds
TIMEOUTS = {"quick": 180, "mid": 600, "gpu": 300, "gate": 180, "full": 1200}
#: asv's sampling of a time benchmark per grid: ``repeat = (min samples, max samples, seconds after which no sample
#: is added once min is reached)``, one call per sample, one round; at least 6 samples, what asv's Mann–Whitney
#: test (``asv._stats.is_different``, p < 0.002) needs to tell two points apart
TIMING = {"quick": {"repeat": (10, 20, 0.25)}, "mid": {"repeat": (6, 10, 1.0)}, "gpu": {"repeat": (6, 10, 1.0)},
          "gate": {"repeat": (12, 20, 0.5)}, "full": {"repeat": (6, 10, 1.0)}}
#: the methods a grid runs (``seqbench bench`` selects them; default: every method); the gpu grid times the
#: passes only: throughput and GFLOP/s follow from the times and the catalog's models
METHODS = {"gpu": ("time_forward", "time_forward_backward"), "gate": ("time_forward",)}
#: the ops ``seqbench continuous`` gates on when no ``--op`` is given (its speed rounds and its precision checks)
GATE_OPS = ("rnn", "lstm")
#: the precision suite (bench_precision.py): the worst error, in eps, of each op's conformance cases (every catalog
#: shape, forward and gradients, seeded inputs) per backend, device and dtype, and its ratio to the faithful control;
#: lower is better. The grids with a :data:`METHODS` list (gate, gpu) leave it out
PRECISION = {"ops": ("rnn", "lstm", "gru"), "dtypes": ("float32",), "methods": ("track_error", "track_ratio")}
#: the embedding trainers' suite (bench_training.py): models, devices, the corpus, size and passes per grid (every
#: grid but quick: the setting of the word2vec quality bar), the seeds each point trains with (quality is a mean over
#: them, with its spread), and the metrics tracked per training run; the trainers are :func:`trainers`
TRAINING = {
    "models": ("skipgram", "cbow", "glove"),
    "devices": selection.KINDS,
    "metrics": ("words_per_second", "wordsim", "wordsim_rare", "wordsim_frequent", "wordsim_pairs", "analogy"),
    "quick": {"corpus": "lee_background.cor", "dim": 50, "epochs": 1, "fractions": (0.5, 1.0), "seeds": (1, 2)},
    "full": {"corpus": "head500.noblanks.cor", "dim": 100, "epochs": 5, "fractions": (0.25, 1.0),
             "seeds": (1, 2, 3, 4, 5)},
}


def training_grid(grid: str | None = None) -> dict:
    """The trainers' corpus, dim, epochs and corpus fractions on ``grid`` (default: ``SEQBENCH_GRID``)."""
    return TRAINING["quick" if (grid or grid_name()) == "quick" else "full"]


#: the peer every trainer is compared with (trained by gensim itself, not a backend)
PEER = "gensim"


def trainers() -> tuple:
    """The trainers' axis: every registered backend with update steps of its own (``training_steps``), then
    :data:`PEER`."""
    return (*(name for name in registry.installed() if registry.trains(name)), PEER)


def training_processes(grid: str) -> int:
    """Benchmark processes of bench_training: a track method per metric and point (seeds included), one
    peak-memory run per (model, trainer, device), and the host pipeline's epoch per item kind."""
    runs = len(TRAINING["models"]) * len(trainers()) * len(TRAINING["devices"])
    points = len(training_grid(grid)["fractions"]) * len(training_grid(grid)["seeds"])
    return runs * (len(TRAINING["metrics"]) * points + 1) + len(PIPELINE_ITEMS)


#: the host pipeline's item kinds bench_training times an epoch of (seqbench.embed.pipeline)
PIPELINE_ITEMS = ("skipgram", "cbow", "skipgram_windows")



def precision_methods(grid: str) -> tuple:
    """The precision suite's methods ``grid`` runs (none on a grid that lists its :data:`METHODS`)."""
    return () if grid in METHODS else PRECISION["methods"]


def grid_name() -> str:
    name = os.environ.get("SEQBENCH_GRID", "quick") or "quick"
    if name not in GRIDS:
        raise ValueError(f"SEQBENCH_GRID must be one of {sorted(GRIDS)}, got {name!r}")
    return name


def grid_dtypes(grid: str, backend: str) -> tuple:
    """The dtypes ``grid`` benchmarks ``backend`` in: the grid's, or fewer where the backend's traits say so."""
    return registry.traits(backend).grid_dtypes.get(grid, (GRIDS[grid]["dtypes"],))[0]


def backends(grid: str | None = None) -> tuple:
    """The backend axis: every installed backend (available here or not, so the axis does not change with which
    frameworks import), less those ``grid`` leaves out by their traits."""
    return _axis(grid or grid_name(), tuple(registry.installed()))


@functools.lru_cache(maxsize=None)
def _axis(grid: str, installed: tuple) -> tuple:
    """:func:`backends` for one set of installed backends: their traits are read once, not once per op (every
    benchmark process builds every op's class)."""
    return tuple(b for b in installed if grid not in registry.traits(b).left_out_of_grids)


def area(op: catalog.Op) -> str | None:
    """Which ``bench_<area>.py`` benchmarks ``op``: recurrent, composite, embedding (None: none yet)."""
    if op.family == "embedding":
        return "embedding"
    if op.family == "recurrent":
        return "composite" if op.function in ("bidirectional", "stacked") else "recurrent"
    return None


def preimport() -> None:
    """Import the frameworks of the backend axis, so every forked benchmark process starts with them.

    Runs when this module is imported by asv's fork server (``launch_method``
    ``forkserver``; ``SEQBENCH_PREIMPORT=0`` turns it off, ``=1`` forces it).
    Only modules are imported: devices are first touched in the forked
    process, where CUDA and XLA can start cleanly.
    """
    for backend in backends():
        for module in registry.traits(backend).preimport:  # loading the traits imports the backend's module
            try:
                importlib.import_module(module)
            except Exception:  # an absent or broken framework is skipped later, with its reason
                pass


def _in_fork_server() -> bool:
    flag = os.environ.get("SEQBENCH_PREIMPORT", "")
    return flag == "1" or (flag != "0" and sys.argv[1:2] == ["run_server"])


# asv runs every parameter combination of a benchmark in a process of its own
# and calls setup again before each sample, so the point is built once per
# process and kept here. The class's setup builds it (checks, then inputs),
# then the benchmark method's own setup (a ``setup`` attribute, which asv runs
# after the class's) prepares and warms the pass the method needs.
_current: Case | None = None
_current_key: tuple | None = None


def _ready_forward(*params):
    _current.ready_forward()


def _ready_backward(*params):
    _current.ready_backward()


def _ready_device_memory(*params):
    case = _current
    if case.device == "cpu":
        raise NotImplementedError("device memory on the CPU is host memory: see peakmem_forward")
    if case.forward is None:
        # The first call is measured too: an allocator whose peak cannot be
        # reset (XLA's) reports a window's peak only when the window set it.
        case.backend.reset_peak_memory(case.device)
        case.ready_forward()
        case.first_call_peak = case.backend.peak_memory(case.device)
        if case.first_call_peak is None:
            raise NotImplementedError(f"{case.backend.name}: peak memory is not measurable on {case.device}")


class _OpBenchmark:
    """The benchmarks of one op; :func:`benchmark_classes` makes one subclass per op."""

    op_name = ""
    shape_keys: tuple = ()
    rounds = 1
    repeat = TIMING["quick"]["repeat"]  # :func:`benchmark_classes` sets the grid's
    warmup_time = 0.0  # setup made one warm-up call already
    min_run_count = 1
    timeout = TIMEOUTS["quick"]

    def setup(self, backend, device, dtype, *sizes):
        global _current, _current_key
        key = (self.op_name, backend, device, dtype, sizes)
        if key != _current_key:
            _current, _current_key = None, None
            shape = bench_shape(catalog.get(self.op_name), dict(zip(self.shape_keys, sizes)))
            _current, _current_key = Case(self.op_name, backend, device, dtype, shape), key
        self.case = _current

    def time_forward(self, *params):
        self.case.forward()
        self.case.sync()

    time_forward.setup = _ready_forward

    def time_forward_backward(self, *params):
        self.case.backward()
        self.case.sync()

    time_forward_backward.setup = _ready_backward

    def peakmem_forward(self, *params):
        self.case.forward()
        self.case.sync()

    peakmem_forward.setup = _ready_forward

    def track_device_peak_memory(self, *params):
        case = self.case
        case.backend.reset_peak_memory(case.device)
        case.forward()
        case.sync()
        peak = case.backend.peak_memory(case.device)
        return case.first_call_peak if peak is None else peak

    track_device_peak_memory.setup = _ready_device_memory
    track_device_peak_memory.unit = "bytes"

    def track_throughput(self, *params):
        return self.case.op.tokens(self.case.shape) / self.case.seconds_per_forward()

    track_throughput.setup = _ready_forward
    track_throughput.unit = "tokens/s"

    def track_gflops(self, *params):
        return self.case.op.flops(self.case.shape) / self.case.seconds_per_forward() / 1e9

    track_gflops.setup = _ready_forward
    track_gflops.unit = "GFLOP/s"


class _EmbeddingBenchmark(_OpBenchmark):
    def track_throughput(self, *params):
        return self.case.op.tokens(self.case.shape) / self.case.seconds_per_forward()

    track_throughput.setup = _ready_forward
    track_throughput.unit = "words/s"


def params_of(op: catalog.Op, grid: str | None = None) -> tuple[list, list]:
    """``(params, param_names)`` of ``op``'s benchmarks in ``grid`` (default: ``SEQBENCH_GRID``)."""
    grid = grid or grid_name()
    family = "embedding" if area(op) == "embedding" else "recurrent"
    axes = shape_axes(op)
    values = [list(GRIDS[grid][family][name]) for _, name in axes]
    return ([list(backends(grid)), list(DEVICES), list(GRIDS[grid]["dtypes"]), *values],
            ["backend", "device", "dtype", *(name for _, name in axes)])


def benchmark_classes(area_name: str, module: str) -> dict[str, type]:
    """One asv benchmark class per catalog op of ``area_name``, named after the op."""
    grid = grid_name()
    classes = {}
    for op in catalog.ops().values():
        if area(op) != area_name:
            continue
        params, param_names = params_of(op, grid)
        base = _EmbeddingBenchmark if area_name == "embedding" else _OpBenchmark
        classes[op.name] = type(op.name, (base,), {
            "__module__": module,
            "__doc__": op.doc,
            "op_name": op.name,
            "shape_keys": tuple(key for key, _ in shape_axes(op)),
            "params": params,
            "param_names": param_names,
            "timeout": TIMEOUTS[grid],
            **TIMING[grid],
        })
    return classes


if _in_fork_server():
    preimport()
