"""The HTML report and the asv dashboard, opened in a real headless Chromium.

Needs Debian's ``chromium`` (skipped with the reason when missing). The asv
dashboard tests also need asv and git; the dashboard is made offline by
``seqbench publish``'s rewrite (``seqbench.dashboard.publish``: the scripts
asv loads from CDNs, shipped with seqbench), so no network is needed.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

import synthetic  # noqa: E402
from seqbench.dashboard import publish  # noqa: E402
from seqbench.reports import browser, write_report  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(browser.find_chromium() is None,
                                reason="chromium not installed (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def chromium():
    with browser.Chromium() as c:
        yield c


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git repository with synthetic asv results for its one commit, its asv dashboard (``asv publish``)
    when asv and git are there, and the report (which links to the dashboard it finds beside the results)."""
    root = tmp_path_factory.mktemp("repo")
    published = ""
    if shutil.which("git") is None:
        synthetic.write(root / "results")
        published = "git not installed"
    else:
        git = ["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", "-C", str(root)]
        subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
        (root / "README").write_text("synthetic\n")
        subprocess.run([*git, "add", "README"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        synthetic.write(root / "results", commit=commit)
        (root / "asv.conf.json").write_text(json.dumps({
            "version": 1, "project": "seqbench", "project_url": "https://example.invalid/", "repo": ".",
            "branches": ["main"], "environment_type": "existing", "benchmark_dir": "benchmarks",
            "results_dir": "results", "html_dir": "html"}))
        try:
            import asv  # noqa: F401
        except ImportError:
            published = "asv not installed"
        else:
            out = subprocess.run([sys.executable, "-m", "asv", "publish"], cwd=root, capture_output=True, text=True,
                                 timeout=120)
            assert out.returncode == 0, out.stdout + out.stderr
    page = write_report([root / "results"], root / "report")
    return root, page, published


def check_screenshot(page, path):
    path.write_bytes(page.screenshot)
    assert path.read_bytes().startswith(PNG) and path.stat().st_size > 5000


def test_report_page_loads_with_its_plots(repo, chromium, tmp_path):
    root, page_path, _ = repo
    page = chromium.load(page_path.as_uri())
    assert page.errors == []
    assert page.title == "seqbench: backend selection report"
    plots = list((root / "report" / "plots").glob("*.png"))
    assert len(page.images) == len(plots) >= 5
    assert all(i["complete"] and i["width"] > 300 and i["height"] > 200 for i in page.images), page.images
    assert "Recommendations" in page.text and "fails conformance" in page.text
    check_screenshot(page, tmp_path / "report.png")


def test_asv_dashboard_loads(repo, chromium, tmp_path):
    root, page_path, published = repo
    if published:
        pytest.skip(f"no asv dashboard: {published}")
    assert 'href="../html/index.html"' in page_path.read_text()  # the report links the dashboard it found
    index = publish.offline(root / "html")
    with browser.serve(index.parent) as url:
        grid = chromium.load(f"{url}/index.html", ready="document.querySelectorAll('.benchmark-container').length > 0")
        assert grid.errors == []
        assert "LSTM.time_forward" in grid.text and "GRU.time_forward" in grid.text
        graph = chromium.load(f"{url}/index.html#bench_recurrent.LSTM.time_forward",
                              ready="document.querySelectorAll('canvas').length > 0")
        assert graph.errors == []
        assert "gpubox" in graph.text and "cpubox" in graph.text and "seq_len" in graph.text
    check_screenshot(graph, tmp_path / "dashboard.png")


ROOT = Path(__file__).resolve().parents[2]
SWALLOW = "continental origin"  # what asv's page says when its scripts did not load
PRECISION = "bench_precision.lstm.track_error"  # a precision track of the committed history
GRAPH_DRAWN = "document.querySelectorAll('#graph-display canvas').length > 0"
REGRESSIONS_SHOWN = ("document.querySelector('#regressions-body') !== null && "
                     "document.querySelector('#regressions-body').children.length > 0")


def real_errors(page) -> list:
    """The page's errors less the 404s of graph data: asv's page asks for the graph of every machine and
    environment ticked in its side bar, also of those that never ran the benchmark, and draws the others."""
    return [e for e in page.errors if not (e.startswith("network:") and "404" in e and "/graphs/" in e)]


def test_seqbench_publish_of_the_committed_results_works_offline(chromium, tmp_path):
    """`seqbench publish` of the repository's own results: a benchmark's graph is drawn and the Regressions page
    shows, with no script from the network (this machine has none); the precision history (bench_precision,
    recorded for several commits by ``seqbench bench --commits``) is a graph of several commits."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("asv publish reads the commits from git: no git checkout here")
    pytest.importorskip("asv", reason="asv is not installed (pip install 'seqbench[report]')")
    index = publish.publish(str(ROOT / "results"), str(tmp_path / "html"), str(ROOT / "asv.conf.json"))
    assert "https://" not in "".join(line for line in index.read_text().splitlines() if "<script" in line)
    history = [json.loads(p.read_text()) for p in (index.parent / "graphs").rglob(f"{PRECISION}.json")
               if "summary" not in p.relative_to(index.parent / "graphs").parts]
    assert max(map(len, history), default=0) >= 3, [len(h) for h in history]  # points: one per commit
    with browser.serve(index.parent) as url:
        graph = chromium.load(f"{url}/index.html#bench_recurrent.lstm.time_forward", ready=GRAPH_DRAWN)
        regressions = chromium.load(f"{url}/index.html#/regressions", ready=REGRESSIONS_SHOWN)
        precision = chromium.load(f"{url}/index.html#{PRECISION}", ready=GRAPH_DRAWN)
    for page in (graph, regressions, precision):
        assert real_errors(page) == [] and SWALLOW not in page.text, (page.errors, page.text[:500])
    assert PRECISION in precision.text and "backend-numpy; device-cpu; machine-cpu-2core-x86_64" in precision.text
    assert "seq_len" in graph.text and "cpu-2core-x86_64" in graph.text
    assert "Regressions" in regressions.text and "Best after" in regressions.text  # the table, drawn
    check_screenshot(graph, tmp_path / "graph.png")
    check_screenshot(regressions, tmp_path / "regressions.png")


SORT_BY_TIME = """(() => {
  const box = document.querySelector("div.scroll"), table = box && box.querySelector("table.sortable");
  const col = [...table.querySelectorAll("thead th")].findIndex(th => th.textContent === "time");
  table.querySelectorAll("thead th")[col].click();
  const times = [...table.tBodies[0].rows].map(r => r.cells[col].textContent);
  document.title = JSON.stringify({times, overflow: getComputedStyle(box).overflow,
                                   wider: table.scrollWidth > box.clientWidth});
  return true;
})()"""


def test_wide_tables_scroll_and_sort(repo, chromium):
    """The answer leads; the wide tables sit in scrollable boxes, and a click on a header sorts numerically."""
    _, page_path, _ = repo
    page = chromium.load(page_path.as_uri(), ready=SORT_BY_TIME, screenshot=False)
    assert page.errors == []
    assert page.text.index("Recommendations") < page.text.index("Machines and devices")
    state = json.loads(page.title)
    assert state["overflow"] == "auto" and state["wider"]  # the widest table scrolls inside its box
    unit = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
    seconds = [float(t.split()[0]) * unit[t.split()[1]] for t in state["times"] if t != "—"]
    assert len(seconds) > 10 and seconds == sorted(seconds), state["times"]
