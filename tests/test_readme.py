"""The README's quick start is what CI runs, and its tables are what the code and the committed results say."""

import functools
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", quick_start)
    assert len(commands) == 2, "the quick start has exactly two commands"
    main_job, tests = commands
    assert main_job.endswith("seqbench run") and tests.endswith("pytest")
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()


def _table_at(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("|"):
            break
        lines.append(line)
    return "\n".join(lines)


#: the committed figures the README's tolerance table shows (``python -m seqbench.precision.allowance`` writes it)
TOLERANCE_RESULTS = Path("results") / "tolerance" / "cpu-2core-x86_64.json"


def test_the_readme_tolerance_table_is_the_committed_one():
    """Rendered from the committed file, digit for digit; ``tests/precision/test_allowance.py`` checks that
    this host's figures agree with the file's."""
    from seqbench.precision import allowance

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### The tolerance model", 1)[1].split("\n## ", 1)[0]
    expected = allowance.render(json.loads((ROOT / TOLERANCE_RESULTS).read_text()))
    assert f"`{TOLERANCE_RESULTS.as_posix()}`" in section, "the README names the file its tolerance table shows"
    assert _table_at(section.split("budget is under its cap:\n", 1)[1].lstrip("\n")) == expected, (
        "the README's tolerance table is out of date; replace it with:\n" + expected)


def conformance_table(pattern: str = "cpu-*.jsonl") -> str:
    """The README's conformance table of a machine, from its committed results."""
    from seqbench.reports import conformance_rows, pages, tables

    frame = conformance_rows.load_conformance(sorted((ROOT / "results" / "conformance").glob(pattern)))
    return pages.markdown_table(tables.conformance_summary(frame)).strip()


def _section_table(readme: str, marker: str) -> str:
    section = readme.split(marker, 1)[1]
    return _table_at(section[section.index("\n|") + 1:])


@pytest.mark.parametrize(("marker", "pattern"), [("### Conformance on this machine (CPU)\n", "cpu-*.jsonl"),
                                                 ("### Conformance on an NVIDIA H200\n", "nvidia-h200.jsonl")])
def test_the_readme_conformance_tables_are_the_committed_results(marker, pattern):
    pytest.importorskip("pandas")
    table, expected = _section_table((ROOT / "README.md").read_text(), marker), conformance_table(pattern)
    assert table == expected, "the README's conformance table is out of date; replace it with:\n" + expected


#: the recurrent paths of the H200 table: (column, backend, device); cuDNN IEEE is the ratios' reference
GPU_PATHS = (("cupy (auto)", "cupy", "cuda"), ("cupy-graph", "cupy-graph", "cuda"),
             ("cupy-fused", "cupy-fused", "cuda"),
             ("cuDNN IEEE", "torch-native", "cuda"), ("cuDNN TF32", "torch-native", "cuda:tf32"))


@functools.lru_cache(maxsize=1)
def _committed_benchmarks():
    from seqbench.reports import load

    return load.load(ROOT / "results").benchmarks


def gpu_lstm_table(method: str) -> str:
    """LSTM float32 times on the H200 per path, ms, and cuDNN IEEE's time over each (> 1: faster), as the
    report reads them from the committed asv results."""
    import itertools

    table = _committed_benchmarks()
    rows = table[(table["machine"] == "nvidia-h200") & (table["op"] == "lstm") & (table["dtype"] == "float32")
                 & (table["kind"] == method.removeprefix("time_"))]
    times = {(r.backend, r.device, int(r.T), int(r.H), int(r.B)): r.time_s for r in rows.itertuples()}
    lines = ["| T | H | B | " + " | ".join(name for name, _, _ in GPU_PATHS) + " |",
             "|---" * (3 + len(GPU_PATHS)) + "|"]
    for T, H, B in itertools.product((64, 512), (256, 1024), (1, 16, 64, 256)):
        ref = times[("torch-native", "cuda", T, H, B)]
        cells = [times.get((backend, device, T, H, B)) for _, backend, device in GPU_PATHS]
        lines.append(f"| {T} | {H} | {B} | " + " | ".join(
            "–" if t is None else f"{1e3 * t:.3g} ({ref / t:.2f}×)" for t in cells) + " |")
    return "\n".join(lines)


@pytest.mark.parametrize("method", ["time_forward", "time_forward_backward"])
def test_the_readme_gpu_tables_are_the_committed_results(method):
    pytest.importorskip("pandas")
    table = _section_table((ROOT / "README.md").read_text(), f"LSTM float32, `{method}`")
    expected = gpu_lstm_table(method)
    assert table == expected, "the README's H200 table is out of date; replace it with:\n" + expected


def test_the_readme_python_examples_run_as_written(capsys):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.+?)\n```", readme, re.S)
    assert blocks, "the README has Python examples"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    assert "(64, 8, 32) ['W_Ch', 'W_Cx', 'W_fh']" in capsys.readouterr().out


def training_tables() -> tuple[str, str]:
    """The README's trainer and claims tables, from the committed CPU results of bench_training."""
    from seqbench.reports import load, pages, training

    runs = load.load(ROOT / "results").training
    runs = runs[runs.machine.str.startswith("cpu-")].reset_index(drop=True)
    return (pages.markdown_table(training.display(runs).drop(columns="machine")).strip(),
            pages.markdown_table(training.claims(runs)).strip())


def test_the_readme_training_tables_are_the_committed_results():
    pytest.importorskip("pandas")
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Trained on this machine (CPU)\n", 1)[1].split("\n## ", 1)[0]
    tables = []
    rest = section
    while "\n|" in rest and len(tables) < 2:
        rest = rest[rest.index("\n|") + 1:]
        tables.append(_table_at(rest))
        rest = rest[len(tables[-1]):]
    expected = training_tables()
    assert tuple(tables) == expected, ("the README's training tables are out of date; replace them with:\n"
                                       + "\n\n".join(expected))
