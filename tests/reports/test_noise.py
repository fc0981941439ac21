"""Noise-aware verdicts: asv's significance test on two rows of the tidy table, and the plausibility flags that keep
measurements contradicting each other (or a drifting device) out of the recommendations."""

from __future__ import annotations

import json
import math

import pytest

pd = pytest.importorskip("pandas")
statistics = pytest.importorskip("asv_runner.statistics")

from seqbench.reports import load, noise, plausibility, render  # noqa: E402

FAST = [1.00, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.00, 1.02, 0.98]  # ms, 10 samples about 1 ms
NOISY = [1.0, 1.5, 0.7, 1.3, 0.8, 1.2, 0.9, 1.1, 1.4, 0.6]  # ms, 10 samples spread over ±50%


def timed(samples_ms, **ids) -> dict:
    """A tidy row as asv times it: its samples (given in ms), their median and asv's statistics of them."""
    seconds = [s / 1e3 for s in samples_ms]
    median, stats = statistics.compute_stats(seconds, 1)
    return {"machine": "box", "benchmark": "bench_recurrent.lstm", "backend": "b", "device": "cpu",
            "dtype": "float32", "op": "lstm", "kind": "forward", "T": 16.0, "H": 32.0, "B": 8.0,
            "time_s": median, "samples": seconds, **{k: stats[k] for k in ("ci_99_a", "ci_99_b", "q_25", "q_75",
                                                                             "repeat")}, **ids}


def scaled(factor: float) -> list[float]:
    return [s * factor for s in FAST]


# --- significance -------------------------------------------------------------------------------

def test_overlapping_samples_are_not_significantly_different():
    assert noise.significant(timed(FAST), timed(scaled(1.01))) is False


def test_twice_the_time_with_ten_samples_each_is_significant():
    assert noise.significant(timed(FAST), timed(scaled(2.0))) is True


def test_single_samples_are_untestable():
    assert noise.significant(timed([1.0]), timed([2.0])) is None
    assert noise.significant(timed(FAST), timed([2.0])) is None  # one side untestable is enough


def test_without_samples_the_confidence_intervals_decide():
    """A results file written without --record-samples has asv's intervals only: disjoint ones differ."""
    apart, close = timed(scaled(2.0), samples=None), timed(scaled(1.01), samples=None)
    assert noise.significant(timed(FAST, samples=None), apart) is True
    assert noise.significant(timed(FAST, samples=None), close) is False


def test_spread_is_the_interquartile_range_over_the_median():
    row = timed(FAST)
    assert noise.spread(row) == pytest.approx((row["q_75"] - row["q_25"]) / row["time_s"])
    assert 0 < noise.spread(row) < 0.05
    assert math.isnan(noise.spread(timed([1.0])))  # one sample: its noise is unknown


# --- plausibility -------------------------------------------------------------------------------

def frame(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_a_forward_backward_faster_than_its_forward_beyond_noise_is_flagged():
    table = frame(timed(scaled(2.0)), timed(FAST, kind="forward_backward"))
    flagged = plausibility.flag(table)
    assert list(flagged.index) == [0, 1] and "forward_backward faster than its forward" in flagged["reason"][0]
    assert {"machine", "backend", "op", "kind", "T", "reason"} <= set(flagged.columns)
    usable, dropped = plausibility.usable(table)
    assert usable.empty and len(dropped) == 2


def test_a_forward_backward_within_the_noise_of_its_forward_is_not_flagged():
    table = frame(timed(scaled(1.01)), timed(FAST, kind="forward_backward"))
    assert plausibility.flag(table).empty
    noisy = frame(timed(NOISY), timed([s * 0.9 for s in NOISY], kind="forward_backward"))  # 10% faster, not significant
    assert noise.significant(*noisy.to_dict("records")) is False and plausibility.flag(noisy).empty
    other_shape = frame(timed(scaled(2.0)), timed(FAST, kind="forward_backward", T=64.0))
    assert plausibility.flag(other_shape).empty  # not the same point


def test_without_statistics_a_margin_decides():
    one = frame(timed([2.0]), timed([1.0], kind="forward_backward"))  # 50% faster, one sample each
    assert len(plausibility.flag(one)) == 2 and "no test possible" in plausibility.flag(one)["reason"][0]
    assert plausibility.flag(frame(timed([1.1]), timed([1.0], kind="forward_backward"))).empty  # 9%: may be noise


def test_time_falling_as_the_sequence_grows_beyond_noise_is_flagged():
    table = frame(timed(scaled(2.0), T=16.0), timed(FAST, T=64.0), timed(scaled(8.0), T=256.0))
    flagged = plausibility.flag(table)
    assert list(flagged.index) == [0, 1] and flagged["reason"][1].startswith("T=64 faster than T=16")


def test_time_falling_within_noise_or_with_the_same_work_is_not_flagged():
    assert plausibility.flag(frame(timed(scaled(1.01), T=16.0), timed(FAST, T=64.0))).empty
    assert plausibility.flag(frame(timed(NOISY, T=16.0), timed([s * 0.9 for s in NOISY], T=64.0))).empty
    assert plausibility.flag(frame(timed(scaled(2.0), T=16.0, B=8.0), timed(FAST, T=64.0, B=1.0))).empty
    lookup = {"op": "negative_sampling_lookup_loss", "T": math.nan, "H": math.nan, "d": 64.0, "B": 256.0}
    same_work = frame(timed(scaled(2.0), V=1000.0, **lookup), timed(FAST, V=10000.0, **lookup))
    assert plausibility.flag(same_work).empty  # a larger vocabulary, the same FLOPs by the catalog's model
    more_work = frame(timed(scaled(2.0), **{**lookup, "d": 64.0}), timed(FAST, **{**lookup, "d": 256.0}))
    assert len(plausibility.flag(more_work)) == 2


@pytest.mark.parametrize("end, flagged", [(75.0, True), (125.0, True), (90.0, False), (100.0, False)])
def test_a_matmul_rate_drifting_over_20_percent_flags_every_row_of_the_sweep(end, flagged):
    table = frame(*(timed(scaled(s), T=t, peak_start_gflops=100.0, peak_end_gflops=end)
                    for s, t in ((1.0, 16.0), (4.0, 64.0))))
    found = plausibility.flag(table)
    assert len(found) == (2 if flagged else 0)
    if flagged:
        assert "from 100 to" in found["reason"][0] and f"{end:.4g}" in found["reason"][0]


# --- the tidy table and the report --------------------------------------------------------------

COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b", "stats_q_25",
           "stats_q_75", "stats_number", "stats_repeat", "samples"]


def _benchmark(rows, started_at):
    """One asv benchmark row (API version 2) of a point per row; each row (result, stats, samples)."""
    stats = [r[1] for r in rows]
    return [[r[0] for r in rows], None, "v1", started_at, 1.0,
            *[[s[k] for s in stats] for k in ("ci_99_a", "ci_99_b", "q_25", "q_75", "number", "repeat")],
            [r[2] for r in rows]]


def write_results(root, end_rate: float):
    """A results folder: lstm forward and forward_backward on numpy/cpu at T=16, 64 with asv's samples and
    statistics, and the matmul rate at the start (400 GFLOP/s) and the end (``end_rate``) of the sweep."""
    (root / "box").mkdir(parents=True)
    (root / "box" / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    points = [["'numpy'"], ["'cpu'"], ["'float32'"], ["16", "64"], ["32"], ["8"]]
    names = ["backend", "device", "dtype", "seq_len", "hidden", "batch"]
    results, listed = {}, {}
    for method, factor, started in (("time_forward", 1.0, 2000), ("time_forward_backward", 3.0, 3000)):
        rows = []
        for T in (16, 64):
            samples = [s * factor * T / 16 / 1e3 for s in FAST]
            median, stats = statistics.compute_stats(samples, 1)
            rows.append((median, stats, samples))
        name = f"bench_recurrent.lstm.{method}"
        results[name] = _benchmark(rows, started)
        results[name][1] = points
        listed[name] = {"param_names": names, "type": "time"}
    for module, rate, started in (("bench_peak", 400.0, 1000), ("bench_zz_peak_end", end_rate, 4000)):
        name = f"{module}.matmul.track_gflops"
        results[name] = [[rate, math.nan], [["'cpu'"], ["'float32'", "'float64'"]], "v1", started, 1.0]
        listed[name] = {"param_names": ["device", "dtype"], "type": "track"}
    (root / "benchmarks.json").write_text(json.dumps({**listed, "version": 2}))
    (root / "box" / "abc-env.json").write_text(json.dumps({
        "commit_hash": "abc", "env_name": "env", "date": 1, "params": {"machine": "box"}, "python": "3",
        "requirements": {}, "result_columns": COLUMNS, "results": results, "version": 2}))
    return root


def test_the_tidy_table_carries_samples_statistics_and_both_matmul_rates(tmp_path):
    table = load.load(write_results(tmp_path, end_rate=390.0)).benchmarks
    assert {"samples", "ci_99_a", "ci_99_b", "q_25", "q_75", "repeat", "started_at", "peak_start_gflops",
            "peak_end_gflops"} <= set(load.COLUMNS)
    row = table[(table["kind"] == "forward_backward") & (table["T"] == 64)].iloc[0]
    assert row["samples"] == pytest.approx([s * 3 * 4 / 1e3 for s in FAST]) and row["repeat"] == 10
    assert row["ci_99_a"] < row["time_s"] < row["ci_99_b"] and row["q_25"] < row["q_75"]
    assert row["started_at"] == 3000 and table.loc[table["kind"] == "forward", "started_at"].tolist() == [2000] * 2
    assert (row["peak_start_gflops"], row["peak_end_gflops"]) == (400.0, 390.0)
    assert row["peak_gflops"] == 400.0 and row["peak_source"].startswith("measured")
    assert plausibility.flag(table).empty  # every row plausible, the rate steady


def test_the_roofline_takes_the_better_rate_and_the_report_lists_flagged_rows(tmp_path):
    results = tmp_path / "results"
    table = load.load(write_results(results, end_rate=600.0)).benchmarks
    assert (table["peak_gflops"] == 600.0).all()  # the device's ceiling: its best rate of the sweep
    assert len(plausibility.flag(table)) == len(table) == 4
    render.write_report([results], tmp_path / "report")
    md, page = ((tmp_path / "report" / name).read_text() for name in ("report.md", "report.html"))
    assert "## Flagged measurements" in md and "<h2>Flagged measurements</h2>" in page
    assert md.count("matmul rate moved from 400 to 600 GFLOP/s (+50%)") == 4 and "(+50%)" in page
