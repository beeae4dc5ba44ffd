"""The architecture as the imports draw it: `evals -> agent -> tools, prompts`, no import circles,
and only namespaced imports (`treefix.agent`, never a bare `agent` that would collide in site-packages)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "tools", "evals", "prompts")
# what each installed package may import from treefix (itself always)
ALLOWED = {
    "prompts": set(),
    "tools": {"prompts"},
    "agent": {"tools", "prompts"},
    "evals": {"agent", "tools", "prompts"},
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return "treefix." + ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, function-level imports included, TYPE_CHECKING blocks not."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


SOURCES = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def test_no_bare_top_level_imports_anywhere():
    files = [*SOURCES.values(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    bare = sorted(
        f"{p.relative_to(ROOT)}: {name}"
        for p in files
        for name in _imports(p)
        if name.split(".")[0] in PACKAGES
    )
    assert not bare, bare


@pytest.mark.parametrize("package", PACKAGES)
def test_dependencies_point_one_way(package):
    wrong = sorted(
        f"{module} imports {name}"
        for module, path in SOURCES.items()
        if module.split(".")[1] == package
        for name in _imports(path)
        if name.startswith("treefix.") and name.split(".")[1] not in ALLOWED[package] | {package}
    )
    assert not wrong, wrong


def test_no_import_circles():
    graph = {m: {i for i in _imports(p) if i in SOURCES and i != m} for m, p in SOURCES.items()}
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        stack.append(module)
        for dep in graph[module]:
            if state.get(dep) == 1:
                circles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])
    assert not circles, [" -> ".join(c) for c in circles]
