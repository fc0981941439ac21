"""Accuracy beside speed in the report, on the synthetic set (tests/plugins/synthetic.py): the verdicts, what a
dropped backend would have given, the speed-against-accuracy figures, how far to trust an estimate, the accuracy
rule; and the main job's summary.

On gpubox/cuda, cupy is ×2 faster than torch (B=32) and ×2.4 faster than jax (B=8) on LSTM but fails its
conformance at 5e+03 eps (2.5e+03× faithful); torch-compile (×1.25–×1.5 faster) was never checked.
"""

import argparse
import math

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

import pandas as pd  # noqa: E402

from seqbench import run  # noqa: E402
from seqbench.reports import beside, cli, conformance_rows, pareto, plots, select, tradeoffs  # noqa: E402


def report(results_dir, out, *argv) -> str:
    """``seqbench report`` on ``results_dir`` (with ``argv``); the Markdown it writes."""
    parser = argparse.ArgumentParser(prog="seqbench")
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", str(results_dir), "--out", str(out), *argv])
    assert args.func(args) == 0
    return (out / "report.md").read_text()


def section(md: str, title: str) -> str:
    start = md.index(f"## {title}\n")
    end = md.find("\n## ", start + 1)
    return md[start:end if end > 0 else None]


def rows(md: str, prefix: str) -> list[dict]:
    """The rows of the first Markdown table in ``md`` whose lines start with ``prefix``, by header."""
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in line.strip("|").split(" | ")]
            body = [ln for ln in lines[i + 2:] if ln.startswith("|")]
            found = [dict(zip(header, [c.strip() for c in ln.strip("|").split(" | ")])) for ln in body
                     if ln.startswith(prefix)]
            if found:
                return found
    return []


@pytest.fixture(scope="module")
def md(results_dir, tmp_path_factory):
    return report(results_dir, tmp_path_factory.mktemp("report"))


def test_the_dropped_section_says_what_a_dropped_backend_would_have_given(md):
    dropped = section(md, "Backends dropped, and why")
    cupy = rows(dropped, "| gpubox | cuda | float32 | lstm | cupy")
    assert len(cupy) == 1, dropped
    assert cupy[0]["workloads"] == "12" and cupy[0]["speed vs the winner"] == "×2–×2.4 faster"
    assert cupy[0]["worst error"] == "5e+03 eps = 2.5e+03× faithful"
    assert cupy[0]["why"].startswith("fails conformance: 2 of 6 checks")
    compile_ = rows(dropped, "| gpubox | cuda | float32 | gru | torch-compile")
    assert compile_[0]["speed vs the winner"] == "×1.25–×1.5 faster" and compile_[0]["worst error"] == "no error measured"
    assert not rows(dropped, "| gpubox | cuda | float32 | gru | cupy")  # cupy conforms for GRU


def test_every_workload_row_has_its_verdict_error_runner_up_and_dropped(md):
    table = section(md, "Every measured workload")
    lstm = rows(table, "| gpubox | cuda | lstm |")
    assert len(lstm) == 12
    for r in lstm:
        b8 = r["shape"].endswith("B=8")
        assert r["fastest"] == ("jax" if b8 else "torch") and r["verdict"] in ("untested (one sample)",
                                                                              "only qualifying family")
        assert r["error (eps)"] == "36" and r["x faithful"] == ("4" if b8 else "1")
        assert r["dropped"].startswith(f"cupy: ×{'2.4' if b8 else '2'} faster, 5e+03 eps; fails conformance; "
                                       f"torch-compile: ×{'1.5' if b8 else '1.25'} faster, no error measured; "
                                       "not checked"), r
    lone = [r for r in lstm if r["shape"] == "T=1024 H=256 B=32"]  # jax has no time here: torch stands alone
    assert lone[0]["verdict"] == "only qualifying family" and lone[0]["runner-up"] == "—"
    assert {r["runner-up"] for r in lstm if r["shape"] != "T=1024 H=256 B=32"} == {"jax", "torch"}


def test_the_recommendation_sentences_and_glance_say_verdicts_and_what_was_dropped(md):
    recs = section(md, "Recommendations")
    assert ("of 24 measured workloads the fastest qualifying kernel family is jax 12/24 (gru, lstm; 36 eps = 4× "
            "faithful), torch 12/24 (gru, lstm; 36 eps = 1× faithful). Verdicts: untested 23 (one sample each), "
            "only 1 (one family qualifies); speed-up over the runner-up ×1.20 – ×2.00. Dropped: cupy: ×2–×2.4 "
            "faster, 5e+03 eps = 2.5e+03× faithful; fails conformance at 12/24") in recs
    (glance,) = rows(recs, "| gpubox | cuda | lstm |")
    assert glance["wins (of measured shapes)"] == "jax 6/12 (36 eps = 4× faithful), torch 6/12 (36 eps = 1× faithful)"
    assert glance["verdicts"] == "untested 11 (one sample each), only 1 (one family qualifies)"
    assert glance["dropped"].startswith("cupy: ×2–×2.4 faster, 5e+03 eps = 2.5e+03× faithful; fails conformance;")


def test_speed_against_accuracy_and_trust_sections(md):
    pareto_section = section(md, "Speed against accuracy")
    assert "geometric mean" in pareto_section and "Pareto frontier" in pareto_section
    assert pareto_section.count("](plots/speed_vs_error_") == 2  # gpubox/cuda and cpubox/cpu, float32
    assert "speed_vs_error" not in section(md, "Plots")
    trust = section(md, "How far to trust an estimate")
    # cpubox: numpy's factor steps from 1 (T=64) to 3: at T=256 it is predicted sqrt(3), 42% off; torch exact
    (cpu,) = rows(trust, "| cpubox |")
    assert (cpu["points predicted"], cpu["median time error"], cpu["90th percentile"]) == ("16", "21.1%", "42.3%")
    assert cpu["predicted fastest = measured"] == "0 of 8 shapes"
    (gpu,) = rows(trust, "| gpubox |")  # power laws in T: exact
    assert (gpu["points predicted"], gpu["median time error"], gpu["predicted fastest = measured"]) == (
        "30", "0.0%", "8 of 8 shapes")
    assert gpu["where the win is significant"].startswith("—")  # one sample each: nothing is tested


def test_the_method_says_unmeasured_shapes_are_interpolated(md):
    method = section(md, "Method")
    assert "interpolated, log-log, between the measured neighbours" in method and "nearest measured" not in method
    assert "tie that names both" in method and "--max-error-eps N" in method


def test_a_looser_error_cap_lets_cupy_qualify_and_win_lstm(results_dir, tmp_path):
    md = report(results_dir, tmp_path, "--max-error-eps", "1e4")
    assert "rule: worst error at most 10000 eps" in md
    lstm = rows(section(md, "Every measured workload"), "| gpubox | cuda | lstm |")
    assert len(lstm) == 12 and {r["fastest"] for r in lstm} == {"cupy"}
    for r in lstm:
        b8 = r["shape"].endswith("B=8")
        assert (r["runner-up"], r["speed-up"]) == (("jax", "×2.40") if b8 else ("torch", "×2.00")), r
        assert r["error (eps)"] == "5e+03"
    dropped = section(md, "Backends dropped, and why")
    assert "| cupy" not in dropped and "| gpubox | cuda | float32 | lstm | torch-compile" in dropped
    assert "no finite error measured" in dropped


def test_pareto_points_and_frontier(table):
    points = pareto.points(table).set_index(["machine", "op", "backend"])
    cupy = points.loc[("gpubox", "lstm", "cupy")]
    assert cupy["speed"] == pytest.approx(math.sqrt(2.0 * 2.4))  # geometric mean of ×2 (B=32) and ×2.4 (B=8)
    assert cupy["max_err_eps"] == 5000 and not cupy["conforms"] and not cupy["qualifies"] and cupy["frontier"]
    jax = points.loc[("gpubox", "lstm", "jax")]  # wins at 6 B=8 shapes, ×1/1.2 at 5 B=32 (none at T=1024 H=256)
    assert jax["workloads"] == 11 and jax["speed"] == pytest.approx(1.2 ** (-5 / 11)) and jax["frontier"]
    assert not points.loc[("gpubox", "lstm", "torch"), "frontier"]  # as accurate as jax, slower
    assert not points.loc[("gpubox", "lstm", "torch-compile"), "frontier"]  # no error: never on the frontier
    looser = pareto.points(table, select.Rule(max_error_eps=1e4)).set_index(["machine", "op", "backend"])
    assert looser.loc[("gpubox", "lstm", "cupy"), "speed"] == pytest.approx(1.0)
    assert looser.loc[("gpubox", "lstm", "cupy"), "qualifies"]


def test_tf32_errors_are_put_in_eps_of_the_dtype():
    row = {"dtype": "float32", "math_mode": "tf32", "max_err_eps": 2.0}
    assert conformance_rows.in_dtype_eps(row) == pytest.approx(2.0 * 2 ** 13)  # tf32's eps 2^-10, float32's 2^-23
    assert conformance_rows.in_dtype_eps({**row, "math_mode": "ieee"}) == 2.0


def test_the_pareto_figures(table):
    figures = plots.speed_vs_error(table)
    assert [name for name, _, _ in figures] == ["speed_vs_error_cpubox_cpu_float32", "speed_vs_error_gpubox_cuda_float32"]
    gpu = figures[1][2]
    panels = [ax for ax in gpu.axes if ax.get_visible()]
    assert sorted(ax.get_title() for ax in panels) == ["gru", "lstm"]
    lstm = next(ax for ax in panels if ax.get_title() == "lstm")
    labels = {t.get_text() for t in lstm.texts}
    assert {"cupy", "jax", "torch", "no error measured: torch-compile"} <= labels
    for _, _, fig in figures:
        plots.plt.close(fig)


def test_the_pareto_figures_survive_one_backend_no_errors_and_no_timings(table):
    one = table[(table["machine"] == "gpubox") & (table["backend"] == "torch")]
    (figure,) = plots.speed_vs_error(one)
    assert pareto.points(one)["speed"].tolist() == pytest.approx([1.0, 1.0])
    unchecked = table.assign(max_err_eps=math.nan, ratio=math.nan, conformance_passed=None,
                             conformance_reason="no conformance results")
    figures = plots.speed_vs_error(unchecked)  # nothing qualifies: the fastest measured stands in
    assert len(figures) == 2
    texts = {t.get_text() for _, _, fig in figures for ax in fig.axes for t in ax.texts}
    assert "no error measured: cupy, jax, torch, torch-compile" in texts
    speeds = pareto.points(unchecked).set_index(["machine", "op", "backend"])["speed"]
    assert speeds[("gpubox", "lstm", "cupy")] == pytest.approx(1.0)  # the fastest measured everywhere
    assert speeds[("cpubox", "lstm", "numpy")] == pytest.approx((2 / 3) ** (8 / 12))  # fastest at 4 of 12 shapes
    assert speeds[("cpubox", "lstm", "torch")] == pytest.approx(0.5 ** (4 / 12))
    assert plots.speed_vs_error(table.iloc[0:0]) == []
    for _, _, fig in [figure, *figures]:
        plots.plt.close(fig)
    assert tradeoffs.speed_vs_accuracy([], select.Rule()) == [] and tradeoffs.trust(table.iloc[0:0]) == []


def test_verdicts_and_speeds_in_words():
    tie = {"verdict": "tie", "winner": "torch", "runner_up": "jax", "speedup": 1.021}
    assert beside.verdict(tie) == "tie: torch, jax (×1.02)"
    assert beside.verdict({**tie, "verdict": "untested"}) == "untested (one sample)"
    recs = pd.DataFrame([tie, tie, {**tie, "verdict": "wins"}])
    assert beside.verdicts(recs) == "tie 2 (jax/torch), wins 1"
    assert beside.speed_range([1.2, 1.4]) == "×1.2–×1.4 faster"
    assert beside.speed_range([0.5, 0.8]) == "×1.25–×2 slower"
    assert beside.speed_range([0.8, 1.3]) == "×1.25 slower – ×1.3 faster"
    assert beside.speed_range([math.nan]) == "no winner to compare"
    assert beside.path("cupy", "cupy-graph") == "cupy (path cupy-graph)" and beside.path("jax", "jax") == "jax"
    assert beside.short_fail("worst error 40 eps is over --max-error-eps 25") == "over the 25-eps cap"
    assert beside.error(2.6, 0.43, "tf32") == "2.6 eps of tf32 = 0.43× faithful"


def test_the_main_jobs_summary_shows_verdict_error_and_what_was_dropped(results_dir):
    lines = run.recommendations(results_dir)
    text = "\n".join(lines)
    header = lines[1].splitlines()[0].split()
    assert header == ["device", "op", "pass", "shape", "fastest", "verdict", "time", "worst", "error", "speed-up"]
    body = lines[1].splitlines()[1:]
    big = next(line for line in body if line.startswith("cuda") and " lstm " in line and "T=1024" in line)
    assert "torch" in big and "only qualifying family" in big and "36 eps = 1× faithful" in big
    small = next(line for line in body if line.startswith("cuda") and " lstm " in line and "T=64" in line)
    assert "jax" in small and "untested (one sample)" in small and "x1.25 over torch" in small
    assert ("Dropped: cupy (cuda): ×2–×2.4 faster, 5e+03 eps = 2.5e+03× faithful; fails conformance "
            "(lstm; 2 of the workloads above)") in text
