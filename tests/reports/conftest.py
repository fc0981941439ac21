"""The synthetic results tree with known answers (tests/plugins/synthetic.py), written once per test module."""

import pytest

import synthetic


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    return synthetic.write(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def table(results_dir):
    pytest.importorskip("pandas")
    from seqbench.reports import load

    return load.load([results_dir]).benchmarks
