"""seqbench probe: the probes backends declare run, print their findings and are filed per machine (a narrowed
run keeps the other entries); a probe that fails is a finding saying so; the report shows them."""

import json
import math

import pytest

from seqbench import cli
from seqbench.backends import registry
from seqbench.backends.numpy_backend import NumpyBackend
from seqbench.backends.protocol import Probe
from seqbench.jobs import probe
from seqbench.results import probes as probe_files
from seqbench.selection import Selection


def _rows(device):
    return [{"case": "c", "setting": "slow", "value": 2.0, "unit": "ms"},
            {"case": "c", "setting": "fast", "value": 1.0, "unit": "ms"},
            {"case": "c", "setting": "broken", "value": math.nan, "unit": "ms", "detail": "did not start"}]


def _answer(rows):
    best = min((r for r in rows if r["value"] == r["value"]), key=lambda r: r["value"])
    return f"fastest: {best['setting']}"


class Probed(NumpyBackend):
    name = "probed"

    def probes(self, device):
        return [Probe("speed", "Which setting is fastest?", _rows, _answer)]


class FailingProbe(NumpyBackend):
    name = "failing-probe"

    def probes(self, device):
        def measure(device):
            raise RuntimeError("the library is missing")
        return [Probe("broken", "Does it run?", measure, _answer)]


@pytest.fixture
def plugins():
    for cls in (Probed, FailingProbe):
        registry.register(cls.name, cls)
    yield
    for cls in (Probed, FailingProbe):
        registry.unregister(cls.name)


def test_a_probe_is_measured_printed_and_filed(plugins, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEQBENCH_MACHINE", "box")
    assert cli.main(["probe", "--backend", "probed", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Which setting is fastest?" in out and "Finding: fastest: fast" in out and "did not run" in out
    [entry] = probe_files.read(tmp_path / "box.probes.json")
    assert (entry["backend"], entry["device"], entry["probe"], entry["ok"]) == ("probed", "cpu", "speed", True)
    assert [r["setting"] for r in entry["rows"]] == ["slow", "fast", "broken"] and entry["versions"]


def test_a_failing_probe_is_a_finding_and_the_exit_status_says_so(plugins, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQBENCH_MACHINE", "box")
    assert probe.main(Selection(backends=("failing-probe", "probed")), tmp_path) == 1
    entries = {e["backend"]: e for e in probe_files.read(tmp_path / "box.probes.json")}
    assert entries["failing-probe"]["ok"] is False
    assert entries["failing-probe"]["answer"] == "the probe failed: RuntimeError: the library is missing"
    assert entries["probed"]["ok"] is True


def test_a_narrowed_probe_keeps_the_other_entries(plugins, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQBENCH_MACHINE", "box")
    probe.main(Selection(backends=("failing-probe", "probed")), tmp_path)
    probe.main(Selection(backends=("probed",)), tmp_path)
    entries = probe_files.read(tmp_path / "box.probes.json")
    assert sorted(e["backend"] for e in entries) == ["failing-probe", "probed"]


def test_no_probe_here_is_said_not_an_error(tmp_path, capsys):
    assert probe.main(Selection(backends=("numpy",)), tmp_path) == 0
    assert "no backend here has a probe" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_a_file_that_is_not_a_probe_file_is_named(tmp_path):
    bad = tmp_path / "x.probes.json"
    bad.write_text(json.dumps({"probe": 1}))
    with pytest.raises(ValueError, match="x.probes.json: not a probe file"):
        probe_files.read(bad)


def test_the_report_shows_each_finding_with_its_rows(plugins, tmp_path, monkeypatch):
    pytest.importorskip("pandas", reason="the report needs pandas (pip install 'seqbench[report]')")
    from seqbench.reports import write_report

    monkeypatch.setenv("SEQBENCH_MACHINE", "box")
    probe.main(Selection(backends=("probed",)), tmp_path / "results" / "probes")
    (tmp_path / "results" / "probes" / "junk.probes.json").write_text("[1]")
    page = write_report([tmp_path / "results"], tmp_path / "report")
    text = page.with_suffix(".md").read_text()
    section = text[text.index("## What the probes found"):]
    assert "probed on cpu" in section and "Which setting is fastest?" in section
    assert "Finding: fastest: fast" in section and "| c | fast | 1 | ms |" in section
    assert "junk.probes.json" in text  # left out, and said
