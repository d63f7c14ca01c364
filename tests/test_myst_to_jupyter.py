"""MyST -> the Markdown Jupyter and Colab render (book/_ext/myst_to_jupyter.py), with a
made-up build: every construct the chapters use comes out as CommonMark/HTML with the
build's values and links, and anything unknown is an error, never raw MyST."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))
import myst_to_jupyter as mj  # noqa: E402

SITE = "https://site.test/book/"


class Build:
    """A built book in miniature: what the resolver on Sphinx's environment returns."""

    glued = {"loss": {"text/plain": "2.0912345"}, "n": {"text/plain": "32033"},
             "name": {"text/plain": "'emma'"},
             "top5": {"text/plain": "'aeinr'", "text/markdown": "`a`, `e` and {term}`BatchNorm`"}}

    def glue(self, key):
        if key not in self.glued:
            raise mj.MystError(f"no glue {key}")
        return self.glued[key]

    def doc(self, target):
        return {"kaiming": ("Kaiming initialization", SITE + "kaiming.html")}[target]

    def ref(self, label):
        assert label == "batchnorm-resnet"
        return "BatchNorm in a ResNet", SITE + "batchnorm.html#bn-res"

    def numref(self, label):
        return {"fig-a": ("Fig. 6.2", SITE + "batchnorm.html#fig-a"),
                "ex-zero": ("Exercise 11.1", SITE + "exercises.html#ex-zero")}[label]

    def term(self, term):
        return SITE + "glossary.html#term-" + term.lower()

    def cite(self, key):
        bib = SITE + "bibliography.html"
        return {"he2016deep": ("He et al.", "2016", bib + "#id3"),
                "ioffe2015batch": ("Ioffe and Szegedy", "2015", bib + "#id4")}[key]

    def literalinclude(self, path, options):
        assert path == "../code/makemore/nn.py" and options == {"pyobject": "Tanh"}
        return "class Tanh:\n    pass\n"


def convert(text: str) -> str:
    out = mj.convert(text, Build())
    assert mj.leftovers(out) == [], out
    return out


def test_glue_roles_become_the_built_values():
    assert convert("loss {glue:text}`loss:.3f`, {glue:text}`n:,` names") == \
        "loss 2.091, 32,033 names"
    assert convert("{glue:text}`name`") == "emma"
    assert convert("top {glue:md}`top5`.") == \
        f"top `a`, `e` and [BatchNorm]({SITE}glossary.html#term-batchnorm)."
    assert convert("{glue:}`n`") == "32033"


def test_citations_are_author_year_linked_to_the_bibliography():
    assert convert("{cite:t}`he2016deep` showed") == \
        f"[He et al. (2016)]({SITE}bibliography.html#id3) showed"
    assert convert("a layer {cite:p}`ioffe2015batch,he2016deep`") == (
        f"a layer ([Ioffe and Szegedy, 2015]({SITE}bibliography.html#id4); "
        f"[He et al., 2016]({SITE}bibliography.html#id3))")


def test_cross_references_become_links_to_the_published_pages():
    assert convert("{doc}`kaiming`") == f"[Kaiming initialization]({SITE}kaiming.html)"
    assert convert("{doc}`the previous chapter <kaiming>`") == \
        f"[the previous chapter]({SITE}kaiming.html)"
    assert convert("{ref}`batchnorm-resnet`") == \
        f"[BatchNorm in a ResNet]({SITE}batchnorm.html#bn-res)"
    assert convert("({numref}`fig-a`)") == f"([Fig. 6.2]({SITE}batchnorm.html#fig-a))"
    assert convert("{numref}`Figure %s <fig-a>`") == f"[Figure 6.2]({SITE}batchnorm.html#fig-a)"
    assert convert("{term}`saturated <Saturation>`") == \
        f"[saturated]({SITE}glossary.html#term-saturation)"


def test_labels_and_comments_go_code_stays():
    text = "(chapter-x)=\n# Title\n\n% a comment\nUse `{doc}` roles; ``{glue:text}`x` ``.\n"
    assert convert(text) == "# Title\n\nUse `{doc}` roles; ``{glue:text}`x` ``."
    fenced = "```python\nprint('{doc}`x`')\n```"
    assert convert(fenced) == fenced
    assert mj.leftovers(convert("$$\nx = \\text{fan-in}\n$$")) == []


def test_exercises_solutions_and_admonitions_become_markdown():
    ex = convert("```{exercise} Zero init\n:label: ex-zero\n\nInit **all** to 0.\n\n"
                 "Then {doc}`kaiming`.\n```")
    assert ex == ("> **Exercise 11.1 (Zero init)**\n>\n> Init **all** to 0.\n>\n"
                  f"> Then [Kaiming initialization]({SITE}kaiming.html).")
    assert convert("```{solution-start} ex-zero\n:class: dropdown\n```\n\ntext\n\n"
                   "```{solution-end}\n```") == \
        f"**Solution to [Exercise 11.1]({SITE}exercises.html#ex-zero)**\n\ntext"
    assert convert(":::{note}\nA {term}`gain`.\n:::") == \
        f"> **Note**\n>\n> A [gain]({SITE}glossary.html#term-gain)."
    assert convert("````{admonition} Why\n```{tip}\nnested\n```\n````") == \
        "> **Why**\n>\n> > **Tip**\n> >\n> > nested"
    assert convert("```{rubric} Notes\n```") == "**Notes**"
    assert convert("{bdg-danger}`FAIL`") == "**FAIL**"


def test_literalinclude_shows_the_code_the_page_shows():
    assert convert("```{literalinclude} ../code/makemore/nn.py\n:pyobject: Tanh\n```") == \
        "```python\nclass Tanh:\n    pass\n```"


def test_unknown_syntax_is_an_error_not_raw_text():
    with pytest.raises(mj.MystError, match="role"):
        mj.convert("{eq}`energy`", Build())
    with pytest.raises(mj.MystError, match="directive"):
        mj.convert("```{mermaid}\ngraph\n```", Build())
    with pytest.raises(mj.MystError, match="not closed"):
        mj.convert("```{note}\nopen", Build())
    with pytest.raises(mj.MystError):
        mj.convert("{glue:text}`missing:.2f`", Build())


def test_leftovers_finds_what_jupyter_would_show_raw():
    text = "(lab)=\n{doc}`x` {{ sub }}\n```{note}\nx\n```\n$$ (eq-a)\n"
    found = mj.leftovers(text)
    assert {"(lab)=", "{doc}`x`", "{{ sub }}", "```{note}", "$$ (eq-a)"} <= set(found), found
    assert mj.leftovers("plain `{doc}` in code, $\\text{fan-in}$") == []


def test_relative_links_become_absolute():
    page = SITE + "intro.html"
    out = mj.absolute_links('<a href="../notebooks.zip" download>z</a> [k](kaiming.html#a) '
                            '[w](https://x.org) [s](#top)', page)
    assert out == ('<a href="https://site.test/notebooks.zip" download>z</a> '
                   f'[k]({SITE}kaiming.html#a) [w](https://x.org) [s](#top)')
