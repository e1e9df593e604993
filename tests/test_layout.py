"""The package's layout rules (docs/architecture.rst): no import cycles, small modules, short functions.

Imports are read from the source with :mod:`ast`, including imports inside
functions (a deferred import still ties two modules together). A cycle is
reported both between modules and between the units of the layout: the
subpackages (``model``, ``simulation``, ...) and the top-level modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "brian_dendrite"

#: A module longer than this should be split by what it holds.
MAX_MODULE_LINES = 600
#: A function longer than this (code lines, without its docstring) needs a reason written beside it:
#: a comment starting with ``# long:`` on the line of its ``def`` or the line above it.
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    # "from pkg import sub" imports the submodule pkg.sub when it is one
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its source)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                targets.update(_resolve(name, path.name == "__init__.py", node))
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_between_modules():
    graph = import_graph()
    # a package's __init__ re-exporting its own modules is not a cycle of the design
    graph = {m: {t for t in ts if not (m != "brian_dendrite" and t.startswith(m + "."))} for m, ts in graph.items()}
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_between_subpackages():
    units: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        if module == "brian_dendrite":
            continue  # the top-level __init__ gathers the public API from everywhere
        u = _unit(module)
        units.setdefault(u, set()).update(_unit(t) for t in targets if _unit(t) not in (u, "brian_dendrite"))
    cycle = _find_cycle(units)
    assert cycle is None, "import cycle between parts of the layout: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("module", sorted(_modules()))
def test_module_size(module):
    lines = _modules()[module].read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines (limit {MAX_MODULE_LINES}): split it by what it holds"


def _long_functions(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.split("\n")
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.body[0]
        skip = 0
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            skip = first.end_lineno - first.lineno + 1
        length = node.end_lineno - node.lineno + 1 - skip
        start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        reason = any("# long:" in lines[i - 1] for i in (start - 1, node.lineno) if i >= 1)
        if length > MAX_FUNCTION_LINES and not reason:
            out.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    return out


@pytest.mark.parametrize("module", sorted(_modules()))
def test_function_length(module):
    long = _long_functions(_modules()[module])
    assert not long, (f"functions over {MAX_FUNCTION_LINES} lines without a '# long:' reason beside them: "
                      + ", ".join(long))


def test_every_subpackage_is_installed():
    """setup.cfg lists the packages explicitly (the model files are mapped in): a new subpackage must be added."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(PACKAGE.parent / "setup.cfg")
    listed = {line.strip() for line in cfg["options"]["packages"].splitlines() if line.strip()}
    on_disk = {".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")}
    missing = on_disk - listed
    assert not missing, f"setup.cfg [options] packages does not list {sorted(missing)}: they would not be installed"
