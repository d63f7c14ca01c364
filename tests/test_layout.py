"""The package's folders show its layers (issue 30): the lecture's own code at the top,
each support layer in a subpackage, and every import running downwards only."""
import ast
from pathlib import Path

import makemore

PACKAGE = Path(makemore.__file__).resolve().parent

# lower rank = lower layer; a module may import its own layer and the ones below it
RANK = {"": 0, "engine": 1, "runs": 2, "analysis": 3, "show": 4}
LECTURE = {"data", "nn", "models", "train", "sample"}
ENTRY_POINTS = {"__init__", "__main__", "book"}  # the package, the CLI, the setup cell
# the process's environment (MAKEMORE_* variables, OS errors in words): read by the
# lecture's data.py and every layer above it, so it sits at the bottom, beside it
ENVIRONMENT = {"env"}


def layer_of(module: str) -> str:
    """'makemore.engine.fast' -> 'engine'; a top-level module -> ''."""
    parts = module.split(".")[1:]
    return parts[0] if parts and parts[0] in RANK else ""


def imports_of(path: Path, source: str | None = None) -> set[str]:
    """Every makemore module that ``path`` (or ``source`` read as that file) imports, as
    an absolute dotted name."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "makemore":
                continue
            for alias in node.names:  # `from . import x` may name a module
                sub = f"{mod}.{alias.name}"
                found.add(sub if (PACKAGE.parent / sub.replace(".", "/")).exists()
                          or (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists()
                          else mod)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "makemore"}
    return found


def test_the_lecture_code_is_the_top_level_of_the_package():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == LECTURE | ENTRY_POINTS | ENVIRONMENT, "a support module belongs in a subpackage"
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} == set(RANK) - {""}


def file_of(module: str) -> Path:
    path = PACKAGE.parent / module.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def upward(me: str, source: str | None = None) -> list[str]:
    """The imports of module ``me`` that run up a layer. A leaf -- a module that imports
    nothing of the package, such as ``show.tables`` (Markdown tables from rows) -- may be
    imported from any layer: it cannot pull an upper layer in."""
    return [other for other in imports_of(file_of(me), source)
            if RANK[layer_of(other)] > RANK[layer_of(me)] and imports_of(file_of(other))]


def test_imports_run_downwards_only():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if path.stem in ENTRY_POINTS and path.parent == PACKAGE:
            continue
        wrong += [f"{me} imports {other}" for other in upward(me)]
    assert not wrong, "imports that run upwards:\n" + "\n".join(wrong)


def test_the_layer_check_sees_an_upward_import():
    """The check above can fail: fold.py drawing its figure again (it once imported
    ``plots``), or a layer importing a figure module, is caught."""
    src = file_of("makemore.engine.fold").read_text()
    assert upward("makemore.engine.fold", src) == []
    bad = src + "\n\ndef f():\n    from ..show import plots\n"
    assert upward("makemore.engine.fold", bad) == ["makemore.show.plots"]
    bad = "from ..show.lecture import VIDEO\n"
    assert upward("makemore.analysis.initialization", bad) == ["makemore.show.lecture"]
    assert upward("makemore.analysis.outcomes", "from ..show import tables\n") == []  # a leaf


def test_training_modules_exist():
    for rel in makemore.TRAINING_MODULES:
        assert (PACKAGE / rel).is_file(), rel
