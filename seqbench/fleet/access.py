"""Who may reach the Ray cluster a sweep runs on: ``--cluster local`` on the loopback address with token
authentication, a remote cluster only where it requires a token (or with ``--insecure-cluster``).

Ray's token authentication (``RAY_AUTH_MODE=token``, Ray 2.52 and later): every node and every client
holds one shared token, which Ray reads from ``RAY_AUTH_TOKEN``, else the file ``RAY_AUTH_TOKEN_PATH``
names, else ``~/.ray/auth_token``. seqbench never reads the token: it only asks whether one is set, and
names where it is, never what it is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

#: Ray turns a loopback node address into the host's routable one unless it runs as a single-node instance,
#: which this switch asks for (Ray's name for it speaks of the hosts where that is the default); with the node
#: on 127.0.0.1 the GCS server, raylet and workers listen on the loopback address only. Read when ray is imported.
SINGLE_NODE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = "127.0.0.1"
MODE = "RAY_AUTH_MODE"
#: what tells the user how to give the token, in every message that needs one
HOW = ("set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH to a file holding it, or put it in ~/.ray/auth_token "
       "(`ray get-auth-token` prints it on the head node)")
#: a connection without a token, on a cluster that requires one: what Ray says
REFUSED = re.compile(r"unauthenticated|authentication token|authenticationerror", re.IGNORECASE)
#: a connection attempt with no token at all (nothing is shipped, nothing runs)
PROBE = ("import sys, ray\n"
         "ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)\n"
         "ray.shutdown()\n")


def local_only() -> None:
    """Before ``import ray``: a local instance on the loopback address, with token authentication (Ray writes
    a token to ``~/.ray/auth_token`` where there is none)."""
    os.environ[SINGLE_NODE] = "0"
    os.environ[MODE] = "token"


def check_local(node_ip: str) -> None:
    """A started local instance is on the loopback address, or ValueError."""
    if node_ip != LOOPBACK:
        raise ValueError(f"--cluster local: Ray started on {node_ip}, reachable from other hosts, not on "
                         f"{LOOPBACK} (Ray was imported before seqbench could ask for the loopback address); run "
                         "the seqbench command in a fresh Python process")


def token_source() -> str | None:
    """Where Ray will read the token from, in Ray's order, or None where no token is set."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        path = Path(os.environ["RAY_AUTH_TOKEN_PATH"]).expanduser()
        if not path.is_file():
            raise ValueError(f"--cluster: RAY_AUTH_TOKEN_PATH names {path}, which is not a file; {HOW}")
        return f"the file RAY_AUTH_TOKEN_PATH names ({path})"
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


def opens_without_token(address: str) -> bool | None:
    """Whether the cluster at ``address`` lets in a client without a token: True (anyone who reaches it can
    run code on it), False (it asked for a token), None (no cluster answered)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_")} | {MODE: "disabled"}
    probe = subprocess.Popen([sys.executable, "-c", PROBE, address], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
    with probe:
        for line in probe.stdout:
            if REFUSED.search(line):
                probe.kill()
                return False
    return True if probe.returncode == 0 else None


def check_remote(address: str, insecure: bool, warn) -> None:
    """Before connecting to a cluster: one that requires a token gets the token (``RAY_AUTH_MODE=token``);
    one that does not is refused, or with ``insecure`` joined after a warning, without the token."""
    opens = opens_without_token(address)
    if opens is None:
        raise ValueError(f"--cluster {address}: no Ray cluster answered there; expected the address of a "
                         "running cluster (ray://head:10001, head:6379 or auto)")
    if opens:
        if not insecure:
            raise ValueError(f"--cluster {address}: the cluster lets in clients without a token, so anyone who "
                             "reaches it can run code on it; start it with RAY_AUTH_MODE=token (README: "
                             "Security), or pass --insecure-cluster to use it anyway")
        warn(f"seqbench: warning: --insecure-cluster: {address} requires no token; anyone who reaches it can run "
             "code on it and read what this sweep sends")
        os.environ[MODE] = "disabled"  # the token, where there is one, is not sent to a cluster that needs none
        return
    if token_source() is None:
        raise ValueError(f"--cluster {address}: the cluster requires a token and none is set here; {HOW}")
    os.environ[MODE] = "token"
