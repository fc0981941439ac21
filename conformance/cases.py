"""The conformance cases: catalog op × backend × device × dtype × shape, with readable ids."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from seqbench import catalog, registry
from seqbench.protocol import BackendUnavailable


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


@dataclass(frozen=True)
class Selection:
    """What a run is narrowed to; empty tuples mean everything."""

    backends: tuple = ()
    devices: tuple = ()
    dtypes: tuple = ()
    ops: tuple = ()
    large: bool = False

    def wants(self, kind: str, value: str) -> bool:
        chosen = getattr(self, kind)
        if kind == "devices":
            return not chosen or any(value == d or value.startswith(d + ":") for d in chosen)
        return not chosen or value in chosen


def _backends(sel: Selection):
    """``(name, backend or None, reason)`` for each selected backend."""
    names = registry.names()
    for name in sel.backends:
        if name not in names:
            raise ValueError(f"--backend must name registered backends {names}, got {name!r}")
    for name in names:
        if not sel.wants("backends", name):
            continue
        try:
            yield name, registry.backend(name), ""
        except BackendUnavailable as error:
            yield name, None, str(error)


def cases(sel: Selection) -> list[Case]:
    """Every conformance case of the selection; unavailable combinations become skip cases."""
    for op in sel.ops:
        catalog.get(op)
    out = []
    for name, be, reason in _backends(sel):
        if be is None:
            out.append(Case(name, skip=reason))
            continue
        devices = [d for d in be.devices() if sel.wants("devices", d)]
        for wanted in sel.devices:
            if not any(d == wanted or d.startswith(wanted + ":") for d in be.devices()):
                out.append(Case(name, wanted, skip=f"{name}: no device {wanted!r} here (devices: {be.devices()})"))
        for device in devices:
            for dtype in (t for t in be.dtypes(device) if sel.wants("dtypes", t)):
                for op in (o for o in catalog.ops().values() if sel.wants("ops", o.name)):
                    support = be.supports(op, device, dtype)
                    for shape in op.shapes + (op.large_shapes if sel.large else ()):
                        out.append(Case(name, device, dtype, op, shape, "" if support else support.reason))
    return out


KNOWN_FAILURES = Path(__file__).with_name("known_failures.json")


def known_failures() -> dict[str, str]:
    """Test-id patterns (fnmatch) of known failures, each with its reason."""
    return json.loads(KNOWN_FAILURES.read_text())["known_failures"]


def known_failure(test_id: str) -> str:
    return next((reason for pattern, reason in known_failures().items() if fnmatch(test_id, pattern)), "")
