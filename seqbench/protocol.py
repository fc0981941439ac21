"""The backend protocol's old import path: it lives in :mod:`seqbench.backends.protocol` now.

Kept so that plug-ins written against ``seqbench.protocol`` keep working.
"""

from seqbench.backends.protocol import *  # noqa: F401,F403
from seqbench.backends.protocol import Backend, BackendUnavailable, Support, TrainingSteps, Unsupported  # noqa: F401
