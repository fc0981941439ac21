"""Shared by every test folder: pytester, and ``tests/plugins`` (the tests' third-party backends and fixture
data) on ``sys.path``, as a plug-in's own package would be."""

import sys
from pathlib import Path

pytest_plugins = ["pytester"]

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
