"""The device's matmul rate again, at the end of a sweep: ``bench_zz_peak_end.matmul.track_gflops(device, dtype)``.

asv runs the benchmarks of a run sorted by name, and ``seqbench bench`` runs
one asv run per op: ``bench_peak`` rides with the first op's run, this module
(named to sort after every other) with the last one's, so the two rates
bracket the sweep. The report flags every measurement of a (machine, device,
dtype) whose rate moved by more than 20% between them (a throttled, shared
or busy device; ``reports/plausibility.py``).
"""

from . import bench_peak


class matmul(bench_peak.matmul):
    """The same measurement as ``bench_peak.matmul``, taken last."""
