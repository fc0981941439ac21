"""What a command runs on, parsed once: the device kinds, the comma-list options, the numeric options' types, and
the typed :class:`Selection`.

The command line builds one :class:`Selection` from ``--op``, ``--backend``,
``--device``, ``--dtype`` (each repeatable or comma-separated), validates it
with one message per mistake, and passes it down; the jobs below read it and
never see an ``argparse.Namespace``. Numbers (``--timeout``, ``--shards``,
``select``'s sizes) are refused by argparse itself, naming the argument.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from seqbench import catalog
from seqbench.backends import registry
from seqbench.backends.protocol import DTYPES

#: device kinds and the devices of each that grids and the main job name (``cuda:tf32``: float32 with TF32
#: matmuls); a backend may also list indexed devices (``cuda:1``)
DEVICES = {"cpu": ("cpu",), "cuda": ("cuda", "cuda:tf32")}
KINDS = tuple(DEVICES)
NAMED = tuple(d for members in DEVICES.values() for d in members)


def values(option) -> tuple:
    """The names an option holds: ``["a,b", "c"]`` (repeated and comma-separated) -> ``("a", "b", "c")``."""
    return tuple(v.strip() for item in option or () for v in item.split(",") if v.strip())


def positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1 (``--shards``, ``select --seq-len``)."""
    return _positive(text, int, "a positive integer")


def positive_number(text: str) -> float:
    """An argparse type: a positive, finite number (``--max-error-eps``)."""
    return _positive(text, float, "a positive number")


def positive_seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds (``--timeout``)."""
    return _positive(text, float, "a positive number of seconds")


def _positive(text: str, convert, what: str):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not 0 < value < math.inf:  # (nan too)
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def kind(device: str) -> str:
    """The kind of a device: ``cuda:tf32`` and ``cuda:1`` are ``cuda``."""
    return device.split(":")[0]


def check_device(device: str, listed=()) -> None:
    """A ValueError naming ``--device`` unless ``device`` is of a known kind or a device a backend here lists."""
    if kind(device) not in KINDS and device not in listed:
        also = f" or a device a backend here lists {sorted(listed)}" if listed else ""
        raise ValueError(f"--device must be one of {list(NAMED)} (also indexed, e.g. cuda:1){also}, got {device!r}")


def require_here(devices, here) -> None:
    """A ValueError naming ``--device`` for each of ``devices`` that is not ``here`` (the devices of the backends
    that would run): a device kind is here when one of its devices is (``cuda`` when ``cuda:tf32`` is)."""
    missing = [d for d in devices if not any(h == d or kind(h) == d for h in here)]
    if missing:
        raise ValueError(f"--device {', '.join(missing)}: not here (devices here: {', '.join(sorted(here)) or 'none'})")


@dataclass(frozen=True)
class Selection:
    """What a run is narrowed to; empty tuples mean everything. ``large`` adds the large shapes; ``quick`` is the
    main job's selection (a backend that compiles for a second or more a case on a device checks one shape there)."""

    backends: tuple = ()
    devices: tuple = ()
    dtypes: tuple = ()
    ops: tuple = ()
    large: bool = False
    quick: bool = False

    @classmethod
    def parse(cls, op=None, backend=None, device=None, dtype=None, large=False, quick=False,
              extra_ops=()) -> "Selection":
        """The selection the options name, validated: unknown ops, backends, dtypes and device kinds are a
        ValueError naming the option. ``extra_ops`` are names an op option may hold beside catalog ops."""
        sel = cls(values(backend), values(device), values(dtype), values(op), large, quick)
        sel.validate(extra_ops=extra_ops)
        return sel

    def validate(self, listed_devices=(), extra_ops=()) -> None:
        """A ValueError naming the option for a name that selects nothing anywhere."""
        for op in self.ops:
            if op not in extra_ops:
                catalog.get(op)
        names = registry.names()
        for name in self.backends:
            if name not in names:
                raise ValueError(f"--backend must be one of {names}, got {name!r}")
        for dtype in self.dtypes:
            if dtype not in DTYPES:
                raise ValueError(f"--dtype must be one of {list(DTYPES)}, got {dtype!r}")
        for device in self.devices:
            check_device(device, listed_devices)

    def wants(self, field: str, value: str) -> bool:
        """Whether the selection keeps ``value`` of ``field`` ("backends", "devices", ...); a device kind
        keeps its devices (``cuda`` keeps ``cuda:tf32``)."""
        chosen = getattr(self, field)
        if field == "devices":
            return not chosen or any(value == d or value.startswith(d + ":") for d in chosen)
        return not chosen or value in chosen
