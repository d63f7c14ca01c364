"""Check every external link of the book: Sphinx's ``linkcheck`` builder.

    python tools/linkcheck.py      # `make linkcheck`; report in _build/linkcheck/output.txt

It needs the network, so it is never part of `make test`; the scheduled workflow
``.github/workflows/linkcheck.yml`` runs it every week (and on demand). The chapters
are read, not executed (``nb_execution_mode: off``): a link check must not wait for the
pages to run, and the links are in the prose and the bibliography, not in the outputs.
It builds into its own folder, so neither the site nor its execution cache is touched.

:data:`FLAKY` lists the hosts whose answers say little about the link, and why; they are
not checked. Everything else must answer (redirects are reported, not failures).
Exit status: 0 when no link is broken, 1 otherwise, 2 when the build itself failed.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "_build" / "linkcheck"

# URL pattern (a regular expression, as linkcheck_ignore takes) -> why it is not checked
FLAKY: dict[str, str] = {
    r"^https://makemore-book\.github\.io/makemore-part3/":
        "the book's own site: the build checks its local links itself "
        "(tests/test_browser.py), and a page or bundle new in this version is not "
        "published until this version is",
    r"^https://www\.youtube\.com/watch":
        "YouTube answers requests from CI runners with a cookie-consent page or HTTP 429, "
        "and answers 200 for videos that were taken down",
}

SETTINGS = {
    "linkcheck_ignore": list(FLAKY),
    "linkcheck_timeout": 30,
    "linkcheck_retries": 3,  # one more chance for a slow or overloaded host
    "linkcheck_workers": 4,
    # GitHub renders a file's #anchors with JavaScript: not in the HTML linkcheck reads
    "linkcheck_anchors_ignore_for_url": [r"^https://github\.com/"],
    # unexecuted pages have no glued values (and no glued figures to refer to): the
    # HTML build checks those, with -W
    "suppress_warnings": ["mystnb.glue", "ref.ref"],
}


def main() -> int:
    from jupyter_book.sphinx import build_sphinx

    for pattern, why in FLAKY.items():
        print(f"linkcheck: not checked: {pattern} -- {why}")
    overrides = {"nb_execution_mode": "off", "latex_individualpages": False, **SETTINGS}
    result = build_sphinx(REPO, OUT, path_config=REPO / "_config.yml", noconfig=True,
                          confoverrides=overrides, builder="linkcheck",
                          doctreedir=OUT / ".doctrees", freshenv=True)
    if isinstance(result, Exception):
        print(f"linkcheck: the build failed: {result}", file=sys.stderr)
        return 2
    print(f"linkcheck: report in {OUT / 'output.txt'}")
    return 1 if result else 0


if __name__ == "__main__":
    sys.exit(main())
