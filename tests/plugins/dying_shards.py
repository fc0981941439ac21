"""Shard work whose Ray worker process dies, for the tests of a cluster sweep's retries."""

import os
from pathlib import Path

from seqbench.fleet import sweeps as cluster_sweeps


def dies(spec, shard):
    """The shard's real conformance work; then, for a shard ``spec["die"]`` names, the worker process exits before
    it returns (the results never reach the driver): the first time only ("once") or every time ("always")."""
    returned = cluster_sweeps.check_shard(spec, shard)
    marker = Path(spec["markers"]) / f"shard-{shard.index}"
    how = spec["die"].get(shard.index)
    if how == "always" or (how == "once" and not marker.exists()):
        marker.touch()
        os._exit(1)
    return returned
