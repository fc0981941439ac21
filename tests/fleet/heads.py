"""Ray heads on this machine, started as an operator starts one (``ray start --head``)."""

import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

NO_RAY = "Ray is not installed (pip install 'seqbench[cluster]')"


def needs_ray() -> None:
    """Skip where Ray is not installed, without importing it here: seqbench settles Ray's settings (the token,
    the loopback address) before Ray is imported in a process, as in the command line's."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip(NO_RAY)


@dataclass
class Head:
    address: str
    token: str  # "" where the head requires none


def start_head(folder: Path, token: str):
    """A head with token authentication (``token``) or without (""), its workers named "box" as the tests'
    seqbench commands name this machine; returns it and its process (stopped by :func:`stop_head`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if token else {"RAY_AUTH_MODE": "disabled"}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}, **auth,
           "HOME": str(folder / "home"), "SEQBENCH_MACHINE": "box"}
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--num-cpus=2",
                             "--include-dashboard=false", f"--port={port}", "--node-ip-address=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    return Head(f"127.0.0.1:{port}", token), head


def stop_head(head: subprocess.Popen) -> None:
    os.killpg(head.pid, signal.SIGINT)  # --block: its processes stop with it (in 2 s; SIGTERM takes 30)
    head.wait(timeout=60)
