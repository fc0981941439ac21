"""The asv command line of a sweep (seqbench/jobs/asv.py)."""

from pathlib import Path

from seqbench.jobs import asv


def test_the_asv_command_keeps_every_sample_and_never_times_once():
    """Every grid's samples are recorded for the report's significance tests; asv's --quick (one sample per
    benchmark, nothing to test) is not used, not even on the quick grid."""
    line = asv.command(Path("/tmp/asv.conf.json"), ["^bench_recurrent"], "HEAD", "box")
    assert "--record-samples" in line
    assert "--quick" not in line and "-q" not in line
