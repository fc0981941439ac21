"""The conformance cases: catalog op × backend × device × dtype × shape, with readable ids."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from seqbench import catalog
from seqbench.backends import registry
from seqbench.backends.protocol import BackendUnavailable
from seqbench.selection import Selection, kind

@dataclass(frozen=True)
class Case:
    backend: str
    device: str = ""
    dtype: str = ""
    op: catalog.Op | None = None
    shape: dict = field(default_factory=dict)
    skip: str = ""

    @property
    def id(self) -> str:
        if self.op is None:
            return "-".join(p for p in (self.backend, self.device, "unavailable") if p)
        return f"{self.op.name}-{self.backend}-{self.device}-{self.dtype}-{catalog.shape_id(self.shape)}"


#: A backend that compiles for a second or more per shape and dtype on a device (``Traits.compile_seconds``; jax
#: about 2.5 s a case on an H200): a quick selection (the main job) checks it there on one shape in two dtypes, so
#: compiling does not dominate.
QUICK_COMPILE_S = 1.0
QUICK_SHAPE = {"T": 32, "B": 8, "I": 16, "H": 32}
QUICK_DTYPES = ("float32", "float16")


def _backends(sel: Selection):
    """``(name, backend or None, reason)`` for each selected backend."""
    for name in registry.names():
        if not sel.wants("backends", name):
            continue
        try:
            yield name, registry.backend(name), ""
        except BackendUnavailable as error:
            yield name, None, str(error)


#: the sequence length from which a shape is large (the LSTM carries one into every run)
LARGE_T = 256
#: dtypes a CPU has no arithmetic for: frameworks emulate them there, seconds per large case
EMULATED_ON_CPU = ("float16", "bfloat16")


def _narrowed(sel: Selection, compile_seconds: dict, device: str, dtype: str, shape: dict) -> bool:
    """Whether the selection leaves this case out: off its one shape on a device where the backend compiles for
    :data:`QUICK_COMPILE_S` or more a case (quick), or a large shape in half precision on the CPU unless
    ``--seqbench-large`` asks for the large shapes."""
    if device == "cpu" and dtype in EMULATED_ON_CPU and shape.get("T", 0) >= LARGE_T and not sel.large:
        return True
    if not (sel.quick and compile_seconds.get(kind(device), 0.0) >= QUICK_COMPILE_S):
        return False
    return dtype not in QUICK_DTYPES or {k: shape.get(k) for k in QUICK_SHAPE} != QUICK_SHAPE


def cases(sel: Selection) -> list[Case]:
    """Every conformance case of the selection; unavailable combinations become skip cases."""
    chosen = list(_backends(sel))
    sel.validate(listed_devices={d for _, be, _ in chosen if be is not None for d in be.devices()})
    out = []
    for name, be, reason in chosen:
        if be is None:
            out.append(Case(name, skip=reason))
            continue
        compile_seconds = be.traits.compile_seconds
        devices = [d for d in be.devices() if sel.wants("devices", d)]
        for wanted in sel.devices:
            if not any(d == wanted or d.startswith(wanted + ":") for d in be.devices()):
                out.append(Case(name, wanted, skip=f"{name}: no device {wanted!r} here (devices: {be.devices()})"))
        for device in devices:
            for dtype in (t for t in be.dtypes(device) if sel.wants("dtypes", t)):
                for op in (o for o in catalog.ops().values() if sel.wants("ops", o.name)):
                    support = be.supports(op, device, dtype)
                    for shape in op.shapes + (op.large_shapes if sel.large else ()):
                        if not _narrowed(sel, compile_seconds, device, dtype, shape):
                            out.append(Case(name, device, dtype, op, shape, "" if support else support.reason))
    return out


KNOWN_FAILURES = Path(__file__).with_name("known_failures.json")


def known_failures() -> dict[str, str]:
    """Test-id patterns (fnmatch) of known failures, each with its reason."""
    return json.loads(KNOWN_FAILURES.read_text())["known_failures"]


def known_failure(test_id: str) -> str:
    return next((reason for pattern, reason in known_failures().items() if fnmatch(test_id, pattern)), "")
