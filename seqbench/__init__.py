"""seqbench: check and benchmark sequence-model math across array backends.

    >>> import seqbench
    >>> be = seqbench.backend("numpy")
    >>> y, h_T, C_T = be.run("lstm", dtype="float32", **seqbench.catalog.get("lstm").inputs({"T": 4, "B": 2, "I": 3, "H": 5}))
"""

from . import catalog, reference
from seqbench.backends.registry import available, backend

__all__ = ["available", "backend", "catalog", "reference"]  # seqbench.backends is the backends' package
__version__ = "0.1.0"
