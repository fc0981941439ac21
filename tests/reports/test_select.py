"""select's verdicts on plug-in backends whose samples are known (tests/plugins/measured.py): a difference within
the noise is a tie, a 2x one is named, an implausible measurement is kept out, a fast but inaccurate plug-in is
dropped with both figures and qualifies under a loose --max-error-eps, the paths of one family are one entry."""

import argparse
import json

import pytest

pytest.importorskip("pandas")
pytest.importorskip("asv")

import measured  # noqa: E402
from seqbench.backends import registry  # noqa: E402
from seqbench.backends.numpy_backend import NumpyBackend  # noqa: E402
from seqbench.backends.protocol import Traits  # noqa: E402
from seqbench.reports import cli  # noqa: E402

SHAPES = [(T, 32, 8) for T in (16, 64)]
ACCURATE = (True, 2.0, 1.0)  # passed, worst error (eps), × faithful


def seqbench(argv, capsys):
    parser = argparse.ArgumentParser(prog="seqbench")
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    capsys.readouterr()
    try:
        code = args.func(args)
    except ValueError as error:  # what the seqbench CLI prints and exits 2 on
        code = f"error: {error}"
    return code, capsys.readouterr().out


def results(tmp_path, times: dict, checks: dict, kinds=("forward",), spread=0.02):
    """``times``: backend -> its median at T=16 (T=64 takes 4x); every point 10 samples ±``spread``."""
    runs = {(b, kind, T, H, B): measured.samples(t * T / 16 * (1.8 if kind == "forward_backward" else 1), spread)
            for b, t in times.items() for kind in kinds for T, H, B in SHAPES}
    return measured.write(tmp_path, runs, checks)


def answer(tmp_path, capsys, *more):
    code, out = seqbench(["select", "--op", "lstm", "--seq-len", "64", "--hidden", "32", "--batch", "8",
                          "--device", "cpu", "--results-dir", str(tmp_path), "--json", *more], capsys)
    return code, json.loads(out)[0]


def test_a_difference_within_the_noise_is_a_tie_that_names_both(tmp_path, capsys):
    results(tmp_path, {"plug-a": 1e-3, "plug-b": 1.01e-3}, {"plug-a": ACCURATE, "plug-b": ACCURATE}, spread=0.05)
    code, a = answer(tmp_path, capsys)
    assert code == 0 and a["verdict"] == "tie" and a["how"] == "measured"
    assert {a["winner"]["backend"], a["runner_up"]["backend"]} == {"plug-a", "plug-b"}
    code, text = seqbench(["select", "--op", "lstm", "--device", "cpu", "--results-dir", str(tmp_path)], capsys)
    assert "tie:       plug-a and plug-b (×1.01, within noise)" in text


def test_a_twofold_difference_is_named(tmp_path, capsys):
    results(tmp_path, {"plug-a": 1e-3, "plug-c": 2e-3}, {"plug-a": ACCURATE, "plug-c": ACCURATE})
    code, a = answer(tmp_path, capsys)
    assert (a["verdict"], a["winner"]["backend"], a["runner_up"]["backend"]) == ("wins", "plug-a", "plug-c")
    assert a["speedup"] == pytest.approx(2.0, rel=1e-3)
    assert a["winner"]["evidence"]["commit"] == measured.COMMIT and a["winner"]["noise"]["repeat"] == 10


def test_a_backward_faster_than_its_forward_is_kept_out_with_the_reason(tmp_path, capsys):
    runs = {}
    for T, H, B in SHAPES:
        for b, forward, backward in (("plug-a", 2e-3, 3.6e-3), ("plug-odd", 1e-3, 0.5e-3)):
            runs[(b, "forward", T, H, B)] = measured.samples(forward * T / 16)
            runs[(b, "forward_backward", T, H, B)] = measured.samples(backward * T / 16)
    measured.write(tmp_path, runs, {"plug-a": ACCURATE, "plug-odd": ACCURATE})
    code, a = answer(tmp_path, capsys)
    assert a["winner"]["backend"] == "plug-a" and a["runner_up"] is None  # plug-odd would be 2x faster
    assert "forward_backward" in a["flagged"]["plug-odd"] and "faster than" in a["flagged"]["plug-odd"]


def test_a_fast_inaccurate_plugin_is_dropped_with_both_figures_and_qualifies_under_a_loose_cap(tmp_path, capsys):
    results(tmp_path, {"plug-a": 1.3e-3, "plug-sloppy": 1e-3},
            {"plug-a": ACCURATE, "plug-sloppy": (False, 80.0, 40.0)})
    code, a = answer(tmp_path, capsys)
    assert a["winner"]["backend"] == "plug-a"
    (dropped,) = a["dropped"]
    assert dropped["backend"] == "plug-sloppy" and dropped["max_err_eps"] == 80.0 and dropped["ratio"] == 40.0
    code, text = seqbench(["select", "--op", "lstm", "--device", "cpu", "--results-dir", str(tmp_path)], capsys)
    assert "dropped plug-sloppy (plug-sloppy): ×1.30 faster, worst error 80 eps = 40× faithful;" in text
    code, a = answer(tmp_path, capsys, "--max-error-eps", "100")
    assert (a["winner"]["backend"], a["runner_up"]["backend"], a["dropped"]) == ("plug-sloppy", "plug-a", [])
    code, a = answer(tmp_path, capsys, "--max-error-eps", "50")
    assert a["winner"]["backend"] == "plug-a" and "over --max-error-eps 50" in a["dropped"][0]["fails"]


class PathOne(NumpyBackend):
    traits = Traits(family="plugfam")


class PathTwo(NumpyBackend):
    traits = Traits(family="plugfam")


def test_the_paths_of_one_family_are_one_entry_and_the_runner_up_is_another_family(tmp_path, capsys):
    registry.register("plug-path1", PathOne)
    registry.register("plug-path2", PathTwo)
    try:
        results(tmp_path, {"plug-path1": 1e-3, "plug-path2": 1.05e-3, "plug-a": 3e-3},
                {b: ACCURATE for b in ("plug-path1", "plug-path2", "plug-a")})
        code, a = answer(tmp_path, capsys)
    finally:
        registry.unregister("plug-path1")
        registry.unregister("plug-path2")
    assert (a["winner"]["backend"], a["winner"]["family"], a["runner_up"]["backend"]) == ("plug-path1", "plugfam",
                                                                                           "plug-a")
    assert a["winner"]["paths"] == {"plug-path2": pytest.approx(1.05, rel=1e-3)}


def test_outside_the_measured_range_no_winner_unless_asked(tmp_path, capsys):
    results(tmp_path, {"plug-a": 1e-3, "plug-c": 2e-3}, {"plug-a": ACCURATE, "plug-c": ACCURATE})
    code, out = seqbench(["select", "--op", "lstm", "--seq-len", "256", "--device", "cpu",
                          "--results-dir", str(tmp_path)], capsys)
    assert str(code).startswith("error: no backend that qualifies has a time") and "no winner named" in out
    code, a = answer(tmp_path, capsys, "--extrapolate")  # T=64 is measured: --extrapolate changes nothing there
    assert a["how"] == "measured"
    code, out = seqbench(["select", "--op", "lstm", "--seq-len", "256", "--device", "cpu", "--extrapolate",
                          "--results-dir", str(tmp_path), "--json"], capsys)
    (a,) = json.loads(out)
    assert a["how"] == "extrapolated" and a["winner"]["backend"] == "plug-a"
    assert a["winner"]["time_s"] == pytest.approx(1e-3 * 256 / 16, rel=1e-3)  # the linear trend in T, extended


def test_a_tf32_error_is_capped_in_eps_of_float32():
    from seqbench.reports.select import Rule

    row = {"dtype": "float32", "math_mode": "tf32", "max_err_eps": 2.6, "conformance_passed": True}
    assert "2.13e+04 eps of float32 is over --max-error-eps 25" in Rule(25).judge(row)  # 2.6 × 2^13
    assert Rule(25).judge({**row, "math_mode": "ieee"}) == "" and Rule().judge(row) == ""
