"""The pytest plugin behind the conformance suite (registered as a ``pytest11`` entry point).

Its options are namespaced, so it can sit in any pytest session of an
environment without clashing with other plugins: ``--seqbench-backend``,
``--seqbench-device``, ``--seqbench-dtype``, ``--seqbench-op`` (each repeatable
or comma-separated) narrow a run, ``--seqbench-large`` adds the large shapes,
``--seqbench-quick`` is the main job's selection (:data:`.cases.QUICK_COMPILE_S`).
It only acts on tests that ask for the ``case`` fixture (the suite in this
package). Every checked case becomes one flat JSON row in
``<results-dir>/<machine>.jsonl``, merged by test id and written atomically at
the end of the session.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from seqbench.backends import registry
from seqbench.results import records as results

from seqbench.selection import Selection, values

from .cases import cases, known_failure

_ROWS = pytest.StashKey[list]()
NARROWING = (("backend", "backend name"), ("device", "device, e.g. cpu or cuda"), ("dtype", "dtype, e.g. float32"),
             ("op", "catalog op name"))


def pytest_addoption(parser):
    group = parser.getgroup("seqbench", "seqbench conformance")
    for name, what in NARROWING:
        group.addoption(f"--seqbench-{name}", action="append", default=[],
                        help=f"only this {what} (repeatable, comma-separated)")
    group.addoption("--seqbench-large", action="store_true", help="also check the large shapes (T>=256, H>=256)")
    group.addoption("--seqbench-quick", action="store_true",
                    help="the main job's selection: jax on a GPU checks one shape in float32/float16")
    group.addoption("--seqbench-results-dir", help="write the JSON-lines results into this folder (default: none; "
                                                   "seqbench check writes its own)")


def selection(config) -> Selection:
    options = {name: config.getoption(f"seqbench_{name}") for name, _ in NARROWING}
    return Selection(*(values(options[k]) for k in ("backend", "device", "dtype", "op")),
                     config.getoption("seqbench_large"), config.getoption("seqbench_quick"))


def pytest_configure(config):
    config.stash[_ROWS] = []
    config.addinivalue_line("markers", "one_shape_per_op: run one case per op, backend and device only")


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        all_cases = cases(selection(metafunc.config))
        if metafunc.definition.get_closest_marker("one_shape_per_op"):
            seen, picked = set(), []
            for c in all_cases:
                key = (c.backend, c.device, c.op.name if c.op else None)
                if key not in seen:
                    seen.add(key)
                    picked.append(c)
            all_cases = picked
        params = [
            pytest.param(c, id=c.id, marks=[pytest.mark.skip(reason=c.skip)] if c.skip else []) for c in all_cases
        ]
        metafunc.parametrize("case", params)


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and "case" in callspec.params:
            reason = known_failure(f"{item.originalname}[{callspec.id}]")
            if reason:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.fixture
def record(request):
    """``record(**row)``: add one flat result row for this test."""

    def add(**row):
        be = registry.backend(row["backend"])
        request.config.stash[_ROWS].append({
            "test_id": f"{request.node.originalname}[{request.node.callspec.id}]",
            "machine": results.machine_name(),
            "device_name": be.device_name(row["device"]),
            "math_mode": be.math_mode(row["device"], row["dtype"]),
            "versions": ";".join(f"{k}={v}" for k, v in be.versions().items()),
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "schema": results.SCHEMA,
            **row,
        })

    return add


#: the kind of check each test function makes
KINDS = {"test_forward": "forward", "test_vjp": "vjp", "test_rejects_bad_input": "bad_input"}


def case_info(item) -> dict:
    """A collected case as a runner and a failure row need it: its node id, kind, skip mark, and (for a case of
    the catalog) ``test_id``, backend, device, dtype, op and shape."""
    case = getattr(getattr(item, "callspec", None), "params", {}).get("case")
    info = {"id": item.nodeid, "kind": KINDS.get(item.originalname, item.originalname),
            "skip": item.get_closest_marker("skip") is not None}
    if case is not None:
        info.update(backend=case.backend, device=case.device, dtype=case.dtype, op=case.op.name if case.op else "",
                    shape=str(case.shape), test_id=f"{item.originalname}[{item.callspec.id}]")
    return info


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A case whose backend raised (out of memory, an error of its own) fails with a row saying so, so the
    results file, and the report, know it failed; a judged case has its row already."""
    outcome = yield
    report = outcome.get_result()
    info = case_info(item)
    if report.when != "call" or not report.failed or info["kind"] not in ("forward", "vjp") or not info.get("op"):
        return
    rows = item.config.stash[_ROWS]
    if any(row["test_id"] == info["test_id"] for row in rows):
        return
    why = f"{call.excinfo.typename}: {call.excinfo.value}".splitlines()[0] if call.excinfo else "failed"
    rows.append(results.fault_row(info, why))


def rows(config) -> list:
    """The result rows the session's cases have made so far (a worker streams them as they come)."""
    return config.stash.get(_ROWS, [])


def pytest_sessionfinish(session):
    rows = session.config.stash.get(_ROWS, [])
    folder = session.config.getoption("seqbench_results_dir")
    if rows and folder:
        path = Path(folder).resolve() / f"{results.machine_name()}.jsonl"
        results.merge_jsonl(path, rows)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(f"seqbench: {len(rows)} conformance results -> {path}")
