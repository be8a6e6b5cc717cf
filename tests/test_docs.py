"""The documentation site builds without a warning, covers the API, links within itself, renders.

One Sphinx build per test run (module fixture ``site``, into a temporary folder, with ``-W``, as
``make docs`` does), then: every public name has an entry in the API reference (read from the
site's ``objects.inv``); every link from one page to another page, file or anchor of the site
resolves; the index and one API page render in headless Chromium (Debian's, as in
``tests/test_browser.py``) without fetching anything from the network. The docstring examples run
as doctests in ``tests/test_docstrings.py``. The README checks keep it a landing page.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import tsc_toolkit

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM = os.environ.get("TSC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
BUILD_TIMEOUT_S = 600


def build_site(out: Path) -> subprocess.CompletedProcess:
    """Build the site into ``out/html`` as ``make docs`` does (every warning an error)."""
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One build per test run: Sphinx's result and the html folder it wrote."""
    out = tmp_path_factory.mktemp("docs")
    return build_site(out), out / "html"


@pytest.fixture(scope="module")
def site(build) -> Path:
    """The built site; the checks below run on it even when the build warned (--keep-going)."""
    result, html = build
    assert (html / "index.html").is_file(), (
        f"the build wrote no site:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return html


def test_site_builds_without_a_warning(build):
    result, html = build
    assert result.returncode == 0, (
        f"sphinx-build -W failed ({result.returncode}):\n{result.stdout[-4000:]}"
        f"\n{result.stderr[-8000:]}")
    for page in ("index", "getting_started", "guide/data", "guide/model", "api/index", "results",
                 "notebooks/01_quickstart", "benchmarks", "defaults"):
        assert (html / f"{page}.html").is_file(), page


# ------------------------------------------------------------------------- API reference

def public_modules() -> list[str]:
    """The package and every module whose dotted path has no part starting with ``_``."""
    names = ["tsc_toolkit"]
    for info in pkgutil.walk_packages(tsc_toolkit.__path__, "tsc_toolkit."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        names.append(info.name)
    return sorted(names)


def public_names() -> list[tuple[str, str, object]]:
    """``(module, name, object)`` for each name of each public module's ``__all__``."""
    out = []
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            if name.startswith("__"):  # __version__
                continue
            out.append((module_name, name, getattr(module, name)))
    return out


def documented_names(site: Path) -> set[str]:
    from sphinx.util.inventory import InventoryFile

    with open(site / "objects.inv", "rb") as stream:
        inventory = InventoryFile.load(stream, "", lambda base, uri: uri)
    names = set()
    for kind, entries in inventory.items():
        if kind.startswith("py:"):
            names.update(entries)
    return names


def test_every_module_has_a_reference_page(site):
    missing = [m for m in public_modules() if not (site / "api" / f"{m}.html").is_file()]
    assert not missing, (f"modules without a page in docs/api/: {missing}; add docs/api/<module>.rst "
                         "and list it in docs/api/index.rst")


def test_every_public_name_has_a_reference_entry(site):
    """A name counts as documented where it is exported or under any module exporting it too."""
    documented = documented_names(site)
    entries = public_names()
    exporters: dict[int, list[str]] = {}
    for module_name, name, obj in entries:
        exporters.setdefault(id(obj), []).append(f"{module_name}.{name}")
    missing = []
    for module_name, name, obj in entries:
        candidates = {f"{module_name}.{name}", *exporters[id(obj)]}
        if inspect.isclass(obj) or inspect.isfunction(obj):
            candidates.add(f"{obj.__module__}.{obj.__qualname__}")
        if not candidates & documented:
            missing.append(f"{module_name}.{name}")
    assert not missing, (f"{len(missing)} public name(s) without an entry in the API reference: "
                         f"{missing}; add each to its module's page in docs/api/")


# ------------------------------------------------------------------------------- links

class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and attrs.get("rel") == "preconnect"):
                self.links.append(attrs[key])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def broken_links(site: Path) -> list[str]:
    """Links between the site's own pages and files that lead nowhere: page, file or anchor."""
    pages = {p: _parse(p) for p in site.rglob("*.html")}
    broken = []
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "data:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            where = f"{page.relative_to(site)} -> {link}"
            if not target.exists():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where} (no such anchor)")
    return broken


def test_links_within_the_site_resolve(site):
    broken = broken_links(site)
    assert not broken, f"{len(broken)} broken link(s):\n" + "\n".join(broken[:40])


def test_site_loads_nothing_from_the_network(site):
    """No script, style sheet or image from another host: the site reads offline."""
    remote = []
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r'<(script|link|img)\b[^>]*?(?:src|href)="(https?:)?//[^"]+"',
                                 text):
            if match.group(1) == "link" and 'rel="stylesheet"' not in match.group(0):
                continue
            remote.append(f"{page.relative_to(site)}: {match.group(0)[:120]}")
    assert not remote, "\n".join(remote[:20])


# ----------------------------------------------------------------------------- browser

@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set TSC_CHROMIUM)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing: pip install playwright")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def open_page(browser, path: Path):
    """Open a built page from disk; returns the page and the URLs it requested off the disk."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    remote: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(("file:", "data:"))
            else remote.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, remote


def test_index_renders_in_chromium(site, chromium, tmp_path):
    page, remote = open_page(chromium, site / "index.html")
    try:
        assert "tsc_toolkit" in page.title()
        assert page.locator("h1").first.inner_text().strip().startswith("tsc_toolkit")
        nav = page.locator(".sidebar-tree a.reference")
        assert nav.count() >= 6, "the navigation lists the site's sections"
        assert nav.filter(has_text="API reference").count() >= 1
        assert page.locator("figure img").count() >= 1, "the index page has no figure"
        figure = page.locator("figure img").first
        figure.wait_for(state="visible", timeout=10_000)
        width = figure.evaluate("img => img.complete ? img.naturalWidth : 0")
        assert width > 100, "the index page's figure was not drawn"
        assert page.locator("div.highlight pre").count() >= 1, "the example is highlighted"
        page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
        print(f"screenshot: {tmp_path / 'index.png'}")
    finally:
        page.close()
    assert not remote, f"the index requested {remote}"


def test_api_page_renders_in_chromium(site, chromium):
    page, remote = open_page(chromium, site / "api" / "tsc_toolkit.cnn_kmeans.html")
    try:
        assert "cnn_kmeans" in page.title()
        assert page.locator(".sidebar-tree a.reference").count() >= 6
        signature = page.locator('dt[id="tsc_toolkit.cnn_kmeans.CNNKMeans"]')
        assert signature.is_visible()
        assert "clusters" in signature.inner_text()
        # numpydoc's sections, rendered from the docstring
        body = page.locator("dl.py.class").first.inner_text().lower()  # the theme capitalises
        assert "parameters" in body and "examples" in body
        method = page.locator('dt[id="tsc_toolkit.cnn_kmeans.CNNKMeans.fit"]')
        assert method.count() == 1
    finally:
        page.close()
    assert not remote, f"the API page requested {remote}"


# ------------------------------------------------------------------------------ README

def test_readme_is_a_landing_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; the detail belongs in docs/"
    long = [(n, len(line)) for n, line in enumerate(lines, 1) if len(line) > 120]
    assert not long, f"README.md lines over 120 characters (line, length): {long}"
    text = "\n".join(lines)
    assert "<!-- results-table -->" in text and "<!-- /results-table -->" in text
    assert "make test" in text and "make demo" in text and "make docs" in text


def test_readme_links_to_files_that_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if not urlsplit(t).scheme and not (ROOT / t).exists()]
    assert not missing, missing
