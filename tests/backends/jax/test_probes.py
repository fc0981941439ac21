"""The jax loop probe (backends/jax/probes.py): each setting runs in a fresh process and is timed; the answer
names the fastest and every setting's speed over the backend's own; a setting whose process fails says so."""

import math

import pytest

pytest.importorskip("jax")

from seqbench.backends import registry  # noqa: E402
from seqbench.backends.jax import probes  # noqa: E402


def test_the_probe_is_declared_on_a_gpu_only():
    assert registry.backend("jax").probes("cpu") == []
    assert [p.name for p in registry.backend("jax").probes("cuda")] == ["jax-gpu-loop"]


def test_settings_run_in_fresh_processes_on_the_cpu():
    rows = probes.loop_rows("cpu", [probes.BASE, "initial states donated"])
    assert [r["setting"] for r in rows] == [probes.BASE, "initial states donated"]
    assert all(0 < r["value"] < 1e4 for r in rows), rows
    assert probes.loop_answer(rows).startswith("Fastest: ")


def test_a_setting_whose_process_fails_is_said(monkeypatch):
    monkeypatch.setitem(probes.SETTINGS, "broken", ({"XLA_FLAGS": "--no_such_xla_flag=1"}, {}))
    [row] = probes.loop_rows("cpu", ["broken"])
    assert math.isnan(row["value"]) and row["detail"].startswith("the process failed")
    answer = probes.loop_answer([{"setting": probes.BASE, "value": 2.0}, {"setting": "fast", "value": 1.0}, row])
    assert answer == ("Fastest: fast (1 ms; the backend's own 2 ms). Speed over the backend's own: fast 2.00x. "
                      "Did not run: broken.")
