"""The built site as search engines, link previews and readers with an erratum meet it:
a sitemap of every page, Open Graph tags and a canonical URL on every page (all under
``html.baseurl``), the theme's "open an issue" link on every page, and a MathJax
copy of only the files the pages load.

They read the HTML in ``_build/html`` (or ``$MAKEMORE_HTML``), as the browser tests do:
`make test` builds it first (marked ``browser`` for that reason; no browser is started).
"""
from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import yaml
from bs4 import BeautifulSoup

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("MAKEMORE_HTML", REPO / "_build" / "html")).resolve()
CONFIG = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
BASEURL = CONFIG["html"]["baseurl"]
REPOSITORY = CONFIG["repository"]["url"]
MATHJAX_BUDGET = 2_000_000  # bytes: tex-chtml.js, its fonts, a few TeX extensions

sys.path.insert(0, str(REPO / "tools"))
import notebooks  # noqa: E402

PAGES = [f"{f}.html" for f in notebooks.toc_files(REPO)]


@pytest.fixture(scope="module")
def site() -> Path:
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book in {HTML}: run `make book` first")
    return HTML


def head(site: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((site / page).read_text(encoding="utf-8"), "html.parser")


def test_baseurl_is_the_published_site():
    assert BASEURL.startswith("https://") and BASEURL.endswith("/")
    assert CONFIG["sphinx"]["config"]["ogp_site_url"] == BASEURL


def test_sitemap_lists_every_page(site):
    root = ET.parse(site / "sitemap.xml").getroot()
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locs = [e.text for e in root.findall("s:url/s:loc", ns)]
    assert sorted(locs) == sorted(BASEURL + p for p in PAGES), \
        "the sitemap lists exactly the book's pages, at their published address"


@pytest.mark.parametrize("page", PAGES)
def test_open_graph_and_canonical_url(site, page):
    s = head(site, page)
    og = {m["property"]: m["content"] for m in s.find_all("meta", property=True)}
    assert og["og:url"] == BASEURL + page
    assert og["og:title"] and og["og:site_name"]
    assert len(og.get("og:description", "")) > 40, f"{page}: no description for previews"
    image = og["og:image"]
    assert image.startswith(BASEURL)
    assert (site / image[len(BASEURL):]).is_file(), f"{page}: the preview card is not in the site"
    assert s.find("meta", attrs={"name": "twitter:card"})["content"] == "summary_large_image"
    assert s.find("link", rel="canonical")["href"] == BASEURL + page


@pytest.mark.parametrize("page", PAGES)
def test_every_page_has_an_open_an_issue_link(site, page):
    """The errata path: a new issue in the book's repository, titled with the page."""
    links = [a["href"] for a in head(site, page).find_all("a", href=True)
             if a["href"].startswith(REPOSITORY + "/issues/new")]
    assert len(links) == 1, f"{page}: {links}"
    title = parse_qs(urlsplit(links[0]).query)["title"][0]
    assert page in title


def test_mathjax_holds_only_what_the_pages_load(site):
    mathjax = site / "_static" / "mathjax"
    files = [p for p in mathjax.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    assert (mathjax / "tex-chtml.js").is_file()
    assert size < MATHJAX_BUDGET, f"_static/mathjax holds {size / 1e6:.1f} MB"
    assert not (mathjax / "sre").exists() and not (mathjax / "tex-svg-full.js").exists()
    for page in PAGES:
        srcs = [t["src"] for t in head(site, page).find_all("script", src=True)
                if "mathjax" in t["src"]]
        assert all((site / urljoin(page, src)).resolve().is_file() for src in srcs), srcs
