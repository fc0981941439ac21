"""The estimator of unmeasured shapes: exact where times are a power law of the sizes, silent where the
neighbours it needs were not measured, and measured by hold-one-out on the committed results."""

from pathlib import Path

import pytest

pytest.importorskip("pandas")

from seqbench.reports import estimate, load, plausibility, select, tradeoffs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def power_law(T, H):
    return 1e-9 * T * H ** 2


GRID = {(T, H): power_law(T, H) for T in (32, 64, 256) for H in (64, 128, 256)}


def test_log_log_interpolation_is_exact_for_a_power_law():
    guess = estimate.interpolate(GRID, (100, 100))
    assert guess.how == "interpolated" and guess.time_s == pytest.approx(power_law(100, 100))
    assert set(guess.corners) == {(64, 64), (64, 128), (256, 64), (256, 128)}


def test_on_grid_axes_take_their_value_alone():
    guess = estimate.interpolate(GRID, (100, 128))
    assert set(guess.corners) == {(64, 128), (256, 128)}


def test_no_estimate_without_every_corner_or_outside_the_range():
    holes = {k: v for k, v in GRID.items() if k != (256, 128)}
    assert estimate.interpolate(holes, (100, 100)) is None
    assert estimate.interpolate(GRID, (1024, 64)) is None


def test_extrapolation_is_asked_for_and_marked():
    guess = estimate.interpolate(GRID, (1024, 64), extrapolate=True)
    assert guess.how == "extrapolated" and guess.time_s == pytest.approx(power_law(1024, 64))
    assert set(guess.corners) == {(64, 64), (256, 64)}


def test_a_held_out_point_is_predicted_from_its_neighbours_only():
    assert estimate.left_out(GRID, (64, 128)) == pytest.approx(power_law(64, 128))
    assert estimate.left_out(GRID, (32, 64)) is None  # a corner of the grid has no neighbour on both sides
    bent = {**GRID, (64, 128): 2 * power_law(64, 128)}  # its own time is never used
    assert estimate.left_out(bent, (64, 128)) == pytest.approx(power_law(64, 128))


#: what the estimator must keep reaching on the committed results (hold-one-out): its time error and how often it
#: names the measured fastest family where the measured win is significant
BAR = {"median_error": 0.25, "p90_error": 0.5, "significant_agreement": 0.9}


def committed():
    """The committed results less the rows the report flags as implausible (as the report measures them)."""
    table = plausibility.usable(load.load([ROOT / "results"]).benchmarks)[0]
    return table, select.shape_keys(table)


def meets_the_bar(s: dict) -> bool:
    agreement = s["significant_agree"] / s["significant_shapes"] if s["significant_shapes"] else 0.0
    return (s["median_error"] <= BAR["median_error"] and s["p90_error"] <= BAR["p90_error"]
            and agreement >= BAR["significant_agreement"])


def test_the_estimator_meets_its_bar_on_the_committed_results():
    s = estimate.summary(*committed())
    assert s["points"] >= 100 and s["significant_shapes"] >= 10, s
    assert meets_the_bar(s), s


def test_a_worse_estimator_fails_the_bar(monkeypatch):
    def nearest_shape(times, shape):  # a neighbour's time, as if time did not grow with the work
        rest = {s: t for s, t in times.items() if s != shape}
        return min(rest.items(), key=lambda kv: sum(abs(a - b) for a, b in zip(kv[0], shape)))[1]

    monkeypatch.setattr(estimate, "left_out", nearest_shape)
    assert not meets_the_bar(estimate.summary(*committed()))


def test_the_readme_shows_the_estimators_figures():
    readme = (ROOT / "README.md").read_text()
    from seqbench.reports.pages import markdown_table

    expected = markdown_table(tradeoffs.trust_table(load.load([ROOT / "results"]).benchmarks)).strip()
    assert expected in readme, "the README's hold-one-out table is out of date; replace it with:\n" + expected
