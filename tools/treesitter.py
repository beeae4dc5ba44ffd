"""Tree-sitter grammars by file extension, loaded from their wheels (never downloaded)."""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import PurePath

from tree_sitter import Language, Node, Parser

# extension -> (language name, grammar module, function returning the language pointer)
_GRAMMARS: dict[str, tuple[str, str, str]] = {
    ".py": ("python", "tree_sitter_python", "language"),
    ".pyi": ("python", "tree_sitter_python", "language"),
    ".js": ("javascript", "tree_sitter_javascript", "language"),
    ".jsx": ("javascript", "tree_sitter_javascript", "language"),
    ".mjs": ("javascript", "tree_sitter_javascript", "language"),
    ".cjs": ("javascript", "tree_sitter_javascript", "language"),
    ".ts": ("typescript", "tree_sitter_typescript", "language_typescript"),
    ".mts": ("typescript", "tree_sitter_typescript", "language_typescript"),
    ".cts": ("typescript", "tree_sitter_typescript", "language_typescript"),
    ".tsx": ("tsx", "tree_sitter_typescript", "language_tsx"),
    ".go": ("go", "tree_sitter_go", "language"),
    ".rs": ("rust", "tree_sitter_rust", "language"),
    ".java": ("java", "tree_sitter_java", "language"),
}


@dataclass(frozen=True)
class SyntaxProblem:
    line: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"syntax error at line {self.line}: {self.message}"


def language_name(path: str | PurePath) -> str | None:
    name = str(path)  # string slicing, not PurePath: the map asks this for every file of a repository
    dot = name.rfind(".")
    entry = _GRAMMARS.get(name[dot:].lower()) if dot > name.rfind("/") else None
    return entry[0] if entry else None


@cache
def _language(module: str, func: str) -> Language | None:
    try:
        return Language(getattr(importlib.import_module(module), func)())
    except (ImportError, AttributeError):  # grammar wheel not installed: no parsing for that language
        return None


def language_for(path: str | PurePath) -> Language | None:
    entry = _GRAMMARS.get(PurePath(path).suffix.lower())
    return _language(entry[1], entry[2]) if entry else None


def parser_for(path: str | PurePath) -> Parser | None:
    lang = language_for(path)
    return Parser(lang) if lang else None


def first_error(node: Node) -> Node | None:
    """The first ERROR or MISSING node in document order, skipping subtrees without errors."""
    if node.is_error or node.is_missing:
        return node
    if not node.has_error:
        return None
    for child in node.children:
        found = first_error(child)
        if found is not None:
            return found
    return node


def syntax_problem(path: str | PurePath, text: str) -> SyntaxProblem | None:
    """Where `text` fails to parse, or None when it parses (or no grammar exists for the path)."""
    if PurePath(path).suffix.lower() in (".py", ".pyi"):
        return _python_problem(str(path), text)
    parser = parser_for(path)
    if parser is None:
        return None
    tree = parser.parse(text.encode("utf-8"))
    bad = first_error(tree.root_node)
    if bad is None:
        return None
    row = bad.start_point[0]
    lines = text.splitlines()
    shown = lines[row].strip() if row < len(lines) else ""
    what = f"missing {bad.type}" if bad.is_missing else "unexpected code"
    return SyntaxProblem(row + 1, f"{what}: {shown[:120]}" if shown else what)


def _python_problem(path: str, text: str) -> SyntaxProblem | None:
    # compile() is the authority for Python: tree-sitter lags behind new syntax.
    try:
        with warnings.catch_warnings():  # invalid escapes etc. are warnings, not breakage
            warnings.simplefilter("ignore")
            compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return SyntaxProblem(exc.lineno or 1, exc.msg)
    except ValueError as exc:  # null bytes
        return SyntaxProblem(1, str(exc))
    return None
