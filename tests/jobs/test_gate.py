"""The gate's rules on asv result files with known samples (``tests/plugins/measured.py``) and known conformance
rows: each check can fail, and each can pass."""

import json
import math

import pytest

import measured
from seqbench.jobs import gate
from seqbench.results import asv_files

SHAPE = (64, 64, 8)


def side(tmp_path, name: str, medians: dict, spread: float = 0.02, n: int = 12) -> list[dict]:
    """asv's points of one run, written by asv's own statistics: ``medians``: backend -> median forward time."""
    runs = {(b, "forward", *SHAPE): measured.samples(m, spread, n) for b, m in medians.items()}
    root = measured.write(tmp_path / name, runs, {b: (True, 1.0, 1.0) for b in medians})
    return asv_files.read([root])[1]


def compared(tmp_path, base: dict, head: dict, factor: float = 1.5, **kw) -> dict:
    verdicts = gate.compare_speed(gate.pooled([side(tmp_path, "base", base, **kw)]),
                                  gate.pooled([side(tmp_path, "head", head, **kw)]), factor)
    return {dict(v.key[1])["backend"]: v for v in verdicts}


def test_twice_as_slow_beyond_the_factor_and_significant_is_slower(tmp_path):
    v = compared(tmp_path, {"myfast": 1e-3}, {"myfast": 2e-3})["myfast"]
    assert v.verdict == "slower" and v.significant and v.ratio == pytest.approx(2.0)
    assert gate.label(v.key) == "lstm.time_forward(myfast, cpu, float32, T=64 H=64 B=8)"


def test_a_significant_change_within_the_factor_is_not_a_regression(tmp_path):
    v = compared(tmp_path, {"myfast": 1e-3}, {"myfast": 1.3e-3})["myfast"]
    assert v.significant and v.verdict == "same"


def test_a_ratio_beyond_the_factor_inside_the_noise_is_not_a_regression(tmp_path):
    """Samples spread ±90% around their medians overlap although the medians are 1.6x apart: not significant."""
    v = compared(tmp_path, {"myfast": 1e-3}, {"myfast": 1.6e-3}, spread=0.9)["myfast"]
    assert v.ratio > 1.5 and v.significant is False and v.verdict == "same"


def test_faster_is_reported_as_faster_never_as_slower(tmp_path):
    v = compared(tmp_path, {"myfast": 2e-3}, {"myfast": 1e-3})["myfast"]
    assert v.verdict == "faster" and v.ratio == pytest.approx(0.5)


def test_rounds_pool_their_samples(tmp_path):
    """Rounds pool their samples: four a side in one round, eight over two (enough for Mann–Whitney at p < 0.002)."""
    rounds = [side(tmp_path, f"r{i}", {"myfast": 1e-3}, n=4) for i in range(2)]
    heads = [side(tmp_path, f"h{i}", {"myfast": 2e-3}, n=4) for i in range(2)]
    one = gate.compare_speed(gate.pooled(rounds[:1]), gate.pooled(heads[:1]), 1.5)[0]
    both = gate.compare_speed(gate.pooled(rounds), gate.pooled(heads), 1.5)[0]
    assert one.samples == (4, 4) and both.samples == (8, 8)
    assert both.verdict == "slower"


def test_only_a_confirmed_slower_point_is_kept(tmp_path):
    flagged = [v for v in compared(tmp_path / "a", {"x": 1e-3, "y": 1e-3}, {"x": 2e-3, "y": 2e-3}).values()]
    again = compared(tmp_path / "b", {"x": 1e-3, "y": 1e-3}, {"x": 2e-3, "y": 1.05e-3})
    kept = gate.confirmed(flagged, list(again.values()))
    assert [dict(v.key[1])["backend"] for v in kept] == ["x"]


def test_a_slowdown_no_larger_than_the_same_commits_rounds_differ_is_the_hosts(tmp_path):
    """BASE's rounds 1.8x apart (the host moved): HEAD 1.6x slower is within that, 2.5x slower is beyond it."""
    rounds = {name: side(tmp_path, name, {"x": m, "y": m}) for name, m in
              (("A1", 1e-3), ("B1", 2e-3), ("A2", 1.8e-3), ("B2", 2.1e-3))}
    spreads = gate.spread(rounds)
    assert list(spreads.values()) == pytest.approx([1.8, 1.8])
    key = {dict(k[1])["backend"]: k for k in spreads}
    slower = [gate.Speed(key["x"], 1.6, True, "slower"), gate.Speed(key["y"], 2.5, True, "slower")]
    assert gate.explained(slower, spreads) == slower[:1]
    assert gate.explained(slower, {}) == slower  # no spread known: the host could explain anything
    assert gate.spread({"A1": rounds["A1"], "B1": rounds["B1"]}) == {key["x"]: 1.0, key["y"]: 1.0}
    assert gate.unresolved(spreads, 1.5) == spreads and gate.unresolved(spreads, 2.0) == {}  # 1.8x: as far as 1.5x


def peaks(start: float, end: float) -> list[dict]:
    return [{"benchmark": name, "params": {"device": "cpu", "dtype": "float32"}, "result": rate}
            for name, rate in ((gate.PEAK_START, start), (gate.PEAK_END, end))]


def test_a_host_whose_matmul_rate_moved_beyond_the_tolerance_is_unsteady():
    moves = gate.host_moves("A1", peaks(150.0, 120.0)) + gate.host_moves("B1", peaks(150.0, 145.0))
    assert [m.round for m in gate.unsteady(moves, 0.10)] == ["A1"]
    assert gate.unsteady(moves, 0.25) == [] and gate.unsteady(moves, None) == []  # None: not judged
    assert gate.host_moves("A2", peaks(150.0, math.nan)) == []  # no end rate: nothing to judge


def test_rows_of_different_benchmark_versions_or_environments_are_not_comparable(tmp_path):
    base, head = side(tmp_path, "base", {"x": 1e-3}), side(tmp_path, "head", {"x": 1e-3})
    versions = json.loads((tmp_path / "base" / "benchmarks.json").read_text())
    same = {k: v["version"] for k, v in versions.items() if isinstance(v, dict)}
    assert gate.incomparable(base, head, (same, same)) == []
    other = {k: "v2" for k in same}
    assert "benchmark versions differ" in gate.incomparable(base, head, (same, other))[0]
    moved = [{**p, "env": "existing-py_elsewhere"} for p in head]
    assert "environments differ" in gate.incomparable(base, moved, (same, same))[0]
    assert gate.incomparable([], [], ({}, {})) == ["no time benchmark was measured on both sides"]


def row(test_id: str, passed: bool, err: float) -> dict:
    return {"test_id": test_id, "passed": passed, "max_err_eps": err}


def test_precision_a_pass_turned_fail_or_a_grown_error_regresses():
    base = [row("a", True, 3.0), row("b", True, 3.0), row("c", True, 3.0), row("d", False, 90.0), row("e", True, 0)]
    head = [row("a", False, 3.0), row("b", True, 30.0), row("c", True, 6.4), row("d", True, 2.0), row("e", True, 0.4),
            row("new", False, 99.0)]
    verdicts = {p.test_id: p for p in gate.compare_precision(base, head, factor=2.0)}
    assert verdicts["a"].verdict == "regressed" and "fails at HEAD" in verdicts["a"].why
    assert verdicts["b"].verdict == "regressed" and "30 eps > 2 x 3 + 0.5 eps" in verdicts["b"].why
    assert verdicts["c"].verdict == "same"  # 6.4 <= 2 x 3 + 0.5
    assert verdicts["d"].verdict == "improved"
    assert verdicts["e"].verdict == "same"  # within the half-eps floor of an exact result
    assert "new" not in verdicts  # a case BASE did not check has nothing to regress from
    assert gate.compare_precision(base, head, factor=20.0)[1].verdict == "same"  # b: 30 <= 20 x 3 + 0.5


def test_the_exit_status_orders_broken_regressed_inconclusive_passed():
    regressed = gate.Precision("a", (True, False), (1.0, 9.0), "regressed")
    same = gate.Precision("a", (True, True), (1.0, 1.0), "same")
    moved = [gate.HostMove("A1", "cpu", "float32", 100.0, 50.0)]
    slower = [gate.Speed(("b", ()), 2.0, True, "slower")]
    assert gate.status(["asv failed"], [regressed], moved, slower) == gate.BROKEN == 2
    assert gate.status([], [regressed], moved, []) == gate.REGRESSED == 1
    assert gate.status([], [same], moved, slower) == gate.INCONCLUSIVE == 3
    assert gate.status([], [same], [], slower) == gate.REGRESSED
    assert gate.status([], [same], [], slower, within=slower) == gate.REGRESSED  # one beyond the spread is enough
    assert gate.status([], [same], [], [], within=slower) == gate.INCONCLUSIVE
    assert gate.status([], [same], [], [], unsure={("b", ()): 1.8}) == gate.INCONCLUSIVE  # nothing slower, unsure
    assert gate.status([], [same], [], slower, unsure={("b", ()): 1.8}) == gate.REGRESSED
    assert gate.status([], [same], [], [], unconfirmed=slower) == gate.INCONCLUSIVE  # flagged, not slower again
    assert gate.status([], [same], [], slower, unconfirmed=slower) == gate.REGRESSED
    assert gate.status([], [same], [], []) == gate.PASSED == 0


def test_a_flagged_point_the_confirmation_round_does_not_find_slower_leaves_speed_inconclusive():
    """Slower at x2.4 over the four rounds, not again in the confirmation round (seen on a busy host): the two
    disagree, so the gate says inconclusive and why, never "nothing regressed"."""
    from seqbench.jobs import continuous, gate_report

    flagged = gate.Speed(("bench_recurrent.lstm.time_forward", (("backend", "x"),)), 2.4, True, "slower")
    other = gate.Speed(("bench_recurrent.rnn.time_forward", (("backend", "x"),)), 1.1, False, "same")
    comparison = continuous.Comparison(speed=[flagged, other])
    assert comparison.unconfirmed == [flagged] and comparison.status(None) == gate.INCONCLUSIVE
    assert ("1 point(s) flagged slower, up to x2.40, not slower again in the confirmation round: speed inconclusive"
            in gate_report.host_line(comparison, None))
    confirmed = continuous.Comparison(speed=[flagged, other], confirmed=[flagged])
    assert confirmed.unconfirmed == [] and confirmed.status(None) == gate.REGRESSED
