"""Write each inline ``<script>`` of a page once.

sphinx-thebe (which Jupyter Book always loads) registers an inline script that declares
``const THEBE_JS_URL`` after the HTML builder is initialized. Sphinx 7.4 then puts it
into every page twice: once as registered (file name ``None``) and once more when
``prepare_writing`` re-adds the late assets (file name ``''``), which its duplicate
check does not recognize as the same script. The second copy throws "Identifier
'THEBE_JS_URL' has already been declared" in every reader's console.

This drops the repeats from the page's ``script_files``, comparing a script by its file
name (``None`` and ``''`` alike) and attributes, inline body included.

Upstream: sphinx-doc/sphinx#13402 ("Sphinx.add_js_file(): replace ``None`` filename with
``''`` before passing to HTML builder"), released in Sphinx 8.2.2 (2025-03-02): "Ensure
inline <script/> tags are written exactly once". Jupyter Book 1.x pins ``sphinx~=7.0``
and Sphinx 7.4.7 is the last 7.x, so the book needs this until it builds with Sphinx
8.2.2 or newer; then delete this file and its line in ``_config.yml``.
``tests/test_book_cache.py::test_dedupe_scripts_is_still_needed`` fails on that day.
"""
from __future__ import annotations

from sphinx.application import Sphinx


def _key(script) -> tuple:
    if not hasattr(script, "filename"):  # a plain file name
        return (str(script), ())
    attrs = getattr(script, "attributes", {}) or {}
    return (script.filename or "", tuple(sorted((k, str(v)) for k, v in attrs.items())))


def dedupe(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    if len(unique) != len(scripts):
        context["script_files"] = unique


def setup(app: Sphinx) -> dict:
    # late (priority > 500): after every extension that adds scripts to the page
    app.connect("html-page-context", dedupe, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
