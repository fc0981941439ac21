"""The backend registry's old import path: it lives in :mod:`seqbench.backends.registry` now.

Kept so that code written against ``seqbench.registry`` keeps working.
"""

from seqbench.backends.registry import *  # noqa: F401,F403
from seqbench.backends.registry import available, backend, backends, names, register, unregister  # noqa: F401
