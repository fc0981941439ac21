"""asv's result files: read into flat rows, and merged point by point without losing a measured point, in files
asv itself still reads."""

import ast
import itertools
import json
import math

import pytest

import synthetic
from seqbench.results import asv_files
from seqbench.results.asv_files import merge_folder, merge_results

NAN = float("nan")
#: every column asv writes (asv.results.Results.save)
COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b", "stats_q_25",
           "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]
NAME = "bench_recurrent.lstm.time_forward"
PARAM_NAMES = ["backend", "device", "dtype", "seq_len", "hidden", "batch"]


def _axes(backends, seq_lens):
    return [[repr(b) for b in backends], ["'cpu'"], ["'float32'"], [str(t) for t in seq_lens], ["32"], ["8"]]


def _file(backends, seq_lens, times: dict, started=100, duration=1.0) -> dict:
    """A results file of one benchmark over ``backends`` x ``seq_lens``, measured where ``times`` (backend, T) has
    a value; stats and samples follow the time, so a point's columns can be told apart from another's."""
    axes = _axes(backends, seq_lens)
    values = [times.get((b, t), NAN) for b, t in itertools.product(backends, seq_lens)]
    stats = [[None if v != v else v * k for v in values] for k in (0.9, 1.1, 0.95, 1.05)]
    counts = [[None if v != v else n for v in values] for n in (1, 3)]
    samples = [None if v != v else [v, v] for v in values]
    row = [values, axes, "v1", started, duration, *stats, *counts, samples]
    return {"commit_hash": "0123abcd", "env_name": "e", "date": 1, "params": {"machine": "m"}, "python": "3.11",
            "requirements": {}, "env_vars": {}, "result_columns": COLUMNS, "results": {NAME: row}, "durations": {},
            "version": 2}


def _points(data) -> dict:
    """(backend, T) -> (time, stats_q_25, samples) of every measured point of a results file."""
    row = asv_files.rows(data)[NAME]
    combos = itertools.product(*row["params"])
    columns = zip(*(asv_files.point_values(row, c) for c in ("result", "stats_q_25", "samples")))
    return {(ast.literal_eval(c[0]), int(c[3])): values for c, values in zip(combos, columns) if asv_files.measured(values[0])}


MID = _file(["numpy", "torch"], [32, 256], {("numpy", 32): 1.0, ("numpy", 256): 2.0, ("torch", 32): 3.0,
                                            ("torch", 256): 4.0})
ONE_MORE = _file(["torch", "jax"], [256, 1024], {("torch", 256): 5.0, ("torch", 1024): 6.0, ("jax", 256): 7.0,
                                                 ("jax", 1024): 8.0})
QUICK = _file(["numpy", "torch"], [16, 64], {("numpy", 16): 9.0, ("torch", 64): 10.0})


# --- reading -----------------------------------------------------------------------------------------------------


def _tree(root, data):
    (root / "m").mkdir(parents=True)
    (root / "m" / "machine.json").write_text(json.dumps({"machine": "m", "version": 1}))
    (root / "m" / "0123abcd-e.json").write_text(json.dumps(data))
    (root / "benchmarks.json").write_text(json.dumps({NAME: {"param_names": PARAM_NAMES, "type": "time"},
                                                      "version": 2}))
    return root


def test_a_results_folder_reads_as_one_flat_row_per_point(tmp_path):
    machines, points = asv_files.read([_tree(tmp_path, MID)])
    assert list(machines) == ["m"] and len(points) == 4
    first = points[0]
    assert first["params"] == {"backend": "numpy", "device": "cpu", "dtype": "float32", "seq_len": 32, "hidden": 32,
                               "batch": 8}
    assert (first["suite"], first["method"], first["type"], first["commit"]) == (
        "bench_recurrent.lstm", "time_forward", "time", "0123abcd")
    assert first["result"] == 1.0 and first["stats_q_25"] == 0.95 and first["samples"] == [1.0, 1.0]
    assert first["stats_number"] == 1 and "profile" not in first  # profile is one per benchmark


def test_unreadable_files_are_left_out_with_the_reason(tmp_path):
    _tree(tmp_path, MID)
    (tmp_path / "m" / "broken.json").write_text('{"results": ')
    (tmp_path / "m" / "old.json").write_text('{"results": {}}')
    skipped = []
    assert len(asv_files.read([tmp_path], skipped)[1]) == 4
    assert [(p.name, why.split(" (")[0]) for p, why in skipped] == [
        ("broken.json", "not JSON"), ("old.json", "not an asv results file of API version 2")]


def test_parameters_no_benchmark_list_names_are_named_as_asked(tmp_path):
    _tree(tmp_path, MID)
    (tmp_path / "benchmarks.json").unlink()
    assert list(asv_files.read([tmp_path])[1][0]["params"]) == [f"param{i}" for i in range(6)]
    names = asv_files.read([tmp_path], unlisted_names=PARAM_NAMES)[1][0]["params"]
    assert list(names) == PARAM_NAMES


def test_the_synthetic_results_read_as_the_grid_they_hold(tmp_path):
    points = asv_files.read([synthetic.write(tmp_path)])[1]
    grid = math.prod(len(v) for v in synthetic.GRID.values()) * 5 * 2  # backends x devices
    assert len([p for p in points if p["method"] == "time_forward"]) == grid * len(synthetic.OPS) * 2  # machines


# --- merging -----------------------------------------------------------------------------------------------------


def test_shards_of_one_benchmark_merge_point_by_point():
    halves = (_file(["numpy", "torch"], [32, 256], {("numpy", 32): 1.0, ("torch", 256): 4.0}, duration=1.0),
              _file(["numpy", "torch"], [32, 256], {("numpy", 256): 2.0, ("torch", 32): 3.0}, duration=2.0))
    merged = merge_results(*halves)
    assert _points(merged) == _points(MID)
    row = asv_files.rows(merged)[NAME]
    assert row["duration"] == 3.0 and row["params"] == MID["results"][NAME][1]
    remeasured = merge_results(MID, _file(["numpy", "torch"], [32, 256], {("numpy", 256): 5.0}))
    assert _points(remeasured)[("numpy", 256)] == (5.0, 4.75, [5.0, 5.0])  # the newer measurement wins, whole
    assert _points(remeasured)[("torch", 32)] == (3.0, 3.0 * 0.95, [3.0, 3.0])
    with pytest.raises(ValueError, match="result_columns"):
        merge_results(MID, {**MID, "result_columns": ["result"]})


@pytest.mark.parametrize("incoming", [ONE_MORE, QUICK], ids=["one-more-backend", "quick-after-mid"])
def test_no_merge_loses_a_measured_point(incoming):
    for present, new in ((MID, incoming), (incoming, MID)):
        merged = merge_results(present, new)
        before, after = _points(present), _points(new)
        assert _points(merged) == {**before, **after}  # every point kept; one measured in both is the incoming's
        assert len(_points(merged)) == len(before) + len(after) - len(before.keys() & after.keys())
        axes = asv_files.rows(merged)[NAME]["params"]
        own = asv_files.rows(present)[NAME]["params"]
        assert all(axis[:len(mine)] == mine for axis, mine in zip(axes, own))  # present values first, then new ones
        row = asv_files.rows(merged)[NAME]
        assert all(len(asv_files.point_values(row, c)) == math.prod(map(len, axes)) for c in row if
                   asv_files.is_per_point(c))


def test_a_benchmark_with_other_axes_is_refused_and_nothing_is_written(tmp_path):
    merge_folder(tmp_path, {"m/c-e.json": json.dumps(MID)})
    other = _file(["numpy"], [32], {("numpy", 32): 1.0})
    other["results"][NAME][1] = other["results"][NAME][1][:2]  # two axes, not six
    with pytest.raises(ValueError, match="6 parameter axes in one file and 2 in the other"):
        merge_folder(tmp_path, {"benchmarks.json": json.dumps({"x": {}}), "m/c-e.json": json.dumps(other)})
    assert not (tmp_path / "benchmarks.json").exists() and _points(json.loads((tmp_path / "m" / "c-e.json")
                                                                              .read_text())) == _points(MID)


def test_a_results_folder_takes_shards_in_any_order(tmp_path):
    halves = [MID, ONE_MORE]
    for order, folder in (((0, 1), tmp_path / "a"), ((1, 0), tmp_path / "b")):
        for k in order:
            merge_folder(folder, {"m/c-e.json": json.dumps(halves[k]), "m/machine.json": '{"machine": "m"}',
                                  "benchmarks.json": json.dumps({f"s.m.x{k}": {}})})
        data = json.loads((folder / "m" / "c-e.json").read_text())
        assert len(_points(data)) == 7
        assert set(json.loads((folder / "benchmarks.json").read_text())) == {"s.m.x0", "s.m.x1"}


def test_asv_and_the_report_read_a_merged_file(tmp_path):
    asv_results = pytest.importorskip("asv.results")
    pytest.importorskip("pandas")
    from seqbench.reports import load

    merged = merge_results(MID, ONE_MORE)
    path = _tree(tmp_path, merged) / "m" / "0123abcd-e.json"
    loaded = asv_results.Results.load(str(path))
    params = loaded.get_result_params(NAME)
    values = loaded.get_result_value(NAME, params)
    samples, stats = loaded.get_result_samples(NAME, params), loaded.get_result_stats(NAME, params)
    expected = _points(merged)
    got = {(ast.literal_eval(c[0]), int(c[3])): (v, s["q_25"], samples[k])
           for k, (c, v, s) in enumerate(zip(itertools.product(*params), values, stats)) if asv_files.measured(v)}
    assert got == expected and len(got) == 7 and len(values) == 9
    table = load.load(tmp_path).benchmarks
    measured = table[table["time_s"].notna()]
    assert sorted(zip(measured["backend"], measured["T"], measured["time_s"])) == sorted(
        (b, t, v[0]) for (b, t), v in expected.items())


def test_a_later_sweep_that_did_not_run_a_point_leaves_its_last_measurement_standing():
    def point(date, result, backend="plug"):
        return {"machine": "m", "suite": "bench_recurrent.lstm", "method": "time_forward", "date": date,
                "params": {"backend": backend}, "result": result}

    older, newer_skip, newer = point(1, 0.5), point(2, math.nan), point(3, 0.25, "other")
    chosen = asv_files.latest([older, newer_skip, newer])
    assert chosen[("m", "bench_recurrent.lstm", "time_forward", (("backend", "plug"),))]["result"] == 0.5
    remeasured = point(4, 0.4)
    chosen = asv_files.latest([older, newer_skip, remeasured])
    assert chosen[("m", "bench_recurrent.lstm", "time_forward", (("backend", "plug"),))]["result"] == 0.4
