"""Reports on a synthetic results set with known answers (seqbench.reports.synthetic).

gpubox/cuda: cupy is fastest but fails LSTM conformance; torch-compile was never
checked; torch wins at B=32 (x1.2 over jax), jax at B=8 (x1.25 over torch); jax
has no time at T=1024, H=256, B=32. cpubox/cpu: numpy wins at T=64 (x2), torch
elsewhere (x1.5).
"""

import argparse
import json
import math
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

import pandas as pd  # noqa: E402

import synthetic  # noqa: E402
from seqbench.catalog.axes import shape_key  # noqa: E402
from seqbench.reports import benchmark_rows, cli, load, peaks, render, select  # noqa: E402
from seqbench.reports.conformance_rows import accuracy_outliers, devkey  # noqa: E402
from seqbench.results import asv_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def seqbench(argv, capsys):
    parser = argparse.ArgumentParser(prog="seqbench")
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    capsys.readouterr()
    code = args.func(args)
    return code, capsys.readouterr().out


def expected(machine, op, T, H, B):
    """(winner, runner-up, speed-up) by the synthetic set's rules."""
    if machine == "cpubox":
        return ("numpy", "torch", 2.0) if T == 64 else ("torch", "numpy", 1.5)
    if B == 8:
        return "jax", "torch", 1.25
    if (T, H) == (1024, 256):  # jax skipped here; cupy conforms for gru only
        return ("torch", "cupy", 2.0) if op == "gru" else ("torch", None, math.nan)
    return "torch", "jax", 1.2


def test_the_synthetic_files_are_what_asv_reads(results_dir):
    asv_results = pytest.importorskip("asv.results")
    path = next((results_dir / "gpubox").glob("*-existing-py.json"))
    loaded = asv_results.Results.load(str(path))
    params = loaded.get_result_params("bench_recurrent.LSTM.time_forward")
    values = loaded.get_result_value("bench_recurrent.LSTM.time_forward", params)
    assert len(values) == math.prod(len(p) for p in params) and any(v == v for v in values)


def test_one_tidy_schema_for_every_machine(table):
    assert list(table.columns[: len(load.COLUMNS)]) == load.COLUMNS
    # backends that never ran on a machine (the grid is the same everywhere) are not workloads
    assert sorted(table.loc[table["machine"] == "cpubox", "backend"].unique()) == ["numpy", "torch"]
    assert len(table) == (4 + 2) * 2 * 12
    row = table[(table["machine"] == "gpubox") & (table["backend"] == "torch") & (table["op"] == "lstm")
                & (table["T"] == 256) & (table["H"] == 128) & (table["B"] == 32)].iloc[0]
    assert row["device_name"] == "NVIDIA H100 80GB HBM3" and row["implementation"] == load.implementation("torch")
    assert row["variant"] == "notes" and row["math_mode"] == "ieee" and row["kind"] == "forward"
    assert row["time_s"] == pytest.approx(synthetic.time_s("gpubox", "torch", "lstm", 256, 128, 32))
    assert row["throughput"] == pytest.approx(256 * 32 / row["time_s"])
    from seqbench import catalog

    shape = {"T": 256, "B": 32, "I": 128, "H": 128}
    flops, nbytes = catalog.get("lstm").flops(shape), catalog.get("lstm").bytes(shape, 4)
    assert row["gflops"] == pytest.approx(flops / row["time_s"] / 1e9)
    assert row["roofline_fraction"] == pytest.approx(row["gflops"] / min(67e3, flops / nbytes * 3350))
    assert row["peak_memory"] == 4 * 256 * 128 * 32 * 8 and row["peak_memory_source"] == "host"
    assert row["conformance_passed"] is True and row["max_err_eps"] == pytest.approx(36.0)
    by_backend = table[table["machine"] == "gpubox"].groupby(["backend", "op"])["conformance_passed"].first()
    assert by_backend[("cupy", "lstm")] is False and by_backend[("cupy", "gru")] is True
    assert by_backend[("torch-compile", "lstm")] is None  # never checked


def test_cpu_peak_is_an_estimate_and_unknown_gpus_get_none():
    gflops, gbs, source = peaks.peak("cpu", "AMD EPYC", "float32", "ieee", num_cpu=4, arch="x86_64")
    assert gflops == 4 * 2.5 * 32 and math.isnan(gbs) and source.startswith("estimate")
    assert math.isnan(peaks.peak("cuda", "Some Future GPU", "float32", "ieee")[0])
    assert peaks.peak("cuda", "NVIDIA H100 80GB HBM3", "float32", "tf32")[0] == 494.5e3
    assert peaks.peak("cuda", "NVIDIA H200", "float64", "ieee")[1] == 4800


def test_benchmark_parameters_are_mapped_by_name(tmp_path):
    """Order of params follows param_names in benchmarks.json; the op comes from the class name."""
    names = ["dtype", "batch", "backend", "hidden", "device", "seq_len"]
    params = [["'float32'"], ["4"], ["'numpy'"], ["16"], ["'cpu'"], ["8", "32"]]
    (tmp_path / "box").mkdir()
    (tmp_path / "box" / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    name = "bench_recurrent.GRUResetAfter.time_forward"
    (tmp_path / "benchmarks.json").write_text(json.dumps({name: {"param_names": names, "type": "time"}, "version": 2}))
    (tmp_path / "box" / "abc-env.json").write_text(json.dumps({
        "commit_hash": "abc", "env_name": "env", "date": 1, "params": {"machine": "box"}, "python": "3",
        "requirements": {}, "result_columns": ["result", "params"], "results": {name: [[0.5, 2.0], params]},
        "version": 2}))
    table = load.load(tmp_path).benchmarks
    assert table[["op", "variant", "backend", "T", "H", "B", "time_s"]].to_dict("records") == [
        {"op": "gru_reset_after", "variant": "reset_after", "backend": "numpy", "T": T, "H": 16, "B": 4, "time_s": t}
        for T, t in ((8, 0.5), (32, 2.0))
    ]
    assert table["conformance_reason"].iloc[0].startswith("no conformance results")


def test_the_fastest_conforming_backend_wins_every_workload(table):
    recs = select.recommendations(table)
    assert len(recs) == 2 * 2 * 12
    for _, r in recs.iterrows():
        winner, runner_up, speedup = expected(r["machine"], r["op"], r["T"], r["H"], r["B"])
        where = f"{r['machine']} {r['op']} T{r['T']} H{r['H']} B{r['B']}"
        assert (r["winner"], r["runner_up"] if isinstance(r["runner_up"], str) else None) == (winner, runner_up), where
        assert r["speedup"] == pytest.approx(speedup, nan_ok=True), where
        if r["machine"] == "gpubox":
            assert "torch-compile" in r["dropped"] and "no conformance results" in r["dropped"]["torch-compile"]
            if r["op"] == "lstm":  # the fast non-conforming backend is dropped, with its worst check
                why = r["dropped"]["cupy"]  # with what it would have given: its speed and its error
                assert why.startswith("×2.40 faster") if r["B"] == 8 else why.startswith("×2.00 faster"), why
                assert "5e+03 eps" in why and "fails conformance" in why


def test_select_answers_with_the_runner_up(table):
    (answer,) = select.select(table, "lstm", "cuda", "float32", T=256, H=256, B=32)
    assert (answer.machine, answer.winner.backend, answer.runner_up.backend) == ("gpubox", "torch", "jax")
    assert answer.speedup == pytest.approx(1.2) and answer.note == "" and answer.how == "measured"
    assert [c.backend for c in answer.dropped] == ["cupy", "torch-compile"]  # fastest first
    assert answer.verdict == "untested"  # the synthetic set keeps one sample per point
    (cpu,) = select.select(table, "gru", "cpu", T=64, H=128, B=8)
    assert (cpu.machine, cpu.winner.backend, cpu.runner_up.backend) == ("cpubox", "numpy", "torch")


def test_select_interpolates_between_measured_neighbours_and_says_so(table):
    (answer,) = select.select(table, "lstm", "cuda", T=128, H=200, B=16)
    assert answer.shape == {"T": 128, "H": 200, "B": 16} and answer.how == "interpolated"
    assert "not measured at T=128, H=200, B=16" in answer.note and "interpolated (log-log)" in answer.note
    # the synthetic times are T·H²·B times a factor: log-log interpolation is exact for jax (1.2 everywhere);
    # torch's factor, 1.5 at B=8 and 1 at B=32, is interpolated in log B
    assert answer.winner.backend == "jax" and answer.runner_up.backend == "torch"
    assert answer.winner.time_s == pytest.approx(1.2e-9 * 128 * 200 ** 2 * 16 / 8)
    factor = 1.5 ** (1 - math.log(16 / 8) / math.log(32 / 8))
    assert answer.runner_up.time_s == pytest.approx(factor * 1e-9 * 128 * 200 ** 2 * 16 / 8)
    assert answer.winner.how == "interpolated" and answer.verdict == "estimated"


def test_select_names_no_winner_outside_the_measured_range_unless_asked(table):
    (answer,) = select.select(table, "lstm", "cuda", T=4096, H=256, B=32)
    assert answer.winner is None and answer.how == ""
    assert "T=4096 is 4x the largest measured T=1024" in answer.note and "--extrapolate" in answer.note
    (answer,) = select.select(table, "lstm", "cuda", extrapolate=True, T=4096, H=256, B=32)
    assert answer.how == "extrapolated" and answer.winner.how == "extrapolated"
    assert answer.winner.time_s == pytest.approx(1e-9 * 4096 * 256 ** 2 * 32 / 8)  # torch's power law, extended


def test_select_command_text(results_dir, capsys):
    code, out = seqbench(["select", "--op", "lstm", "--seq-len", "512", "--hidden", "256", "--batch", "32",
                          "--device", "cuda", "--results-dir", str(results_dir)], capsys)
    assert code == 0
    # T=512 lies between the measured 256 and 1024; jax has no time at T=1024, so none can be interpolated
    assert "note: not measured at T=512, H=256, B=32: times interpolated (log-log) between the measured T" in out
    assert f"fastest:   torch ({load.implementation('torch')}): " in out and " ms INTERPOLATED" in out
    assert "dropped cupy (" in out and "fails conformance" in out
    assert "no time for jax: not measured here and its measured neighbours do not surround this shape" in out
    assert "dropped torch-compile (" in out and "no conformance results" in out
    assert "evidence: " + str(results_dir) in out


def test_select_command_json(results_dir, capsys):
    code, out = seqbench(["select", "--op", "lstm", "--seq-len", "256", "--hidden", "128", "--batch", "8", "--device",
                          "cuda", "--dtype", "float32", "--json", "--results-dir", str(results_dir)], capsys)
    assert code == 0
    (answer,) = json.loads(out)
    assert answer["winner"]["backend"] == "jax" and answer["runner_up"]["backend"] == "torch"
    assert answer["speedup"] == pytest.approx(1.25) and answer["shape"] == {"T": 256, "H": 128, "B": 8}
    assert answer["winner"]["how"] == "measured" and answer["device_name"] == "NVIDIA H100 80GB HBM3"
    assert answer["winner"]["evidence"]["commit"].startswith("0123456789")
    assert answer["dropped"][0]["backend"] == "cupy" and answer["dropped"][0]["fails"].startswith("fails conformance")


@pytest.mark.parametrize("argv, message", [
    (["--op", "lstmm"], "op must be one of"),
    (["--op", "rnn"], "no benchmark results for op 'rnn'"),
    (["--op", "lstm", "--device", "tpu"], "no lstm results with device 'tpu'"),
    (["--op", "lstm", "--device", "cuda", "--dtype", "float16"], "no lstm results with dtype 'float16'"),
])
def test_select_errors_are_clear(results_dir, capsys, argv, message):
    with pytest.raises(ValueError, match=message):
        seqbench(["select", *argv, "--results-dir", str(results_dir)], capsys)


def test_select_without_results_or_conforming_backend(tmp_path, capsys):
    with pytest.raises(ValueError, match="results directory not found"):
        seqbench(["select", "--op", "lstm", "--results-dir", str(tmp_path / "nope")], capsys)
    with pytest.raises(ValueError, match="no benchmark results in"):
        seqbench(["select", "--op", "lstm", "--results-dir", str(tmp_path)], capsys)
    synthetic.write(tmp_path)
    (tmp_path / "conformance" / "cpubox.jsonl").write_text("")  # nothing on cpubox was checked
    with pytest.raises(ValueError, match="no backend that qualifies has a time for lstm on cpu: torch: no conformance "
                                         "results for"):
        seqbench(["select", "--op", "lstm", "--results-dir", str(tmp_path)], capsys)
    code, out = seqbench(["select", "--op", "lstm", "--json", "--results-dir", str(tmp_path)], capsys)
    assert code == 1 and json.loads(out)[0]["winner"] is None


def test_report_files_and_content(results_dir, tmp_path, capsys):
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "index.html").write_text("<html></html>")
    code, out = seqbench(["report", str(results_dir), "--out", str(tmp_path / "report"),
                          "--dashboard", str(tmp_path / "html" / "index.html")], capsys)
    assert code == 0 and "report.html" in out
    report = tmp_path / "report"
    pngs = sorted(p.name for p in (report / "plots").glob("*.png"))
    for kind in ("time_vs_T", "time_vs_H", "wins", "error_vs_T", "gradient_norms"):
        assert any(p.startswith(kind) for p in pngs), kind
    md = (report / "report.md").read_text()
    page = (report / "report.html").read_text()
    assert "[asv dashboard (history of every benchmark)](../html/index.html)" in md
    assert 'href="../html/index.html"' in page
    assert page.count("data:image/png;base64,") == len(pngs) and "plots/" not in page
    assert md.count("](plots/") == len(pngs)
    # the fast non-conforming backend is never recommended, and the report says why it was dropped
    rows = [line.split(" | ") for line in md.splitlines() if line.startswith("| gpubox | cuda | lstm | notes")]
    assert len(rows) == 12 and all(r[7] in ("torch", "jax") for r in rows)
    dropped = md[md.index("## Backends dropped"):md.index("## Speed against accuracy")]
    assert f"| gpubox | cuda | float32 | lstm | cupy ({load.implementation('cupy')}) | 12 | ×2–×2.4 faster | " \
           "5e+03 eps = 2.5e+03× faithful | fails conformance: 2 of 6 checks" in dropped
    assert f"| gpubox | cuda | float32 | lstm | torch-compile ({load.implementation('torch-compile')}) | 12 | " \
           "×1.25–×1.5 faster | no error measured | no conformance results" in dropped
    assert "| gpubox | cuda | float32 | gru | cupy" not in dropped  # cupy conforms for gru
    assert "(report.csv)" not in md and (report / "benchmarks.csv").stat().st_size > 0
    # accuracy beside speed: the ratio to a faithful implementation, and the conforming backend far worse than the best
    outliers = md[md.index("## Accuracy outliers"):md.index("## Conformance")]
    assert "| gpubox | cuda | float32 | ieee | lstm | jax | 4 | torch (x1) |" in outliers
    assert "| gpubox | cuda | float32 | ieee | gru | jax | 4 | cupy (x1) |" in outliers and "| cpubox |" not in outliers
    assert "| gpubox | lstm | FAIL 5e+03 x2.5e+03 | ok 36 x4 | — | — | ok 36 x1 |" in md


def test_a_dashboard_published_beside_the_report_is_linked_and_never_read_as_results(results_dir, tmp_path, capsys):
    """``seqbench publish --html-dir results/dashboard`` beside ``results/report``: the report links the page, and
    no loader of the results folder reads the page's folder, even where it holds what looks like results."""
    results = tmp_path / "results"
    shutil.copytree(results_dir, results)
    page = results / asv_files.DASHBOARD
    (page / "graphs").mkdir(parents=True)
    (page / "index.html").write_text("<html></html>")
    (page / "index.json").write_text("{}")
    shutil.copytree(results_dir / "cpubox", page / "graphs" / "cpubox")  # a machine folder ...
    shutil.copy(results_dir / "benchmarks.json", page / "graphs" / "benchmarks.json")
    shutil.copytree(results_dir / "conformance", page / "conformance")  # ... and conformance rows
    for pattern in ("machine.json", "*.jsonl", "*.json"):
        found = asv_files.scan(results, pattern)
        assert found and not [p for p in found if page in p.parents], pattern
    before, after = load.load([results_dir]), load.load([results])
    assert len(after.benchmarks) == len(before.benchmarks) and len(after.conformance) == len(before.conformance)
    assert after.skipped == before.skipped
    assert len(asv_files.read([results])[1]) == len(asv_files.read([results_dir])[1])

    code, _ = seqbench(["report", str(results), "--out", str(results / "report")], capsys)
    assert code == 0
    md, html = ((results / "report" / name).read_text() for name in ("report.md", "report.html"))
    assert "[asv dashboard (history of every benchmark)](../dashboard/index.html)" in md
    assert 'href="../dashboard/index.html"' in html
    (tmp_path / "html").mkdir()  # a dashboard near the results gives way to the one beside the report
    (tmp_path / "html" / "index.html").write_text("<html></html>")
    assert load.load([results]).dashboards == [tmp_path / "html" / "index.html"]
    assert render.beside_report(results / "report") == page / "index.html"
    (page / "index.json").unlink()  # not a published page: none beside the report
    assert render.beside_report(results / "report") is None


def test_the_sample_report_links_the_committed_dashboard():
    """The committed report (``results/report``) links the dashboard published beside it (``results/dashboard``,
    made offline by ``seqbench publish``), in its Markdown and its HTML, and the page is there."""
    report = ROOT / "results" / "report"
    md, html = ((report / name).read_text() for name in ("report.md", "report.html"))
    links = re.findall(r"\[asv dashboard[^]]*\]\(([^)]+)\)", md)
    assert links == ["../dashboard/index.html"], links
    assert re.findall(r'<a href="([^"]+)">asv dashboard', html) == links
    page = (report / links[0]).resolve()
    assert page == ROOT / "results" / asv_files.DASHBOARD / "index.html" and asv_files.is_dashboard(page.parent)
    text = page.read_text()
    assert 'src="vendor/' in text and not re.search(r'(?:src|href)="https?://[^"]+\.(?:js|css)"', text)
    assert all((page.parent / src).is_file() for src in re.findall(r'src="(vendor/[^"]+)"', text))


def test_accuracy_outliers_compare_within_dtype_and_math_mode(table):
    checks = pd.DataFrame([
        {"machine": "m", "devkey": "cuda", "dtype": "float32", "math_mode": mode, "op": "lstm", "backend": b,
         "conformance_passed": True, "ratio": r}
        for b, mode, r in (("a", "ieee", 1.1), ("b", "ieee", 3.0), ("c", "ieee", 3.6), ("d", "tf32", 3.6))])
    flagged = accuracy_outliers(checks)
    assert list(flagged["backend"]) == ["c"] and flagged["best"].iloc[0] == "a"  # d is alone in its math mode
    checks.loc[checks["backend"] == "c", "conformance_passed"] = False
    assert accuracy_outliers(checks).empty  # a failing backend is dropped, not flagged


def test_report_from_conformance_only(results_dir, tmp_path):
    page = render.write_report([results_dir / "conformance"], tmp_path / "out")
    md = page.with_suffix(".md").read_text()
    assert "No benchmark results found" in md and "fails conformance" in md
    plots = sorted(p.name for p in (tmp_path / "out" / "plots").glob("*.png"))
    assert plots == ["error_vs_T.png", "gradient_norms.png"]


def test_report_without_results_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no results found in"):
        render.write_report([tmp_path], tmp_path / "out")


def test_roofline_text_says_what_the_peak_is_and_why_above_100():
    assert peaks.describe(0.42, "measured: float32 matmul on this device, 95 GFLOP/s") == "42%"
    assert peaks.describe(0.42, "estimate: 2 cores x 2.5 GHz x 32 FLOP/cycle") == "42% (est.)"
    assert peaks.describe(1.1, "estimate: 2 cores") == "110% (above the estimated peak)"
    assert peaks.describe(float("nan"), "") == "—"


def test_a_measured_matmul_rate_replaces_the_estimate():
    flops, _, source = peaks.peak("cpu", "AMD EPYC", "float32", "ieee", 2, "x86_64", measured=95.0)
    assert flops == 95.0 and source.startswith("measured")
    flops, _, source = peaks.peak("cpu", "AMD EPYC", "float32", "ieee", 2, "x86_64")
    assert flops == 160.0 and source.startswith("estimate")


def test_the_roofline_uses_the_matmul_rate_a_sweep_measured(table):
    cpu = table[table["machine"] == "cpubox"]
    assert set(cpu["peak_gflops"]) == {400.0} and cpu["peak_source"].str.startswith("measured").all()
    assert "matmul" not in set(table["op"])  # the peak is no workload
    gpu = table[table["machine"] == "gpubox"]
    assert gpu["peak_source"].str.contains("datasheet").all()


def test_the_shape_of_a_benchmark_row_is_the_shape_the_suite_benchmarked():
    """The report rebuilds each row's catalog shape (for FLOPs and bytes) as benchmarks/common.py builds it,
    sizes off the axes included (CBOW's context width M)."""
    from itertools import product

    from seqbench import catalog
    from seqbench.jobs import asv

    config = asv.find_config(str(Path(__file__).resolve().parents[2] / "asv.conf.json"))
    common = asv.suite_common(config, asv.load_config(config))
    for op in catalog.ops().values():
        if common.area(op) is None:
            continue
        params, names = common.params_of(op, "quick")
        keys = [key for key, _ in common.shape_axes(op)]
        for combo in product(*params[3:]):
            row = {shape_key(n): v for n, v in zip(names[3:], combo)}
            assert benchmark_rows.shape_of(op, row) == common.bench_shape(op, dict(zip(keys, combo))), op.name


def test_a_tf32_benchmark_is_judged_by_its_tf32_checks_not_by_ieee_float32s():
    """On the committed H200 results cuDNN fails IEEE float32 conformance and passes TF32's: its
    cuda:tf32 rows stay in, its cuda rows are dropped; a second GPU (cuda:1) still joins cuda's checks."""
    table = load.load(ROOT / "results").benchmarks
    native = table[(table["machine"] == "nvidia-h200") & (table["backend"] == "torch-native")]
    by_device = native.groupby("device")["conformance_passed"].agg(set).to_dict()
    assert by_device == {"cuda": {False}, "cuda:tf32": {True}}, by_device
    assert [devkey(d) for d in ("cpu", "cuda", "cuda:1", "cuda:tf32")] == ["cpu", "cuda", "cuda", "cuda:tf32"]
