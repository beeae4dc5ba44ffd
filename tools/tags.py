"""Definitions and references in one source file, from tree-sitter.

A definition carries a one-line signature and its nesting (methods under their class), which is what
the repository map and the outline print. References (see tools/tag_queries) come with line numbers, so
the map can weigh files by who uses whom and search can list uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePath
from typing import NamedTuple

from tree_sitter import Language, Node, Parser, Query, QueryCursor

from treefix.tools.tag_queries import DEFINITIONS, REFERENCES
from treefix.tools.treesitter import language_for, language_name

_CONTAINERS = {"class", "interface", "impl", "module", "enum"}
_LEAD_IN = re.compile(rb"^[\w\s]*$")  # 'export ', 'pub ', 'public static ' before a definition
_SPACES = re.compile(r"\s+")
_PAREN_GAP = re.compile(r"(?<=[(\[]) | (?=[)\]])")
MAX_SIGNATURE = 160


class Definition(NamedTuple):  # a tuple, so the on-disk cache stores it cheaply
    name: str
    kind: str  # class | function | method | interface | type | enum | impl | module | macro | constant
    line: int  # 1-based
    end_line: int
    depth: int  # nesting level: 0 at top level, 1 for a method in a class, ...
    parent: int  # index of the enclosing definition in the file's list, -1 at top level
    signature: str


@dataclass
class FileTags:
    definitions: list[Definition] = field(default_factory=list)
    references: dict[str, list[int]] = field(default_factory=dict)  # identifier -> lines (1-based)


def supported(path: str | PurePath) -> bool:
    return language_name(path) in DEFINITIONS


@cache
def _tools(suffix: str) -> tuple[Language, Query, Query] | None:
    """The grammar and the two queries for a file suffix, built once per process."""
    language = language_name(f"x{suffix}")
    lang = language_for(f"x{suffix}")
    if lang is None or language not in DEFINITIONS:
        return None
    defs, refs = DEFINITIONS[language], REFERENCES[language]
    return lang, Query(lang, defs), Query(lang, refs)


def extract(path: str | PurePath, source: bytes, lines: bool = True) -> FileTags:
    """Tags of one file; empty when the language is not supported.

    With lines=False each reference list holds a single count instead of line numbers (what the
    index stores), which is cheaper on large repositories.
    """
    name = str(path)
    tools = _tools(name[name.rfind(".") :].lower()) if "." in name else None
    if tools is None:
        return FileTags()
    lang, def_query, ref_query = tools
    root = Parser(lang).parse(source).root_node  # a parser per call: parsers are not thread-safe
    found: list[tuple[Node, Node, str]] = []
    for _, caps in QueryCursor(def_query).matches(root):
        for capture, nodes in caps.items():
            if capture.startswith("def."):
                found.append((nodes[0], caps["name"][0], capture[4:]))
    definitions, name_spans = _definitions(found, source)
    nodes = []
    for node in QueryCursor(ref_query).captures(root).get("ref", []):
        if node.start_byte not in name_spans:  # also drops a node matched by two patterns
            name_spans.add(node.start_byte)
            nodes.append(node)
    return FileTags(definitions, _lines(nodes, source) if lines else _counts(nodes, source))


def _lines(nodes: list[Node], source: bytes) -> dict[str, list[int]]:
    refs: dict[str, list[int]] = {}
    for node in nodes:
        refs.setdefault(source[node.start_byte : node.end_byte].decode("utf-8", "replace"), []).append(
            node.start_point[0] + 1
        )
    for found in refs.values():
        found.sort()
    return refs


def _counts(nodes: list[Node], source: bytes) -> dict[str, list[int]]:
    counts: dict[bytes, int] = {}
    for node in nodes:
        key = source[node.start_byte : node.end_byte]
        counts[key] = counts.get(key, 0) + 1
    return {k.decode("utf-8", "replace"): [v] for k, v in counts.items()}


def _definitions(found: list[tuple[Node, Node, str]], source: bytes) -> tuple[list[Definition], set[int]]:
    found.sort(key=lambda f: (f[0].start_byte, -f[0].end_byte))
    defs: list[Definition] = []
    stack: list[tuple[int, int]] = []  # (end byte, index) of open definitions
    seen: set[tuple[int, int]] = set()
    for node, name_node, kind in found:
        if (node.start_byte, node.end_byte) in seen:
            continue  # one node matched by two patterns
        seen.add((node.start_byte, node.end_byte))
        while stack and stack[-1][0] <= node.start_byte:
            stack.pop()
        parent = stack[-1][1] if stack else -1
        if kind == "function" and parent >= 0 and defs[parent].kind in ("class", "impl", "interface"):
            kind = "method"
        name = source[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
        if kind == "impl":
            name = name.split("<", 1)[0].strip()
        defs.append(
            Definition(
                name,
                kind,
                node.start_point[0] + 1,
                node.end_point[0] + 1,
                len(stack),
                parent,
                _signature(node, source),
            )
        )
        if kind in _CONTAINERS or kind in ("function", "method"):
            stack.append((node.end_byte, len(defs) - 1))
    return defs, {n.start_byte for _, n, _ in found}


def _signature(node: Node, source: bytes) -> str:
    start = node.start_byte
    line_start = source.rfind(b"\n", 0, start) + 1
    if _LEAD_IN.match(source[line_start:start]) and start - line_start < 60:
        start = line_start
    body = node.child_by_field_name("body")
    if body is None:
        value = node.child_by_field_name("value")
        body = value.child_by_field_name("body") if value is not None else None
    end = source.find(b"\n", node.start_byte)
    end = node.end_byte if end < 0 else min(end, node.end_byte)
    if body is not None:
        header = body.prev_sibling
        while header is not None and header.type == "comment":  # `def f():  # note` keeps no note
            header = header.prev_sibling
        stop = header.end_byte if header is not None else body.start_byte
        if stop > start and source.count(b"\n", start, stop) < 12:
            end = stop  # the whole (maybe multi-line) header, none of the body
    text = _SPACES.sub(" ", source[start:end].decode("utf-8", "replace")).strip()
    text = _PAREN_GAP.sub("", text.replace(", )", ")"))  # what joining wrapped lines leaves
    text = text.removesuffix("{").rstrip()
    return text if len(text) <= MAX_SIGNATURE else text[: MAX_SIGNATURE - 1] + "…"
