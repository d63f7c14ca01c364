"""MyST Markdown -> the Markdown that Jupyter and Colab render (the launch notebooks).

A chapter's Markdown cells are MyST: roles (``{glue:text}`key:.3f```, ``{cite:t}`he2016```,
``{doc}``, ``{ref}``, ``{numref}``, ``{term}``), directives (exercises, solutions,
admonitions, ``literalinclude``) and labels (``(name)=``). JupyterLab and Colab render
none of them. This module rewrites one cell's text into CommonMark + HTML, the way
QuantEcon's sphinx-tojupyter writes its notebooks from a built book: every value the
build computed is filled in, every cross-reference becomes a link to the published page,
and nothing of MyST's own syntax is left (:func:`leftovers` finds what would be).

What each construct needs from the build (a glue value, a label's page and title, a
figure's number, a citation's authors) comes from a :class:`Resolver`;
``book/_ext/launch_notebooks.py`` implements it on top of the built Sphinx environment,
the tests with a dictionary. An unknown role or directive is an error (:class:`MystError`),
never left as raw text.
"""
from __future__ import annotations

import re
from ast import literal_eval
from typing import Protocol

# {name}`content`; a role name is letters, digits and : + . - (``glue:text``, ``cite:t``)
ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:+.-]*)\}`(?P<content>[^`]*)`")
# a directive's opening fence: ```{name} argument   (or ::: with colon_fence)
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*"
                   r"(?P<arg>[^\n]*)$", re.M)
LABEL = re.compile(r"^[ \t]*\((?P<label>[^()\s]+)\)=[ \t]*$\n?", re.M)
COMMENT = re.compile(r"^%[^\n]*$\n?", re.M)  # MyST comment lines
TITLE_TARGET = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)

ADMONITIONS = {"note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
               "warning": "Warning", "caution": "Caution", "attention": "Attention",
               "danger": "Danger", "error": "Error", "seealso": "See also"}


class MystError(ValueError):
    """A MyST construct this converter does not know how to render, or a reference the
    build cannot resolve: the launch notebooks are not written with raw MyST in them."""


class Resolver(Protocol):
    """What the built book knows. URLs are absolute (the published site)."""

    def glue(self, key: str) -> dict:
        """The glued value's MIME bundle (``{"text/plain": ...}``)."""

    def doc(self, target: str) -> tuple[str, str]:
        """A page (``kaiming``, relative to the current page): its (title, url)."""

    def ref(self, label: str) -> tuple[str, str]:
        """A label: the (title, url) of what it names."""

    def numref(self, label: str) -> tuple[str, str]:
        """A numbered label: its ("Fig. 6.2", url); ``%s`` is not used."""

    def term(self, term: str) -> str:
        """The glossary entry's url."""

    def cite(self, key: str) -> tuple[str, str, str]:
        """A bibliography key: (authors as cited, year, url of its entry)."""

    def literalinclude(self, path: str, options: dict[str, str]) -> str:
        """The included code, as the built page shows it."""


def format_plain(text: str, fmt_spec: str) -> str:
    """A glued ``text/plain`` value formatted as ``{glue:text}`` does (myst-nb's
    ``format_plain_text``; repeated here so that the tests need no Sphinx)."""
    try:
        value = literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if fmt_spec == "":
        return str(value)
    kind = fmt_spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, fmt_spec)


def _title_target(content: str) -> tuple[str | None, str]:
    m = TITLE_TARGET.match(content.strip())
    return (m["text"], m["target"].strip()) if m else (None, content.strip())


def _link(text: str, url: str) -> str:
    return f"[{text}]({url})"


def _glue(name: str, content: str, r: Resolver) -> str:
    key, _, fmt = content.rpartition(":") if name == "glue:text" else (content, "", "")
    if name == "glue:text" and not key:  # no format spec: `key`
        key, fmt = content, ""
    key = key.strip()
    data = r.glue(key)
    if name == "glue:md":
        if "text/markdown" not in data:
            raise MystError(f"glue {key!r} has no text/markdown value for {{glue:md}}")
        return convert(str(data["text/markdown"]).strip(), r)
    if "text/plain" not in data:
        raise MystError(f"glue {key!r} has no text/plain value")
    if name in ("glue", "glue:", "glue:any") and "text/markdown" in data:
        return convert(str(data["text/markdown"]).strip(), r)
    return format_plain(str(data["text/plain"]), fmt)


def _cite(name: str, content: str, r: Resolver) -> str:
    keys = [k.strip() for k in content.split(",") if k.strip()]
    cited = [r.cite(k) for k in keys]
    if name == "cite:t":  # He et al. (2016)
        return "; ".join(_link(f"{who} ({year})", url) for who, year, url in cited)
    if name in ("cite:p", "cite"):  # (He et al., 2016; Ioffe and Szegedy, 2015)
        return "(" + "; ".join(_link(f"{who}, {year}", url) for who, year, url in cited) + ")"
    if name == "cite:author":
        return "; ".join(_link(who, url) for who, _, url in cited)
    if name == "cite:year":
        return "; ".join(_link(year, url) for _, year, url in cited)
    raise MystError(f"citation role {{{name}}} is not supported in launch notebooks")


def role(name: str, content: str, r: Resolver) -> str:
    """One role as Markdown."""
    if name.startswith("glue"):
        return _glue(name, content, r)
    if name.startswith("cite"):
        return _cite(name, content, r)
    title, target = _title_target(content)
    if name == "doc":
        text, url = r.doc(target)
        return _link(title or text, url)
    if name == "ref":
        text, url = r.ref(target)
        return _link(title or text, url)
    if name == "numref":
        number, url = r.numref(target)
        if title:  # "Figure %s" / "Figure {number}"
            number = title.replace("%s", number.split()[-1]).replace(
                "{number}", number.split()[-1])
        return _link(number, url)
    if name == "term":
        return _link(title or target, r.term(target))
    if name.startswith("bdg"):  # sphinx-design badge: the word, strongly
        return f"**{content}**"
    if name in ("math",):
        return f"${content}$"
    raise MystError(f"role {{{name}}}`{content}` has no Markdown rendering; add one to "
                    f"book/_ext/myst_to_jupyter.py")


def _options(body: str) -> tuple[dict[str, str], str]:
    """A directive body's ``:key: value`` options (or a YAML ``---`` block) and the rest."""
    opts: dict[str, str] = {}
    lines = body.split("\n")
    if lines and lines[0].strip() == "---":
        import yaml

        end = lines.index("---", 1)
        opts = {k: str(v) for k, v in (yaml.safe_load("\n".join(lines[1:end])) or {}).items()}
        return opts, "\n".join(lines[end + 1:]).strip("\n")
    i = 0
    while i < len(lines) and (m := re.match(r"^:([\w-]+):\s*(.*)$", lines[i])):
        opts[m[1]] = m[2].strip()
        i += 1
    return opts, "\n".join(lines[i:]).strip("\n")


def _quote(title: str, body: str) -> str:
    lines = [f"> **{title}**"] + ([">"] + [f"> {ln}".rstrip() for ln in body.split("\n")]
                                  if body.strip() else [])
    return "\n".join(lines)


def directive(name: str, arg: str, body: str, r: Resolver) -> str:
    """One directive as Markdown/HTML (its body already converted)."""
    opts, body = _options(body)
    arg = convert(arg.strip(), r) if arg.strip() else ""
    if name == "exercise":
        label = opts.get("label")
        number = r.numref(label)[0] if label else "Exercise"
        return _quote(f"{number}" + (f" ({arg})" if arg else ""), body)
    if name == "solution-start":
        number, url = r.numref(arg)
        return f"**Solution to [{number}]({url})**"
    if name == "solution-end":
        return ""
    if name in ADMONITIONS or name == "admonition":
        return _quote(arg if name == "admonition" else ADMONITIONS[name], body)
    if name in ("dropdown", "toggle"):
        return f"<details>\n<summary>{arg or 'Show'}</summary>\n\n{body}\n\n</details>"
    if name == "rubric":
        return f"**{arg}**"
    if name == "math":
        return f"$$\n{body}\n$$"
    if name in ("code-block", "code", "sourcecode"):
        return f"```{arg}\n{body}\n```"
    if name == "literalinclude":
        code = r.literalinclude(arg, opts).rstrip("\n")
        lang = opts.get("language", "python")
        return f"```{lang}\n{code}\n```"
    raise MystError(f"directive {{{name}}} has no Markdown rendering; add one to "
                    f"book/_ext/myst_to_jupyter.py")


def _directives(text: str, r: Resolver) -> str:
    out, pos = [], 0
    while m := FENCE.search(text, pos):
        fence, indent = m["fence"], m["indent"]
        close = re.compile(rf"^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$",
                           re.M)
        end = close.search(text, m.end())
        if not end:
            raise MystError(f"directive {{{m['name']}}} is not closed")
        body = text[m.end() + 1:end.start()]
        if m["name"] not in ("literalinclude", "code-block", "code", "math", "sourcecode"):
            body = _directives(body, r)  # nested directives first
        out.append(text[pos:m.start()])
        rendered = directive(m["name"], m["arg"], body, r)
        out.append("\n".join(indent + ln if ln else ln for ln in rendered.split("\n")))
        pos = end.end()
    out.append(text[pos:])
    return "".join(out)


# left to right: a fenced block, a role, or a code span; only roles are rewritten (a
# `{doc}` written as code is prose about MyST, and a role's backticks are not a span)
_INLINE = re.compile(r"(?P<fenced>^(?P<f>`{3,})[^\n]*\n.*?^(?P=f)[ \t]*$)|"
                     + ROLE.pattern.replace("(?P<", "(?P<role_", 1).replace(
                         "(?P<content>", "(?P<role_content>") + "|"
                     r"(?P<span>(?P<t>`+).+?(?P=t))", re.M | re.S)


def _roles(text: str, r: Resolver) -> str:
    """Every role outside code spans and fenced code."""
    def one(m: re.Match) -> str:
        if m["role_name"]:
            return role(m["role_name"], m["role_content"], r)
        return m.group(0)

    return _INLINE.sub(one, text)


def convert(text: str, r: Resolver) -> str:
    """A Markdown cell's MyST source as CommonMark + HTML: directives rendered, roles
    resolved, labels and comments dropped."""
    text = LABEL.sub("", text)
    text = COMMENT.sub("", text)
    text = _directives(text, r)
    text = _roles(text, r)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def absolute_links(text: str, page_url: str) -> str:
    """Relative links (Markdown and HTML) made absolute against ``page_url``: a notebook
    is opened far from the site its page lives on."""
    from urllib.parse import urljoin

    def fix(url: str) -> str:
        return url if re.match(r"^([a-z][\w+.-]*:|#)", url) else urljoin(page_url, url)

    text = re.sub(r'(href|src)="([^"]+)"', lambda m: f'{m[1]}="{fix(m[2])}"', text)
    return re.sub(r"(\]\()([^()\s]+)(\))", lambda m: m[1] + fix(m[2]) + m[3], text)


def leftovers(text: str) -> list[str]:
    """MyST-only syntax still in a Markdown cell's text (empty: Jupyter renders it all)."""
    found = [m.group(0) for m in FENCE.finditer(text)]
    found += [m.group(0) for m in _INLINE.finditer(text) if m["role_name"]]
    found += [m.group(0).strip() for m in LABEL.finditer(text)]
    found += [m.group(0) for m in re.finditer(r"\{\{[^{}]*\}\}", text)]  # substitutions
    found += [m.group(0) for m in re.finditer(r"^\$\$[ \t]*\([\w:.-]+\)[ \t]*$", text, re.M)]
    return found
