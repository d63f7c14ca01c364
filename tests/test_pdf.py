"""The book as one PDF (``tools/pdf.py``, ``make pdf``).

- fast: the tool's failure paths (no single-page build, a redirect out of it, a
  write that fails half-way leaves the old PDF, an output path that is a folder);
- browser (Debian's chromium): a four-chapter page printed for real, whose contents'
  page numbers must be the pages its chapters start on, with a code block taller than a
  page that breaks (chromium cannot keep it whole and did not lay it out the same way
  twice);
- browser, on the PDF that ``make pdf`` (and ``make test``, which sets
  ``MAKEMORE_REQUIRE_PDF=1`` where chromium is) writes to
  ``_build/pdf/makemore-part3.pdf``; skipped where there is none, unless
  ``MAKEMORE_REQUIRE_PDF=1``: its page count, every chapter's title in its text and on
  the page the contents give, no raw TeX, every numbered figure's caption, images on the
  pages (at least as many as the single-page HTML shows), and the copy in the site,
  which the introduction links.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import notebooks  # noqa: E402
import pdf as pdftool  # noqa: E402

PDF = Path(os.environ.get("MAKEMORE_PDF", REPO / "_build" / "pdf" / "makemore-part3.pdf"))
SINGLE = Path(os.environ.get("MAKEMORE_SINGLEHTML", REPO / "_build" / "singlehtml"))
SITE = Path(os.environ.get("MAKEMORE_HTML", REPO / "_build" / "html"))
# a book of 15 pages with ~40 figures and ~20 tables: far fewer pages means pages went
# missing, far more that something (a figure, a table) prints one line per page
PAGES_MIN, PAGES_MAX = 60, 400


# ---------------------------------------------------------------------------
# fast: failure paths


def test_no_single_page_build_says_what_to_run(tmp_path, capsys):
    rc = pdftool.main(["--html", str(tmp_path / "nothing"), "--out", str(tmp_path / "b.pdf")])
    assert rc == 2
    assert "--builder singlehtml" in capsys.readouterr().err
    assert not (tmp_path / "b.pdf").exists()


def test_the_redirect_must_stay_in_the_build(tmp_path):
    (tmp_path / "index.html").write_text(
        '<meta http-equiv="Refresh" content="0; url=../elsewhere.html" />')
    (tmp_path.parent / "elsewhere.html").write_text("x")
    with pytest.raises(pdftool.PdfError, match="not in"):
        pdftool.root_page(tmp_path)
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.html").write_text("x")
    (tmp_path / "index.html").write_text(
        '<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    assert pdftool.root_page(tmp_path) == (tmp_path / "book" / "intro.html").resolve()


def test_out_must_be_a_file(tmp_path, capsys):
    (tmp_path / "index.html").write_text("<p>x</p>")
    assert pdftool.main(["--html", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_a_failed_write_leaves_the_old_pdf(tmp_path, monkeypatch):
    out = tmp_path / "b.pdf"
    out.write_bytes(b"%PDF old")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pdftool.os, "fsync", full)
    with pytest.raises(OSError):
        pdftool.write_atomic(b"%PDF new", out)
    assert out.read_bytes() == b"%PDF old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.pdf"], "no partial file left"


def test_title_page_is_escaped_and_names_the_version():
    meta = pdftool.book_meta(REPO)
    assert meta["url"].startswith("https://") and meta["version"]
    html = pdftool.title_html("a <b> & c", "me", "1.0", "https://x.org/")
    assert "a &lt;b&gt; &amp; c" in html and "Version 1.0" in html


# ---------------------------------------------------------------------------
# browser: a small page printed for real

SMALL = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<main id="main-content" class="bd-main"><div class="bd-content">
<div id="jb-print-docs-body"><h1>T</h1><div id="jb-print-toc"><div><h2>Contents</h2></div>
<nav><p role="heading" aria-level="2">Part</p>
<ul class="section-nav">{toc}</ul></nav></div></div>
<article class="bd-article"><section id="intro"><h1>Intro</h1><p>start</p>
<section id="who"><h2>Who</h2><p>you</p></section>
<div class="toctree-wrapper">{chapters}</div>
</section></article></div></main></body></html>"""


# a code block of 90 lines, taller than a page, that pdf.css would keep whole
LONG_CODE = ('<div class="highlight-python"><div class="highlight"><pre>'
             + "\n".join(f"line_{k} = {k}" for k in range(90)) + "</pre></div></div>")


def small_book(root: Path, lengths: list[int], long_code_in: int = -1) -> None:
    toc = "".join(f'<li><a href="#document-c{i}">Chapter {i}</a></li>'
                  for i in range(len(lengths)))
    chapters = "".join(
        f'<span id="document-c{i}"></span><section id="chapter-{i}"><h2>Chapter {i}</h2>'
        + "".join(f"<p>paragraph {j} of chapter {i}. " + "words " * 60 + "</p>"
                  for j in range(n))
        + (f"<section><h3>Code {i}</h3><p>The code:</p>{LONG_CODE}</section>"
           if i == long_code_in else "")
        + "</section>" for i, n in enumerate(lengths))
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(SMALL.format(toc=toc, chapters=chapters))


@pytest.mark.browser
def test_contents_page_numbers_are_where_the_chapters_start(tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed")
    from pypdf import PdfReader

    small_book(tmp_path / "html", [3, 40, 1, 25], long_code_in=1)
    meta = {"title": "Small", "author": "a", "version": "0", "url": "https://x.org/"}
    # in a thread of its own: Playwright's sync API refuses a thread in which an earlier
    # test of this process left an asyncio loop marked running (seen in the full suite)
    with ThreadPoolExecutor(1) as pool:
        data, pages = pool.submit(pdftool.print_book, tmp_path / "html", meta,
                                  log=lambda *a: None).result()
    reader = PdfReader(io.BytesIO(data))
    texts = [p.extract_text() for p in reader.pages]
    assert texts[0].startswith("Small")
    for i in range(4):
        start = next(n for n, t in enumerate(texts, 1) if f"paragraph 0 of chapter {i}." in t)
        assert pages[f"chapter-{i}"] == start
        # the contents page shows that number after the chapter's title
        assert re.search(rf"Chapter {i}\s*{start}\b", texts[1]), texts[1]
    assert len(set(pages.values())) == 4 and len(reader.pages) > 10
    # the code block taller than a page broke across pages, right after its heading
    first = next(n for n, t in enumerate(texts) if "line_0 = 0" in t)
    last = next(n for n, t in enumerate(texts) if "line_89 = 89" in t)
    assert last > first and "Code 1" in texts[first], (first, last)
    # bookmarks: the contents, the introduction and the chapters side by side, the
    # introduction's sections under it, the contents' part captions nowhere
    top = [" ".join(o.title.split()) for o in reader.outline if not isinstance(o, list)]
    assert top == ["Contents", "Intro"] + [f"Chapter {i}" for i in range(4)], top
    assert reader.outline[2][0].title == "Who"


# ---------------------------------------------------------------------------
# browser: the book's PDF, as `make pdf` wrote it


@pytest.fixture(scope="module")
def book_pdf():
    if not PDF.exists():
        required = os.environ.get("MAKEMORE_REQUIRE_PDF", "").strip().lower()
        if required in ("1", "true", "yes", "on"):
            pytest.fail(f"no PDF at {PDF}: run `make pdf` (MAKEMORE_REQUIRE_PDF is set)")
        pytest.skip(f"no PDF at {PDF}: `make pdf` makes it (`make test` too, with chromium)")
    from pypdf import PdfReader

    reader = PdfReader(PDF)
    texts = [re.sub(r"\s+", " ", p.extract_text() or "") for p in reader.pages]
    return reader, texts


def chapter_titles() -> list[str]:
    titles = []
    for f in notebooks.toc_files(REPO):
        md = (REPO / f"{f}.md").read_text(encoding="utf-8")
        titles.append(re.search(r"^# (.+)$", md, re.M).group(1).strip())
    return titles


def image_count(obj, seen=None) -> int:
    """Images drawn by a page or form XObject (forms nest)."""
    seen = set() if seen is None else seen
    res = obj.get("/Resources")
    xobjects = res.get_object().get("/XObject") if res else None
    n = 0
    for ref in (xobjects or {}).values():
        x = ref.get_object()
        key = getattr(ref, "idnum", id(x))
        if x.get("/Subtype") == "/Image":
            n += 1
        elif x.get("/Subtype") == "/Form" and key not in seen:
            seen.add(key)
            n += image_count(x, seen)
    return n


@pytest.mark.browser
def test_page_count(book_pdf):
    reader, _ = book_pdf
    assert PAGES_MIN <= len(reader.pages) <= PAGES_MAX, len(reader.pages)


@pytest.mark.browser
def test_every_chapter_title_is_in_the_text(book_pdf):
    _, texts = book_pdf
    whole = " ".join(texts)
    missing = [t for t in chapter_titles() if t not in whole]
    assert not missing, f"chapter titles not in the PDF's text: {missing}"


@pytest.mark.browser
def test_contents_page_numbers(book_pdf):
    """Each chapter of the contents starts on the page the contents give."""
    _, texts = book_pdf
    contents = texts[1]
    assert contents.startswith("Contents"), contents[:80]
    checked = 0
    for title in chapter_titles()[1:]:
        m = re.search(rf"((?:\d+\. )?){re.escape(title)} (\d+)", contents)
        assert m, f"{title!r} has no page number in the contents: {contents}"
        page = int(m.group(2))
        # the heading as printed, "6. Batch normalization" (appendices: no number)
        assert m.group(1) + title in texts[page - 1], \
            f"{title!r}: the contents say page {page}, which has {texts[page - 1][:80]!r}"
        assert m.group(1) + title not in texts[page - 2] or page - 2 == 1, \
            f"{title!r} already on page {page - 1}"
        checked += 1
    assert checked == len(chapter_titles()) - 1


@pytest.mark.browser
def test_no_raw_tex(book_pdf):
    _, texts = book_pdf
    raw = [n for n, t in enumerate(texts, 1) if "\\(" in t or "\\[" in t or "$$" in t]
    assert not raw, f"raw TeX delimiters on pages {raw}: MathJax did not typeset them"


@pytest.mark.browser
def test_figures_are_there(book_pdf):
    """Every numbered figure's caption, and at least one image drawn per image of the
    single-page HTML (chromium may draw an image once per page it is on)."""
    from bs4 import BeautifulSoup

    reader, texts = book_pdf
    whole = " ".join(texts)
    html = pdftool.root_page(SINGLE).read_text(encoding="utf-8")
    soup = BeautifulSoup(html, "html.parser")
    article = soup.select_one("article.bd-article")
    labels = {re.sub(r"\s+", " ", s.get_text()).strip()
              for s in article.select("figcaption .caption-number")}
    assert len(labels) >= 10, labels
    missing = sorted(lbl for lbl in labels if lbl not in whole)
    assert not missing, f"figures missing from the PDF: {missing}"
    images = [img for img in article.find_all("img")
              if not img.find_parent(class_="mm-controls")]
    per_page = [image_count(p) for p in reader.pages]
    assert sum(per_page) >= len(images), (sum(per_page), len(images))
    chapters_with_images = sum(1 for n in per_page if n)
    assert chapters_with_images >= 15, per_page


@pytest.mark.browser
def test_the_site_carries_the_same_pdf(book_pdf):
    copy = SITE / PDF.name
    assert copy.is_file(), f"{copy}: `make pdf` copies the PDF into the built site"
    assert copy.read_bytes() == PDF.read_bytes()
    intro = pdftool.root_page(SITE)
    links = re.findall(r'<a [^>]*href="([^"]*makemore-part3\.pdf)"', intro.read_text("utf-8"))
    assert links, f"{intro} does not link the PDF"
    assert all((intro.parent / link).resolve() == copy.resolve() for link in links), links


def test_written_pdf_is_readable_by_others(tmp_path):
    """mkstemp makes its file 0600; the PDF is published, so it gets open()'s mode."""
    out = tmp_path / "b.pdf"
    pdftool.write_atomic(b"%PDF", out)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
