"""The session's Ray head (:mod:`heads`), shared by the modules that join a cluster."""

import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from heads import needs_ray, start_head, stop_head  # noqa: E402


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    """A head that requires a token (as a cluster seqbench joins must): a sweep joins it by address with the
    token, and the checkout reaches its workers through Ray's working_dir."""
    needs_ray()
    head, process = start_head(tmp_path_factory.mktemp("head"), secrets.token_hex(16))
    yield head
    stop_head(process)
