"""Splitting a sweep into shards of about equal cost, by the catalog's FLOP model.

A unit is the smallest piece of work a shard holds: the benchmarks of one
(op, backend, device, dtype) over the grid's shapes, or the conformance cases
of one (op, backend, device group). Its cost is an estimate in seconds, per
benchmark process (or conformance case)

    cost = overhead(device) + compile(backend, device) + calls · t,   t = passes · flops(shape) / rate(device)

where ``overhead`` is the measured cost of a process that does no work
(start, imports, setup, warm-up), ``compile`` what a compiling backend adds to
each, and ``rate`` the sustained rate a recurrent cell reaches. Units are
dealt longest first, each to the shard with the least cost so far (LPT: within
4/3 of the best split), CPU units to CPU shards and GPU units to GPU shards.
A shard's cost adds the start of each asv run (one per op) or conformance run
(one per backend and device group) it makes, and a unit goes where it ends
cheapest with that start counted: units of one run stay together unless the
balance needs them apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seqbench import catalog
from seqbench.backends import registry

#: seconds of one benchmark process beside its work, and of starting asv for an op (finding the benchmarks, the fork
#: server importing torch and jax). cpu: measured on this project's 2-core CI machine (the quick grid's rnn: 11
#: processes of numpy in 11 s, 21 of numpy and torch-native in 13 s); cuda: that plus creating a CUDA context and
#: loading the framework's kernels, an assumption until a GPU sweep measures it
OVERHEAD_S, ASV_START_S = {"cpu": 0.3, "cuda": 2.0}, 8.0
#: FLOP/s a recurrent cell sustains: about a third of the matmul rate measured by bench_peak on the 2-core CI
#: machine (136 GFLOP/s float32), and a tenth of an H200's dense TF32 rate
RATE = {"cpu": 5e10, "cuda": 5e13}
#: calls of the op one benchmark process makes: two warm-ups (setup's, asv's), then 3 to 10 samples, at most about a
#: second of sampling (benchmarks/common.py); the forward and backward pass costs about three forward passes
WARMUPS, SAMPLES, SAMPLING_S, BACKWARD = 2, (3, 10), 1.0, 3.0
#: seconds of one conformance case beside its work (pytest, the reference in float64, the faithful control), and
#: of starting the suite for a unit (a worker process, collection): measured, 9 numpy LSTM cases in 5 s
CASE_S, START_S = 0.3, 2.0


@dataclass(frozen=True)
class Unit:
    """One indivisible piece of a sweep: ``kind`` "bench" (one dtype) or "check" (``dtype`` "": all)."""

    kind: str
    op: str
    backend: str
    devices: tuple
    dtype: str = ""
    cost: float = 0.0

    @property
    def gpu(self) -> bool:
        return any(d != "cpu" for d in self.devices)

    @property
    def run(self) -> tuple:
        """The run of the suite a shard makes for this unit: one asv run per op, one conformance run per
        backend and device group; units of one run share its start."""
        return (self.kind, self.op) if self.kind == "bench" else (self.kind, self.backend, self.devices)

    @property
    def start(self) -> float:
        return ASV_START_S if self.kind == "bench" else START_S

    def __str__(self) -> str:
        return f"{self.op}/{self.backend}/{','.join(self.devices)}" + (f"/{self.dtype}" if self.dtype else "")


@dataclass
class Shard:
    """Units that run together on one worker: all on the CPU, or all on one GPU."""

    index: int
    gpu: bool
    units: list = field(default_factory=list)

    @property
    def cost(self) -> float:
        """Its units' costs, and the start of each run of the suite it makes."""
        return sum(u.cost for u in self.units) + sum({u.run: u.start for u in self.units}.values())

    def cost_with(self, unit: Unit) -> float:
        """Its cost once it holds ``unit`` too (a unit of a run it makes already adds no start)."""
        return self.cost + unit.cost + (0.0 if any(u.run == unit.run for u in self.units) else unit.start)

    @property
    def name(self) -> str:
        return f"shard {self.index + 1} ({'GPU' if self.gpu else 'CPU'})"

    def bench_points(self) -> dict:
        """``{op: [(backend, device, dtype), ...]}``: the selection ``seqbench bench`` runs for this shard."""
        points = {}
        for unit in self.units:
            points.setdefault(unit.op, []).extend((unit.backend, d, unit.dtype) for d in unit.devices)
        return points

    def check_groups(self) -> dict:
        """``{(backend, devices): [ops]}``: one conformance run per group; within a group every op runs on
        every device, which is exactly the group's units."""
        groups = {}
        for unit in self.units:
            groups.setdefault((unit.backend, unit.devices), []).append(unit.op)
        return groups


def _kind(device: str) -> str:
    return "cpu" if device == "cpu" else "cuda"


def compile_s(backend: str, kind: str) -> float:
    """Seconds a backend adds to each process or case on a device kind by compiling (its traits say)."""
    return registry.traits(backend).compile_seconds.get(kind, 0.0)


def process_cost(backend: str, device: str, flops: float, passes: float = 1.0) -> float:
    """Estimated seconds of one benchmark process of ``flops`` per forward pass."""
    kind = _kind(device)
    t = passes * flops / RATE[kind]
    sampling = max(SAMPLES[0] * t, min(SAMPLES[1] * t, SAMPLING_S))
    return OVERHEAD_S[kind] + compile_s(backend, kind) + WARMUPS * t + sampling


def bench_unit(op: catalog.Op, backend: str, device: str, dtype: str, shapes: list, methods: list) -> Unit:
    """The benchmarks of one point over ``shapes`` (catalog shapes), ``methods`` each."""
    cost = sum(process_cost(backend, device, op.flops(shape), BACKWARD if "backward" in method else 1.0)
               for shape in shapes for method in methods)
    return Unit("bench", op.name, backend, (device,), dtype, cost)


def check_unit(op: catalog.Op, backend: str, devices: tuple, shapes: list) -> Unit:
    """The conformance cases of one (op, backend, device group); ``shapes``: one per case."""
    kind = _kind(devices[0])
    cost = sum(CASE_S + compile_s(backend, kind) + (1 + BACKWARD) * op.flops(shape) / RATE[kind]
               for shape in shapes)
    return Unit("check", op.name, backend, tuple(devices), "", cost)


def deal(units: list, cpu_shards: int, gpu_shards: int) -> list[Shard]:
    """Deal ``units`` into at most ``cpu_shards`` CPU and ``gpu_shards`` GPU shards, longest first to the shard
    that ends least loaded with it (so units of one op stay together unless balance needs them apart); empty
    shards are dropped. Raises ValueError when there are GPU units and no GPU shard may hold them."""
    if any(u.gpu for u in units) and gpu_shards < 1:
        raise ValueError("the sweep has GPU work and the cluster has no GPU: narrow it with --device cpu")
    shards = [Shard(k, False) for k in range(max(cpu_shards, 1))]
    shards += [Shard(len(shards) + k, True) for k in range(gpu_shards)]
    for unit in sorted(units, key=lambda u: (-u.cost, str(u))):
        least = min((s for s in shards if s.gpu == unit.gpu), key=lambda s: (s.cost_with(unit), s.index))
        least.units.append(unit)
    kept = [s for s in shards if s.units]
    for k, shard in enumerate(kept):
        shard.index = k
    return kept


def wall_time(shards: list[Shard], cpu_workers: int) -> float:
    """Estimated seconds of the sweep: its costliest shard, or the CPU shards' sum over ``cpu_workers`` (the
    nodes for benchmarks, which take turns on a machine; the CPUs for conformance) where that is more; every
    GPU shard has a GPU of its own."""
    cpu = [s.cost for s in shards if not s.gpu]
    return max([s.cost for s in shards] + [sum(cpu) / max(cpu_workers, 1)])
