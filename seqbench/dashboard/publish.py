"""``seqbench publish [--results-dir DIR] [--html-dir DIR]``: ``asv publish``, then the page made to work offline.

asv's page (asv 0.6) loads jQuery, flot and its plugins, stupidtable, md5 and
bootstrap from public CDNs; without internet it shows only "Can not determine
continental origin of swallow". After ``asv publish`` this rewrites the page's
``index.html`` to load the copies shipped in ``static/`` (npm packages at
pinned versions, with their licenses: ``static/SOURCES.md``), copied into
``vendor/`` beside it. The page fetches its data as JSON, so serve the folder
over HTTP (``python -m http.server -d html``, or ``asv preview``); a file://
page cannot fetch it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from seqbench.jobs import asv

STATIC = Path(__file__).with_name("static")
#: the last part of each CDN address asv's page loads -> the copy in :data:`STATIC`
LOCAL = {
    "jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "jquery.flot.min.js": "jquery.flot.js",
    "jquery.flot.time.min.js": "jquery.flot.time.js",
    "jquery.flot.selection.min.js": "jquery.flot.selection.js",
    "jquery.flot.categories.min.js": "jquery.flot.categories.js",
    "jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupidtable.min.js",
    "md5.min.js": "md5.min.js",
    "bootstrap.min.js": "bootstrap.min.js",
    "bootstrap.min.css": "bootstrap.min.css",
}
VENDOR = "vendor"
_REMOTE = re.compile(r'(src|href)="(https?://[^"]+\.(?:js|css))"')


def add_command(subparsers) -> None:
    p = subparsers.add_parser(
        "publish", help="asv's dashboard of a results folder, working without internet",
        description="Run `asv publish` on a results folder, then point the page at the copies of jQuery, flot and "
                    "bootstrap shipped with seqbench instead of their CDNs. Serve the html folder over HTTP to "
                    "view it (python -m http.server -d HTML_DIR).")
    p.add_argument("--results-dir", help="asv results to publish (default: the config's, results/)")
    p.add_argument("--html-dir", help="where the dashboard goes (default: the config's, html/)")
    p.add_argument("--config", help="asv.conf.json (default: found from the current directory up)")
    p.set_defaults(func=_command)


def _command(args) -> int:
    index = publish(args.results_dir, args.html_dir, args.config)
    print(f"seqbench publish: {index} (offline: scripts in {index.parent / VENDOR}/); "
          f"view it with: python -m http.server -d {index.parent}")
    return 0


def publish(results_dir: str | None = None, html_dir: str | None = None, config: str | None = None) -> Path:
    """``asv publish`` of ``results_dir`` into ``html_dir`` (defaults: the config's), made offline; returns the
    page. Raises ValueError (naming the argument, or with asv's output) when it cannot."""
    asv.require_asv()
    config_path = asv.find_config(config)
    conf = asv.load_config(config_path)
    results = Path(results_dir) if results_dir else asv.results_dir(config_path, conf)
    if not results.is_dir():
        raise ValueError(f"--results-dir {results}: not a folder")
    html = Path(html_dir) if html_dir else config_path.parent / conf.get("html_dir", "html")
    with tempfile.TemporaryDirectory(prefix="seqbench-publish-") as scratch:
        derived = asv.derived_config(config_path, conf, results, Path(scratch))
        out = subprocess.run([sys.executable, "-m", "asv", "publish", f"--config={derived}",
                              f"--html-dir={html.resolve()}"], cwd=config_path.parent, capture_output=True,
                             text=True)
    if out.returncode != 0:
        raise ValueError(f"asv publish of {results} failed (exit {out.returncode}): "
                         f"{(out.stdout + out.stderr)[-2000:]}")
    return offline(html)


def offline(html: Path) -> Path:
    """Point the ``asv publish`` page in ``html`` at seqbench's copies of its CDN scripts (copied into
    ``html/vendor/``); returns the page. Raises ValueError for an address seqbench has no copy of."""
    index = Path(html) / "index.html"
    if not index.is_file():
        raise ValueError(f"--html-dir {html}: no index.html (not an `asv publish` folder)")
    page = index.read_text()
    unknown = sorted({url for _, url in _REMOTE.findall(page) if url.rsplit("/", 1)[-1] not in LOCAL})
    if unknown:
        raise ValueError(f"asv's page loads {', '.join(unknown)}, which seqbench ships no copy of (a newer asv?): "
                         f"add it to {STATIC} and seqbench.dashboard.publish.LOCAL")
    (index.parent / VENDOR).mkdir(exist_ok=True)
    for name in LOCAL.values():
        shutil.copyfile(STATIC / name, index.parent / VENDOR / name)
    page = _REMOTE.sub(lambda m: f'{m.group(1)}="{VENDOR}/{LOCAL[m.group(2).rsplit("/", 1)[-1]]}"', page)
    # the copies are served from the page's own origin; not every one is the byte-identical file asv's hash names
    page = re.sub(r'\s(?:integrity|crossorigin|referrerpolicy)="[^"]*"', "", page)
    index.write_text(page)
    return index
