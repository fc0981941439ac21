"""The committed tolerance figures (``results/tolerance/``, the README's table) agree with this host's within
the model's own spread, and a wrong table does not."""

import copy
import json
from pathlib import Path

import pytest

from seqbench import catalog
from seqbench.precision import allowance, calibration, tolerance

COMMITTED = sorted((Path(__file__).resolve().parents[2] / "results" / "tolerance").glob("*.json"))


@pytest.fixture(scope="module")
def here():
    return allowance.compute()


def test_there_are_committed_figures():
    assert COMMITTED, "results/tolerance/ holds the README's tolerance table"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda path: path.stem)
def test_this_hosts_figures_agree_with_the_committed_ones(path, here):
    committed = json.loads(path.read_text())
    assert (committed["op"], committed["shape"]) == (allowance.OP, allowance.SHAPE)
    found = allowance.disagreements(committed, here)
    assert not found, (f"{path.name} (computed on {committed['cpu']}) is not what the model allows here "
                       f"({here['cpu']}); if the model changed, regenerate it on {committed['machine']} with "
                       "python -m seqbench.precision.allowance:\n" + "\n".join(found))


def test_the_agreement_covers_the_models_own_spread():
    """Over input seeds, the worst leaf's faithful float32 error moves by less than :data:`allowance.AGREEMENT`:
    another host's summation order, another draw of the same rounding noise, stays inside it."""
    op = catalog.get(allowance.OP)
    for kind in calibration.KINDS:
        for metric in tolerance.METRICS:
            worst = [max(leaf[metric] for leaf in calibration.control_errors(op, allowance.SHAPE, "float32", kind,
                                                                             seed).values()) for seed in range(8)]
            assert max(worst) / min(worst) < allowance.AGREEMENT, (kind, metric, worst)


def _changed(table, change):
    """A copy of ``table`` with ``change`` applied to its rows, given as {precision: row}."""
    wrong = copy.deepcopy(table)
    change({row["precision"]: row for row in wrong["rows"]})
    return wrong


def _scaled(row, name, factor):
    row[name] *= factor


@pytest.mark.parametrize(("change", "expected"), [
    (lambda rows: _scaled(rows["float32"], "forward l2 faithful", 3), ["float32 forward l2 faithful"]),
    (lambda rows: _scaled(rows["float16"], "vjp cap", 1 / 2.5), ["float16 vjp cap"]),
    (lambda rows: rows["float32"].update({**rows["tf32"], "precision": "float32"}),
     [f"float32 {name}" for name in ("forward max faithful", "forward max budget", "forward l2 faithful",
                                     "forward l2 budget", "forward cap", "vjp max faithful", "vjp max budget",
                                     "vjp l2 faithful", "vjp l2 budget", "vjp cap")]),
], ids=["a figure 3x off", "a cap 2.5x off", "tf32's figures as float32's"])
def test_a_wrong_table_disagrees(here, change, expected):
    found = allowance.disagreements(_changed(here, change), here)
    assert [line.split(":")[0] for line in found] == expected, found


def test_a_precision_not_computed_here_disagrees(here):
    without_bfloat16 = {**here, "rows": [row for row in here["rows"] if row["precision"] != "bfloat16"]}
    assert allowance.disagreements(here, without_bfloat16) == ["bfloat16: not computed here"]


def test_figures_inside_the_agreement_agree(here):
    def scale_all(rows):
        for row in rows.values():
            for name in row.keys() - {"precision"}:
                _scaled(row, name, 1.9)

    assert allowance.disagreements(_changed(here, scale_all), here) == []
