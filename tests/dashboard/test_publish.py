"""`seqbench publish`'s rewrite of asv's page (without a browser: tests/reports/test_browser.py opens it)."""

import shutil
from pathlib import Path

import pytest

from seqbench.dashboard import publish

asv = pytest.importorskip("asv", reason="asv is not installed (pip install 'seqbench[report]')")
WWW = Path(asv.__file__).parent / "www"


def test_every_cdn_script_of_asvs_page_has_a_shipped_copy_and_a_license(tmp_path):
    shutil.copyfile(WWW / "index.html", tmp_path / "index.html")
    page = publish.offline(tmp_path).read_text()
    assert 'src="https://' not in page and 'stylesheet" href="https://' not in page and "integrity=" not in page
    for name in publish.LOCAL.values():
        assert f'"{publish.VENDOR}/{name}"' in page and (tmp_path / publish.VENDOR / name).stat().st_size > 1000
    assert len(list((publish.STATIC / "licenses").glob("*.txt"))) == 5  # jquery, flot, stupidtable, md5, bootstrap


def test_an_address_without_a_copy_is_named(tmp_path):
    (tmp_path / "index.html").write_text('<script src="https://cdn.example.invalid/new-lib.min.js"></script>')
    with pytest.raises(ValueError, match="new-lib.min.js, which seqbench ships no copy of"):
        publish.offline(tmp_path)


def test_clear_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="--html-dir .*: no index.html"):
        publish.offline(tmp_path)
    root = Path(__file__).resolve().parents[2]
    with pytest.raises(ValueError, match="--results-dir .*nowhere: not a folder"):
        publish.publish(str(tmp_path / "nowhere"), str(tmp_path / "html"), str(root / "asv.conf.json"))
