"""Finding backends: the ``seqbench.backends`` entry-point group, plus those registered at run time.

A third party plugs in a backend without editing seqbench by declaring, in
its own package::

    [project.entry-points."seqbench.backends"]
    mybackend = "mypackage.backend:MyBackend"

A backend that cannot import or has no usable device is listed as unavailable
with the reason; asking for it raises :class:`BackendUnavailable` with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Callable

from seqbench.backends.protocol import Backend, BackendUnavailable, Traits

_runtime: dict[str, Callable[[], Backend]] = {}
_instances: dict[str, Backend] = {}
_failures: dict[str, str] = {}


def register(name: str, factory: Callable[[], Backend]) -> None:
    """Register a backend factory at run time (tests, notebooks); entry points are the durable way."""
    _runtime[name] = factory
    _instances.pop(name, None)
    _failures.pop(name, None)


def unregister(name: str) -> None:
    _runtime.pop(name, None)
    _instances.pop(name, None)
    _failures.pop(name, None)


def _factories() -> dict[str, Callable[[], Callable[[], Backend]]]:
    """Name -> a loader of the backend's class: the entry points (seqbench's own among them), then the
    backends registered at run time."""
    found = {ep.name: ep.load for ep in entry_points(group="seqbench.backends")}
    found.update({name: (lambda f=factory: f) for name, factory in _runtime.items()})
    return found


def backend_class(name: str):
    """The class (or factory) registered as ``name``, loaded without instantiating it; ``None`` if it cannot load."""
    try:
        return _factories()[name]()
    except Exception:  # a broken plug-in is listed as unavailable elsewhere, with the reason
        return None


def traits(name: str) -> Traits:
    """The :class:`~seqbench.backends.protocol.Traits` backend ``name`` declares (defaults if it declares none
    or cannot load)."""
    declared = getattr(backend_class(name), "traits", None)
    return declared if isinstance(declared, Traits) else Traits()


def trains(name: str) -> bool:
    """Whether backend ``name`` has embedding trainers' update steps of its own: its class defines
    ``training_steps`` (a subclass that inherits another backend's steps would only train them again)."""
    cls = backend_class(name)
    return isinstance(cls, type) and "training_steps" in vars(cls)


def installed() -> list[str]:
    """The backends installed through the entry-point group (seqbench's own and plug-ins'), available here or
    not: what every process of this environment finds, asv's benchmark processes included."""
    return sorted(ep.name for ep in entry_points(group="seqbench.backends"))


def names() -> list[str]:
    """Every registered backend name, available here or not."""
    return sorted(_factories())


def backend(name: str) -> Backend:
    """The backend called ``name`` (one instance per process).

    Raises ValueError for an unknown name and :class:`BackendUnavailable`
    (with the reason) for one that cannot run here.
    """
    if name in _instances:
        return _instances[name]
    if name in _failures:
        raise BackendUnavailable(_failures[name])
    factories = _factories()
    if name not in factories:
        raise ValueError(f"backend must be one of {sorted(factories)}, got {name!r}")
    try:
        instance = factories[name]()()
    except BackendUnavailable as error:
        _failures[name] = f"{name}: {error}"
        raise BackendUnavailable(_failures[name]) from None
    except Exception as error:  # a broken plugin is reported, never a crash
        _failures[name] = f"{name}: failed to load ({type(error).__name__}: {error})"
        raise BackendUnavailable(_failures[name]) from None
    _instances[name] = instance
    return instance


@dataclass
class Status:
    name: str
    available: bool
    reason: str = ""
    devices: list = field(default_factory=list)
    versions: dict = field(default_factory=dict)


def backends() -> list[Status]:
    """Every registered backend with its availability, devices and versions, or the reason."""
    statuses = []
    for name in names():
        try:
            be = backend(name)
        except BackendUnavailable as error:
            statuses.append(Status(name, False, str(error)))
            continue
        statuses.append(Status(name, True, "", be.devices(), be.versions()))
    return statuses


def available() -> list[str]:
    """Names of the backends that can run here."""
    return [s.name for s in backends() if s.available]
