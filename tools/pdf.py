"""The whole book as one PDF: the single-page HTML printed by Debian's chromium.

    jupyter-book build . --builder singlehtml     # -> _build/singlehtml/index.html
    python tools/pdf.py                           # -> _build/pdf/makemore-part3.pdf

``make pdf`` runs both. Why chromium and not LaTeX: the pages are HTML first (MyST
Markdown tables, the static explorers, glued numbers, sphinx-exercise boxes), and
chromium prints exactly what a reader of the site sees, math typeset by the site's own
offline MathJax; the LaTeX path (``--builder pdflatex``) needs a TeX installation of
several hundred MB and drops or mangles HTML outputs. Jupyter Book's own
``--builder pdfhtml`` cannot be used: it downloads a browser. Here Playwright drives
``shutil.which("chromium")`` and every request off 127.0.0.1 is refused.

What the PDF holds, beyond the page itself:

- a title page (title, author, version, where the site is) and a table of contents
  whose entries link to their chapters and carry page numbers. Chromium cannot compute
  page numbers in CSS (no ``target-counter``), so the book is printed twice: the first
  print's bookmarks say on which page each chapter landed, the numbers are filled in
  (boxes of a fixed width: the layout does not move), and a freshly loaded page is
  printed again; the tool checks that the second print puts every chapter where its
  contents say, and refuses the PDF otherwise. What made the numbers move between prints
  on the whole book was blocks taller than a page that the print styles keep whole (see
  ``FIT_JS``); the page is laid out at the printed width, and those may break;
- PDF bookmarks (the outline) from the headings, a page number in every footer;
- solutions that the site folds away are printed open; the interactive sections print
  their first frame (their controls are hidden), as does every other figure with its
  numbered caption.

The PDF is written to a temporary file beside the target and renamed into place, so a
failed run never leaves a half-written PDF.
"""
from __future__ import annotations

import argparse
import functools
import html
import io
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "singlehtml"
OUT = REPO / "_build" / "pdf" / "makemore-part3.pdf"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
PRINTS = 3  # the contents' numbers must hold after at most this many prints
PLACEHOLDER = "000"  # a TOC page number before the first print: as wide as the real ones
MARGIN = {"top": "18mm", "bottom": "20mm", "left": "18mm", "right": "18mm"}
# A4's printable area in CSS px (96 per inch): the page is laid out at this width before
# it is printed, so that what the browser measures there is what the print gets
PX_PER_MM = 96 / 25.4
PRINT_WIDTH = round((210 - 18 - 18) * PX_PER_MM)
PRINT_HEIGHT = int((297 - 18 - 20) * PX_PER_MM)
FOOTER = ('<div style="font-size:8pt;width:100%;text-align:center;color:#555">'
          '<span class="pageNumber"></span></div>')


class PdfError(Exception):
    """Something the user can fix; the message says what."""


# ---------------------------------------------------------------------------
# the page as printed: title page, contents, print styles (run in the browser)

PRINT_CSS = Path(__file__).with_name("pdf.css").read_text(encoding="utf-8")

# Runs in the printed page. The theme prints a contents list of its own
# (#jb-print-docs-body: the book's parts and numbered chapters, linked to
# #document-<page> markers); this puts a title page before it, points each entry at
# its chapter's <section> (the marker is an empty <span> just before it, which a page
# break would leave behind on the previous page), gives each entry a page number
# placeholder, opens what the site folds away, and turns links that only work on the
# site into links to the published site (or plain text). Returns the entries' targets.
PREPARE_JS = r"""(meta) => {
  const here = new URL(document.baseURI);
  const body = document.querySelector("#jb-print-docs-body");
  if (!body) { return []; }
  const title = document.createElement("section");
  title.className = "mm-pdf-title";
  title.innerHTML = meta.title_html;
  body.before(title);
  const ids = [];
  body.querySelectorAll("#jb-print-toc a[href^='#']").forEach(a => {
    const marker = document.getElementById(decodeURIComponent(a.hash.slice(1)));
    const section = marker && (marker.tagName === "SECTION" ? marker :
                               marker.nextElementSibling);
    if (!section || section.tagName !== "SECTION" || !section.id) { return; }
    section.classList.add("mm-chapter");
    a.setAttribute("href", "#" + section.id);
    const page = document.createElement("span");
    page.className = "mm-toc-page";
    page.dataset.for = section.id;
    page.textContent = meta.placeholder;
    a.after(page);
    const heading = section.querySelector("h1, h2, h3");
    ids.push([section.id, heading ? heading.textContent : a.textContent]);
  });
  // printed open: solutions and other dropdowns (sphinx-togglebutton), <details>
  document.querySelectorAll("details").forEach(d => d.open = true);
  document.querySelectorAll(".toggle-hidden").forEach(e => e.classList.remove("toggle-hidden"));
  // links: to an element of this page -> #id; to a file of the site -> the published
  // site; anything else local (another page of the HTML build) -> plain text
  document.querySelectorAll("a[href]").forEach(a => {
    const url = new URL(a.getAttribute("href"), here);
    if (url.origin !== here.origin) { return; }
    const id = decodeURIComponent(url.hash.slice(1));
    if (id && document.getElementById(id)) { a.setAttribute("href", "#" + id); return; }
    const path = url.pathname.replace(/^\/+/, "");
    if (/^_(downloads|images)\//.test(path)) { a.setAttribute("href", meta.site + path); return; }
    a.removeAttribute("href");
  });
  // The PDF's bookmarks come from the headings. The single page gives the introduction
  // an <h1>, its sections and the chapters' titles an <h2> alike: the introduction's
  // title becomes an <h2> and its own sections <h3>s, so that the bookmarks list the
  // introduction and the chapters side by side, each with its sections under it. The
  // contents' part captions are no headings there.
  const retag = (el, tag) => {
    const h = document.createElement(tag);
    for (const attr of el.attributes) { h.setAttribute(attr.name, attr.value); }
    h.innerHTML = el.innerHTML;
    el.replaceWith(h);
  };
  const intro = document.querySelector("article.bd-article > section");
  if (intro) {
    intro.querySelectorAll(":scope > section > h2").forEach(h => retag(h, "h3"));
    const h1 = intro.querySelector(":scope > h1");
    if (h1) { retag(h1, "h2"); }
  }
  body.querySelectorAll("[role=heading]").forEach(e => {
    e.removeAttribute("role");
    e.removeAttribute("aria-level");
  });
  document.documentElement.classList.add("mm-pdf");
  return ids;
}"""

# Runs in the printed page, laid out at the printed width. pdf.css and the theme's own
# print styles keep code cells, outputs, tables and figures whole (``break-inside:
# avoid``), which chromium can honour only for a block that fits on a page. For a longer
# one (the BatchNorm1d class, 70 lines) no break is valid, and chromium's fallback
# depends on the page's earlier layouts: the same page printed twice put the heading
# before that class at the foot of one page, then alone on a page of its own, and every
# later chapter one page further (170 and 171 pages by turns). Every element that avoids
# breaks inside and is taller than a page may break (``mm-tall``); the rest keep whole.
# Returns how many were released. Not every variation is gone: 1 of 7 runs of this tool
# on the whole book still put that heading one page later, with the same page for every
# chapter (a chapter starts on a page of its own, which absorbs it); the contents are
# checked against each final print all the same.
FIT_JS = """(height) => {
  let n = 0;
  document.querySelectorAll("body *").forEach(e => {
    const inside = getComputedStyle(e).breakInside;
    if (inside !== "auto" && e.getBoundingClientRect().height > height) {
      e.classList.add("mm-tall");
      n++;
    }
  });
  return n;
}"""

FILL_JS = """(pages) => {
  document.querySelectorAll(".mm-toc-page").forEach(
      e => { if (e.dataset.for in pages) e.textContent = String(pages[e.dataset.for]); });
}"""


def title_html(title: str, author: str, version: str, url: str) -> str:
    """The title page's inner HTML (escaped; no heading, so that the bookmarks start
    with the contents)."""
    e = html.escape
    return (f"<p class='mm-pdf-book-title'>{e(title)}</p>"
            f"<p class='mm-pdf-author'>{e(author)}</p>"
            f"<p class='mm-pdf-version'>Version {e(version)}</p>"
            f"<p class='mm-pdf-url'>Read online, run every chapter as a notebook: "
            f"<a href='{e(url)}'>{e(url)}</a></p>")


def book_meta(root: Path = REPO) -> dict:
    """Title, author and site URL from ``_config.yml``; the package's version (read,
    not imported: no torch for a title page)."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    init = (root / "code" / "makemore" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__ = "([^"]+)"', init, re.M)
    if m is None:
        raise PdfError(f"no __version__ = \"...\" in {root / 'code/makemore/__init__.py'}")
    version = m.group(1)
    url = (config.get("html") or {}).get("baseurl") or \
        (config.get("repository") or {}).get("url", "")
    return {"title": config["title"], "author": config.get("author", ""),
            "version": version, "url": url}


# ---------------------------------------------------------------------------
# reading the PDF back: on which page did each link land


def _key(title: str) -> str:
    """A heading's text as letters and digits only: the page's "1. The data#" and the
    bookmark's "1. The data" (whose line breaks lost their spaces) meet there."""
    return re.sub(r"[^0-9a-z]", "", title.lower())


def chapter_pages(pdf: bytes, chapters: list) -> dict[str, int]:
    """The page each chapter starts on, ``{id: page}``, for ``chapters`` as
    ``[(element id, heading text)]``: from the PDF's named destination for the id, else
    from the bookmark with the chapter's heading. Chromium keeps no destination for most
    anchors of a long document (this book at 170 pages: 12 of them, none a chapter's), but
    its bookmarks, made from the headings, always point at their page."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    named = {name.lstrip("/"): reader.get_destination_page_number(dest) + 1
             for name, dest in reader.named_destinations.items()}
    marks: dict[str, int] = {}

    def walk(entries):
        for e in entries:
            if isinstance(e, list):
                walk(e)
            else:
                marks.setdefault(_key(e.title), reader.get_destination_page_number(e) + 1)
    walk(reader.outline)
    pages, missing = {}, []
    for cid, title in chapters:
        page = named.get(cid) or marks.get(_key(title))
        if page is None:
            missing.append(cid)
        else:
            pages[cid] = page
    if missing:
        raise PdfError(f"the PDF has neither a destination nor a bookmark for the chapters "
                       f"{missing}: is the contents' link to them missing?")
    return pages


# ---------------------------------------------------------------------------
# printing


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (a free port) while the block runs; MathJax
    loads its fonts and extensions by URL, which a ``file://`` page may not."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def find_chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        raise PdfError("Debian's chromium is not installed: `apt-get install chromium` "
                       "(the PDF is printed by it; no browser is ever downloaded)")
    return exe


def root_page(html_dir: Path) -> Path:
    """The single page: Jupyter Book writes it as ``<root doc>.html`` (``book/intro.html``)
    and an ``index.html`` that only redirects there."""
    index = html_dir / "index.html"
    if not index.exists():
        raise PdfError(f"no single-page HTML at {index}: run "
                       f"`jupyter-book build . --builder singlehtml` first (or `make pdf`)")
    m = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"',
                  index.read_text(encoding="utf-8"), re.I)
    page = (html_dir / m.group(1)).resolve() if m else index
    if html_dir.resolve() not in page.parents or not page.exists():
        raise PdfError(f"{index} redirects to {m.group(1)}, which is not in {html_dir}")
    return page


def print_book(html_dir: Path, meta: dict, log=print) -> tuple[bytes, dict[str, int]]:
    """Print ``html_dir/index.html``; return the PDF and ``{chapter id: page}``."""
    from playwright.sync_api import sync_playwright

    index = root_page(html_dir)
    exe = find_chromium()
    with serve(html_dir) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(
                color_scheme="light",
                viewport={"width": PRINT_WIDTH, "height": PRINT_HEIGHT})
            blocked: list[str] = []

            # The page is served at the site's root: Sphinx's singlehtml builder writes
            # a page from a sub-folder (book/intro.html) with links relative to the root
            # (`_static/...`, `book/intro.html#id`), which only resolve from there.
            at = url + "_book.html"

            def route(r):
                if r.request.url.split("#")[0] == at:
                    r.fulfill(body=index.read_bytes(), content_type="text/html; charset=utf-8")
                elif r.request.url.startswith(url) or r.request.url.startswith("data:"):
                    r.continue_()
                else:  # the PDF is made from the site's own files only
                    blocked.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            errors: list[str] = []

            def ready(pages: dict[str, int]):
                """A freshly loaded page, prepared for print, ``pages`` in its contents."""
                page = context.new_page()
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(at, wait_until="load", timeout=120_000)
                page.emulate_media(media="print")
                _wait_for_math(page)
                if PRINT_CSS:
                    page.add_style_tag(content=PRINT_CSS)
                ids = page.evaluate(PREPARE_JS, {
                    "placeholder": PLACEHOLDER, "site": meta["url"],
                    "title_html": title_html(meta["title"], meta["author"], meta["version"],
                                             meta["url"])})
                if not ids:
                    raise PdfError(f"{index}: no contents with chapters found (the theme's "
                                   f"#jb-print-toc, linked to each chapter)")
                page.evaluate("() => document.fonts.ready")
                _wait_for_images(page)
                tall = page.evaluate(FIT_JS, PRINT_HEIGHT * 0.9)
                page.evaluate(FILL_JS, pages)
                return page, ids, tall

            # Print, read where the chapters landed, fill the numbers in (as wide as the
            # placeholder: nothing moves), print again and check. Each print is of a page
            # loaded afresh: printing the same page twice does not always lay it out the
            # same (FIT_JS), and a fresh one has no earlier print to remember.
            pages: dict[str, int] = {}
            for prints in range(1, PRINTS + 1):
                page, ids, tall = ready(pages)
                pdf = page.pdf(format="A4", margin=MARGIN, print_background=True,
                               display_header_footer=True, header_template="<div></div>",
                               footer_template=FOOTER, outline=True, tagged=True)
                page.close()
                found = chapter_pages(pdf, ids)
                if found == pages:
                    break
                log(f"pdf: print {prints}: the chapters start on pages "
                    f"{sorted(found.values())}")
                pages = found
            else:
                raise PdfError(f"the contents' page numbers did not settle in {PRINTS} "
                               f"prints: the last two put the chapters on different pages")
            if errors:
                raise PdfError(f"script errors on the page: {errors[:3]}")
            if blocked:
                log(f"pdf: refused {len(blocked)} request(s) off 127.0.0.1, e.g. {blocked[0]}")
            log(f"pdf: {len(ids)} chapters, printed {prints} times; {tall} block(s) taller "
                f"than a page may break")
            return pdf, pages
        finally:
            browser.close()


def _wait_for_math(page) -> None:
    """MathJax's first typesetting pass, when the page loads MathJax at all."""
    if page.evaluate("() => !!document.querySelector('script[src*=mathjax]')"):
        page.wait_for_function("() => window.MathJax && MathJax.startup && "
                               "MathJax.startup.promise", timeout=60_000)
        page.evaluate("() => MathJax.startup.promise")
        left = page.evaluate("() => document.querySelectorAll('.math').length - "
                             "document.querySelectorAll('mjx-container').length")
        if left > 0:
            raise PdfError(f"MathJax left {left} formula(s) untypeset")


def _wait_for_images(page) -> None:
    broken = page.evaluate("""async () => {
      const imgs = Array.from(document.images);
      await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
        i.addEventListener('load', r); i.addEventListener('error', r); })));
      // decoded too, so that printing does not lay out an image still being decoded
      await Promise.all(imgs.map(i => i.decode().catch(() => null)));
      return imgs.filter(i => i.naturalWidth === 0 && i.getClientRects().length)
                 .map(i => i.src.slice(0, 80));
    }""")
    if broken:
        raise PdfError(f"{len(broken)} image(s) did not load: {broken[:3]}")


def write_atomic(data: bytes, out: Path) -> None:
    """``out`` holds ``data`` completely or is left as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would: the site serves it
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", type=Path, default=HTML,
                    help="the single-page HTML build (default: _build/singlehtml)")
    ap.add_argument("--out", type=Path, default=OUT, help="the PDF (default: %(default)s)")
    ap.add_argument("--site", type=Path, default=None,
                    help="also copy the PDF into this built site (its introduction links "
                         "../<name>.pdf); skipped, with a note, when it has no index.html")
    args = ap.parse_args(argv)
    try:
        out = args.out.resolve()
        if out.exists() and out.is_dir():
            raise PdfError(f"{out} is a folder: give the PDF's file name")
        pdf, pages = print_book(args.html.resolve(), book_meta())
        write_atomic(pdf, out)
        if args.site is not None:
            if (args.site / "index.html").exists():
                write_atomic(pdf, args.site / out.name)
            else:
                print(f"pdf: no built site in {args.site}: the PDF is not copied into it")
    except PdfError as e:
        print(f"pdf: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"pdf: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    from pypdf import PdfReader

    n = len(PdfReader(io.BytesIO(pdf)).pages)
    print(f"pdf: wrote {out} ({n} pages, {len(pdf) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
