"""How the asv suite samples: enough samples per grid for asv's significance test, and the matmul rate taken at the
start and again at the end of a sweep."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from seqbench.jobs import asv

ROOT = Path(__file__).resolve().parents[2]


def decidable(low: int) -> bool:
    """Whether asv's Mann–Whitney test (``asv._stats.is_different``, p < 0.002) can tell two points of ``low``
    samples each apart: its smallest p-value is 1 / C(2 low, low)."""
    return 1 / math.comb(2 * low, low) < 0.002


def test_five_samples_are_too_few_and_six_enough():
    assert not decidable(5) and decidable(6)


@pytest.mark.parametrize("grid", ["quick", "mid", "gpu", "full"])
def test_every_grid_takes_enough_samples_for_asvs_test(grid, monkeypatch):
    monkeypatch.setenv("SEQBENCH_GRID", grid)
    common = asv.suite_common(ROOT / "asv.conf.json", {"benchmark_dir": "benchmarks"})
    lstm = common.benchmark_classes("recurrent", "bench_recurrent")["lstm"]
    low, high, seconds = lstm.repeat
    assert (low, high, seconds) == common.TIMING[grid]["repeat"]
    assert decidable(low) and low <= high and seconds > 0 and lstm.rounds == 1


def test_the_end_peak_is_the_start_peak_named_to_sort_last():
    """asv runs a run's benchmarks sorted by name (``asv.runner.run_benchmarks``): the end module sorts after
    every other benchmark module of the suite."""
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import bench_peak, bench_zz_peak_end
    finally:
        sys.path.remove(str(ROOT))
    assert issubclass(bench_zz_peak_end.matmul, bench_peak.matmul)
    assert bench_zz_peak_end.matmul.params == bench_peak.matmul.params
    modules = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
    assert modules[-1] == "bench_zz_peak_end"
