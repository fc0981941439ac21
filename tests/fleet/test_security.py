"""Who may reach a sweep's cluster, and what it receives: ``--cluster local`` listens on the loopback address
only, with token authentication; a remote cluster is joined with its token and refused where it needs none
(unless ``--insecure-cluster``); the workers receive the checkout's tracked files, nothing else of it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seqbench.fleet import access, engine as cluster, shipped

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from heads import needs_ray, start_head, stop_head  # noqa: E402
from test_cluster import _finished, _seqbench  # noqa: E402  (the same commands, started the same way)

NARROW = ["check", "--backend", "numpy", "--op", "softmax_prob", "--dtype", "float32", "--shards", "1"]
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
#: the listening sockets of a process and its descendants (Ray's processes), by psutil, which Ray ships
LISTENING = """import sys, json, ray, psutil
top = psutil.Process(int(sys.argv[1]))
print(json.dumps([(p.name(), c.laddr.ip, c.laddr.port) for p in [top, *top.children(recursive=True)]
                  for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]))
"""


def _failed(command: subprocess.Popen) -> str:
    out = command.communicate(timeout=300)[0]
    assert command.returncode == 2, out
    return out


def test_a_local_instance_listens_on_the_loopback_address_only_and_asks_for_a_token(tmp_path, monkeypatch):
    needs_ray()
    monkeypatch.setenv("HOME", str(tmp_path))  # Ray writes the local instance's token to ~/.ray/auth_token
    script = ("import sys\nfrom pathlib import Path\nfrom seqbench.fleet import engine\n"
              f"engine.connect('local', None, Path({str(tmp_path / 'ray.log')!r}))\n"
              "import ray\nprint(ray.get_runtime_context().gcs_address, flush=True)\nsys.stdin.read()\n")
    driver = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        gcs = driver.stdout.readline().strip()
        assert gcs, "the local instance did not start"
        listening = [tuple(s) for s in json.loads(subprocess.run(
            [sys.executable, "-c", LISTENING, str(driver.pid)], capture_output=True, text=True, check=True).stdout)]
        assert {"gcs_server", "raylet"} <= {name for name, _, _ in listening}, listening
        assert [s for s in listening if s[1] not in LOOPBACK] == [], "reachable from other hosts"
        monkeypatch.setenv(access.SINGLE_NODE, "0")  # the probe reaches the loopback address as it is
        assert access.opens_without_token(gcs) is False  # token authentication is on
    finally:
        driver.communicate(timeout=120)


def test_a_cluster_that_requires_a_token_is_joined_with_it_and_never_without(tmp_path, ray_head):
    out = _finished(_seqbench(tmp_path, *NARROW, "--cluster", ray_head.address, "--results-dir",
                              str(tmp_path / "with"), token=ray_head.token))
    assert "0 failed" in out, out
    written = [p for p in (tmp_path / "with").rglob("*") if p.is_file()]
    assert written and not [p for p in written if ray_head.token in p.read_text(errors="replace")]
    assert ray_head.token not in out
    refused = _failed(_seqbench(tmp_path, *NARROW, "--cluster", ray_head.address, "--results-dir",
                                str(tmp_path / "without")))
    message = [line for line in refused.splitlines() if line.strip()]
    assert len(message) == 1 and "requires a token and none is set here; set RAY_AUTH_TOKEN" in message[0], refused
    wrong = _failed(_seqbench(tmp_path, *NARROW, "--cluster", ray_head.address, "--results-dir",
                              str(tmp_path / "wrong"), token="0" * 32))
    assert f"--cluster {ray_head.address}: cannot connect" in wrong and "Traceback" not in wrong, wrong


def test_a_cluster_that_requires_no_token_is_refused_unless_asked_for(tmp_path):
    needs_ray()
    head, process = start_head(tmp_path, "")
    try:
        refused = _failed(_seqbench(tmp_path, *NARROW, "--cluster", head.address, "--results-dir",
                                    str(tmp_path / "refused")))
        assert refused.strip().count("\n") == 0 and "lets in clients without a token" in refused, refused
        assert "pass --insecure-cluster" in refused and not (tmp_path / "refused" / "box.jsonl").exists()
        out = _finished(_seqbench(tmp_path, *NARROW, "--cluster", head.address, "--insecure-cluster",
                                  "--results-dir", str(tmp_path / "insecure")))
        assert "warning: --insecure-cluster" in out and "0 failed" in out, out
    finally:
        stop_head(process)


def _repo(folder: Path) -> Path:
    """A git checkout with a tracked file, tracked results, an untracked .env and an ignored secret."""
    folder.mkdir()
    for name, text in {"bench.py": "x = 1\n", ".gitignore": "secret/\n", "results/old.json": "{}"}.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], cwd=folder, check=True)
    subprocess.run(git + ["add", "."], cwd=folder, check=True)
    subprocess.run(git + ["commit", "-qm", "one"], cwd=folder, check=True)
    (folder / ".env").write_text("KEY=private\n")
    (folder / "secret").mkdir()
    (folder / "secret" / "data.csv").write_text("private\n")
    (folder / "bench.py").write_text("x = 2\n")  # the working tree's version is shipped
    return folder


def test_the_workers_receive_the_tracked_files_and_the_commit_only(tmp_path):
    repo = _repo(tmp_path / "repo")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    with shipped.checkout_copy(repo, head) as folder:
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                       if p.is_file() and ".git" not in p.relative_to(folder).parts)
        assert files == [".gitignore", "bench.py"] and (folder / "bench.py").read_text() == "x = 2\n"
        logged = subprocess.run(["git", "log", "--format=%H"], cwd=folder, capture_output=True, text=True)
        assert logged.stdout.split() == [head]
        assert subprocess.run(["git", "remote"], cwd=folder, capture_output=True, text=True).stdout == ""
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="is not a git checkout"):
        with shipped.checkout_copy(tmp_path / "plain", "HEAD"):
            pass


def test_a_remote_worker_finds_no_untracked_file_in_its_working_dir(tmp_path, ray_head, monkeypatch):
    repo = _repo(tmp_path / "repo")
    monkeypatch.setenv("RAY_AUTH_TOKEN", ray_head.token)
    monkeypatch.delenv(access.MODE, raising=False)  # (connect sets it; put back after)
    cluster.connect(ray_head.address, repo, tmp_path / "ray.log")
    try:
        import ray

        def listing():
            import os

            return sorted(os.path.relpath(os.path.join(d, f)) for d, _, fs in os.walk(".") for f in fs
                          if ".git" not in d.split(os.sep))

        assert ray.get(ray.remote(listing).remote()) == [".gitignore", "bench.py"]
    finally:
        cluster.shutdown()
