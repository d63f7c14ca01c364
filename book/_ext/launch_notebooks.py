"""The launch notebooks: every chapter as a notebook that reads like its page.

A product of the build, written when it finishes (``build-finished``), because only then
do the pages' glue values, figure numbers and cross-references exist. For each notebook
page (``_build/jupyter_execute/<page>.ipynb``, the page as it executed):

- every Markdown cell goes through :mod:`myst_to_jupyter` with a resolver on the built
  Sphinx environment: glue roles become the values the page shows, citations
  "Author (year)" linked to the bibliography, ``{doc}``/``{ref}``/``{numref}``/``{term}``
  links to the published pages, exercises and admonitions quoted Markdown, labels gone;
- a figure's caption follows its cell as Markdown ("**Fig. 6.1.** ...");
- cells the page hides keep their code, folded (``jupyter.source_hidden``);
- the first code cell is the install cell of this version
  (:func:`makemore.runs.release.install_cell`): on Colab it installs exactly this release's
  wheel next to the reader's torch, elsewhere it does nothing.

Written to ``_build/launch/book/<page>.ipynb`` (no outputs: what the release tag carries,
what Colab and Binder open) and, with the page's outputs, over
``_build/html/_sources/book/<page>.ipynb`` (the page's download button), plus all of them
in ``_build/html/notebooks.zip``. Any MyST left in a Markdown cell is a build warning
(an error under ``-W``), and that notebook is not written.

The launch buttons of every page open this version's tag (``v<version>``, which the
publishing workflow creates with the notebooks in it) and its ``.ipynb``.
"""
from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path

import myst_to_jupyter as mj
import nbformat
from sphinx.util import docname_join, logging
from sphinx.util.nodes import clean_astext

logger = logging.getLogger(__name__)
ZIP_NAME = "notebooks.zip"
ZIP_FOLDER = "makemore-part3"


def version() -> str:
    import makemore

    return makemore.__version__


class BuildResolver:
    """:class:`myst_to_jupyter.Resolver` on the built environment of ``app``, for page
    ``docname``; URLs on the published site (``html_baseurl``, else the book's site)."""

    def __init__(self, app, docname: str, glue: dict):
        self.app, self.env, self.docname, self.glue_data = app, app.env, docname, glue
        self.std = self.env.get_domain("std")
        from makemore.runs import release

        self.base = (app.config.html_baseurl or release.SITE).rstrip("/") + "/"

    def url(self, docname: str, anchor: str = "") -> str:
        uri = self.app.builder.get_target_uri(docname)
        return self.base + uri + (f"#{anchor}" if anchor else "")

    def glue(self, key: str) -> dict:
        if key not in self.glue_data:
            raise mj.MystError(f"{self.docname}: no glue value {key!r} (did the page execute?)")
        return self.glue_data[key]["data"]

    def doc(self, target: str) -> tuple[str, str]:
        doc = docname_join(self.docname, target)
        if doc not in self.env.titles:
            raise mj.MystError(f"{self.docname}: {{doc}} target {target!r} is no page")
        return clean_astext(self.env.titles[doc]), self.url(doc)

    def ref(self, label: str) -> tuple[str, str]:
        if label not in self.std.labels:
            raise mj.MystError(f"{self.docname}: {{ref}} label {label!r} has no title")
        doc, anchor, title = self.std.labels[label]
        return title, self.url(doc, anchor)

    def numref(self, label: str) -> tuple[str, str]:
        if label not in self.std.anonlabels:
            raise mj.MystError(f"{self.docname}: {{numref}} label {label!r} is not defined")
        doc, anchor = self.std.anonlabels[label]
        for figtype, numbers in self.env.toc_fignumbers.get(doc, {}).items():
            if anchor in numbers:
                number = ".".join(map(str, numbers[anchor]))
                fmt = self.app.config.numfig_format.get(figtype, f"{figtype.title()} %s")
                return fmt % number, self.url(doc, anchor)
        raise mj.MystError(f"{self.docname}: {label!r} has no number (numfig?)")

    def term(self, term: str) -> str:
        for key in (("term", term.lower()), ("term", term)):
            if key in self.std.objects:
                doc, anchor = self.std.objects[key][:2]
                return self.url(doc, anchor)
        terms = getattr(self.std, "_terms", {})  # Sphinx 7: lower-cased term -> (doc, id)
        if term.lower() in terms:
            return self.url(*terms[term.lower()][:2])
        raise mj.MystError(f"{self.docname}: no glossary term {term!r}")

    def cite(self, key: str) -> tuple[str, str, str]:
        from pybtex.richtext import Text

        domain = self.env.get_domain("cite")
        for c in domain.citations:
            if c.key == key:
                names = [Text.from_latex(" ".join(p.prelast_names + p.last_names))
                         .render_as("text") for p in c.entry.persons.get("author", [])]
                who = (names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2
                       else f"{names[0]} et al.")
                doc = c.bibliography_key.docname
                return who, c.entry.fields.get("year", "n.d."), self.url(doc, c.citation_id)
        raise mj.MystError(f"{self.docname}: no bibliography entry {key!r}")

    def literalinclude(self, path: str, options: dict[str, str]) -> str:
        from sphinx.directives.code import LiteralIncludeReader

        source = Path(self.env.doc2path(self.docname)).parent / path
        opts = {k: (int(v) if k in ("dedent", "lineno-start") else v) for k, v in options.items()
                if k not in ("caption", "name", "class", "emphasize-lines", "linenos")}
        return LiteralIncludeReader(str(source), opts, self.app.config).read()[0]


# The tag of a page's static explorer (makemore.show.interactive.*_static): its frames,
# drawn at build time, stand in on the HTML page for the live widget of the cell before it.
# A launch notebook runs that live widget, so it leaves the static copy out (measured: the
# diagnostics chapter's two static explorers drew their frames in 11 s of its ~40 s).
STATIC_EXPLORER = "static-explorer"


def _hidden(cell) -> bool:
    tags = cell.metadata.get("tags", [])
    return "remove-cell" in tags or "remove-input" in tags


def header(app, docname: str, url: str) -> str:
    """The launch notebook's first cell: which book, version and chapter it is."""
    title = clean_astext(app.env.titles[docname])
    number = ".".join(map(str, app.env.toc_secnumbers.get(docname, {}).get("", ())))
    chapter = f"chapter {number}, " if number else ""
    return (f"*makemore, part 3*, version {version()}: {chapter}[{title}]({url}). Run the "
            f"cells from the top: the first installs the book's package where it is "
            f"missing (Colab), the second sets up the chapter and fetches its trained runs.")


def launch_notebook(nb, resolver, install: str, chapter_url: str, with_outputs=False,
                    first: str = ""):
    """The launch notebook of an executed page ``nb``: ``first`` (Markdown) on top, the
    page's cells converted, ``install`` before its first code cell; without the static
    explorers (:data:`STATIC_EXPLORER`), whose live widgets the notebook has."""
    out = nbformat.v4.new_notebook()
    out.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python",
                                   "name": "python3"}, "language_info": {"name": "python"}}
    cells = [nbformat.v4.new_markdown_cell(first)] if first else []
    installed = False
    for cell in nb.cells:
        if "makemore-install" in cell.metadata.get("tags", []):
            continue  # an install cell the page itself carries: replaced by this version's
        if cell.cell_type == "markdown":
            text = mj.absolute_links(mj.convert(cell.source, resolver), chapter_url)
            if text:
                cells.append(nbformat.v4.new_markdown_cell(text))
            continue
        if cell.cell_type != "code":
            continue
        if STATIC_EXPLORER in cell.metadata.get("tags", []):
            continue  # the page's frames of a live widget the notebook runs itself
        if not installed:
            cells.append(nbformat.v4.new_code_cell(install, metadata={"tags": ["install"]}))
            installed = True
        meta = copy.deepcopy(dict(cell.metadata))
        figure = meta.pop("mystnb", {}).get("figure")
        if _hidden(cell):
            meta["jupyter"] = {"source_hidden": True}
        new = nbformat.v4.new_code_cell(cell.source, metadata=meta)
        if with_outputs:
            new.outputs = [o for o in cell.get("outputs", [])
                           if "scrapbook" not in o.get("metadata", {})]
            new.execution_count = cell.get("execution_count")
        cells.append(new)
        if figure and figure.get("caption"):
            number = resolver.numref(figure["name"])[0] if figure.get("name") else "Figure"
            cells.append(nbformat.v4.new_markdown_cell(
                f"**{number}.** " + mj.convert(figure["caption"].strip(), resolver)))
    for i, cell in enumerate(cells):
        cell["id"] = f"c{i:03d}"
    out.cells = cells
    return out


def _with_cached_outputs(app, nb):
    """``nb`` with its outputs from the execution cache. For a page it takes from the
    cache, myst-nb writes jupyter_execute/<page>.ipynb with every output list empty (seen
    on every page of a clean build whose pages parallel_execute ran); jupyter-cache still
    holds them, matched on the code cells."""
    config = getattr(app.env, "mystnb_config", None)
    if config is None or config.execution_mode != "cache" or not config.execution_cache_path:
        return nb
    from jupyter_cache import get_cache

    try:
        return get_cache(config.execution_cache_path).merge_match_into_notebook(nb)[1]
    except KeyError:  # not in the cache: as myst-nb wrote it
        return nb


def write_notebooks(app, exception) -> None:
    # the HTML site's build only: singlehtml (make pdf) is an html format too, but its
    # pages have no numbers and its links point into the one page
    if exception is not None or app.builder.name != "html":
        return
    from makemore.runs import release

    build = Path(app.outdir).parent
    executed = build / "jupyter_execute"
    launch = build / "launch"
    written = {}
    for docname in sorted(app.env.found_docs):
        nb_path = executed / f"{docname}.ipynb"
        if not nb_path.exists() or not str(app.env.doc2path(docname)).endswith(".md"):
            continue
        glue_path = executed / f"{docname}.glue.json"
        glue = json.loads(glue_path.read_text()) if glue_path.exists() else {}
        nb = _with_cached_outputs(app, nbformat.read(nb_path, as_version=4))
        r = BuildResolver(app, docname, glue)
        try:
            url = r.url(docname)
            pair = [launch_notebook(nb, r, release.install_cell(version()), url, with_outputs=w,
                                    first=header(app, docname, url)) for w in (False, True)]
        except mj.MystError as e:
            logger.warning(f"launch notebook of {docname} not written: {e}", type="launch")
            continue
        left = [x for c in pair[0].cells if c.cell_type == "markdown"
                for x in mj.leftovers(c.source)]
        if left:
            logger.warning(f"launch notebook of {docname} not written: MyST left in it: "
                           f"{left[:5]}", type="launch")
            continue
        for folder, nb_out in ((launch, pair[0]), (Path(app.outdir) / "_sources", pair[1])):
            path = folder / f"{docname}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(nbformat.writes(nb_out) + "\n", encoding="utf-8")
        written[docname] = nbformat.writes(pair[0]) + "\n"
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as z:
        for docname, text in written.items():
            name = f"{ZIP_FOLDER}/{Path(docname).name}.ipynb"
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            z.writestr(info, text)
    for path in (launch / ZIP_NAME, Path(app.outdir) / ZIP_NAME):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.getvalue())
    logger.info(f"launch notebooks: {len(written)} in {launch}")


def launch_ref(app, config) -> None:
    """The launch buttons open this version's tag, which the publishing workflow makes."""
    config.html_theme_options["repository_branch"] = f"v{version()}"


def ipynb_buttons(app, pagename, templatename, context, doctree) -> None:
    """Launch buttons on the ``.ipynb`` of the page (the release tag has it; main does not)."""
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            button["url"] = button["url"].replace(f"{pagename}.md", f"{pagename}.ipynb")


def setup(app):
    app.connect("config-inited", launch_ref)
    app.connect("html-page-context", ipynb_buttons, priority=600)
    app.connect("build-finished", write_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
