"""seqbench: check and benchmark sequence-model math across array backends.

    >>> import seqbench
    >>> be = seqbench.backend("numpy")
    >>> y, h_T, C_T = be.run("lstm", dtype="float32", **seqbench.catalog.get("lstm").inputs({"T": 4, "B": 2, "I": 3, "H": 5}))
"""

from . import catalog, reference
from .registry import available, backend, backends

__all__ = ["available", "backend", "backends", "catalog", "reference"]
__version__ = "0.1.0"
