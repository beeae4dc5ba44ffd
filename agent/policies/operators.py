"""Repair operators: small source edits at one statement, each with a prior of being the fix.

Operators work on the AST for *where* and on the source text for *what*: every mutation is a
set of character-range replacements, so the resulting diff touches only the mutated tokens and
keeps the file's formatting. Priors encode how often each kind of slip occurs in real bug fixes
(boundary comparisons and off-by-ones first, wholesale rewrites last).
"""

from __future__ import annotations

import ast
import builtins
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

CMP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
            ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}  # fmt: skip
CMP_SWAPS: dict[str, list[tuple[str, float]]] = {
    "<": [("<=", 0.9), (">", 0.5), ("!=", 0.45), (">=", 0.4), ("==", 0.3)],
    "<=": [("<", 0.9), (">=", 0.5), ("==", 0.45), (">", 0.4), ("!=", 0.3)],
    ">": [(">=", 0.9), ("<", 0.5), ("!=", 0.45), ("<=", 0.4), ("==", 0.3)],
    ">=": [(">", 0.9), ("<=", 0.5), ("==", 0.45), ("<", 0.4), ("!=", 0.3)],
    "==": [("!=", 0.8), ("is", 0.4), ("<=", 0.3), (">=", 0.3)],
    "!=": [("==", 0.8), ("is not", 0.4), ("<", 0.3), (">", 0.3)],
    "is": [("is not", 0.8), ("==", 0.6)],
    "is not": [("is", 0.8), ("!=", 0.6)],
    "in": [("not in", 0.8)],
    "not in": [("in", 0.8)],
}
CMP_PATTERN = re.compile(r"<=|>=|==|!=|<|>|\bis\s+not\b|\bis\b|\bnot\s+in\b|\bin\b")
BIN_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}
BIN_SWAPS = {"+": [("-", 0.5)], "-": [("+", 0.5)], "*": [("/", 0.3)], "/": [("//", 0.4), ("*", 0.3)],
             "//": [("/", 0.4)], "%": [("//", 0.2)]}  # fmt: skip
BIN_PATTERN = re.compile(r"\*\*|//|<<|>>|[-+*/%@&|^]")
# Names that are usually integers: off-by-one candidates even outside index positions.
NUMERIC_NAME = re.compile(
    r"^(n|i|j|k|m|idx|index|start|stop|end|pos|step|size|count|length|width|offset|num|limit|depth|level)$"
    r"|(_|^)(len|size|count|index|idx|pos|num|start|end|stop|offset|width|limit)(_|$)"
)
# Calls whose positional arguments (at these positions; None = all) are counts or indexes.
INDEX_ARGS: dict[str, tuple[int, ...] | None] = {
    "range": None, "slice": None, "islice": (1, 2, 3), "most_common": (0,), "nsmallest": (0,), "nlargest": (0,),
    "pop": (0,), "insert": (0,), "take": (0,), "ljust": (0,), "rjust": (0,), "center": (0,), "zfill": (0,),
}  # fmt: skip
ANTONYMS = [("min", "max"), ("smallest", "largest"), ("start", "end"), ("first", "last"), ("lower", "upper"),
            ("lstrip", "rstrip"), ("ljust", "rjust"), ("startswith", "endswith"), ("any", "all"),
            ("floor", "ceil"), ("left", "right"), ("head", "tail"), ("prefix", "suffix"), ("before", "after"),
            ("prev", "next"), ("begin", "end"), ("asc", "desc"), ("increment", "decrement"), ("push", "pop"),
            ("lo", "hi"), ("low", "high"), ("appendleft", "append"), ("popleft", "pop"), ("keys", "values"), ("union", "intersection")]  # fmt: skip
ANTONYM = {a: b for pair in ANTONYMS for a, b in (pair, pair[::-1])}
KNOWN_ATTR_SWAPS = {"nsmallest", "nlargest", "startswith", "endswith", "lstrip", "rstrip", "ljust", "rjust",
                    "lower", "upper", "appendleft", "popleft", "keys", "values", "start", "end", "min", "max",
                    "floor", "ceil"}  # fmt: skip
EXCEPTIONS = ["IndexError", "KeyError", "TypeError", "ValueError", "AttributeError", "ZeroDivisionError",
              "StopIteration", "LookupError"]  # fmt: skip
LOOKUP = {"IndexError", "KeyError"}
REGEX_FUNCS = {"sub", "subn", "match", "search", "fullmatch", "findall", "finditer", "split", "compile"}


@dataclass(frozen=True)
class Edit:
    start: int  # character offsets into the source
    end: int
    text: str


@dataclass(frozen=True)
class Mutation:
    operator: str
    description: str
    prior: float
    edits: tuple[Edit, ...]

    def apply(self, source: str) -> str:
        for e in sorted(self.edits, key=lambda e: e.start, reverse=True):
            source = source[: e.start] + e.text + source[e.end :]
        return source


class Source:
    """A parsed file with byte-column to character-offset mapping and parent links."""

    def __init__(self, text: str):
        self.text = text
        self.tree = ast.parse(text)
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for ln in self.lines:
            self.starts.append(self.starts[-1] + len(ln))
        self.parent: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node
        self.words = set(re.findall(r"\w+", text))
        self.statements: dict[int, list[tuple[ast.AST, list[ast.AST]]]] = {}  # line -> statements there
        for node in ast.walk(self.tree):
            if isinstance(node, ast.stmt | ast.ExceptHandler):
                last, exprs = header(node)
                for line in range(node.lineno, last + 1):
                    self.statements.setdefault(line, []).append((node, exprs))

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        return self.starts[lineno - 1] + len(line.encode()[:col].decode(errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined,arg-type]

    def seg(self, node: ast.AST) -> str:
        a, b = self.span(node)
        return self.text[a:b]

    def replace(self, node: ast.AST, text: str) -> tuple[Edit, ...]:
        a, b = self.span(node)
        return (Edit(a, b, text),)

    @cached_property
    def attributes(self) -> dict[str, set[str]]:
        """Receiver text -> the attributes the file reads on it (asked once per node by operators)."""
        out: dict[str, set[str]] = {}
        for n in ast.walk(self.tree):
            if isinstance(n, ast.Attribute):
                out.setdefault(self.seg(n.value), set()).add(n.attr)
        return out

    @cached_property
    def functions(self) -> dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]:
        out: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        for n in ast.walk(self.tree):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
                out.setdefault(n.name, []).append(n)
        return out

    def function_of(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        while node in self.parent:
            node = self.parent[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node
        return None


@lru_cache(maxsize=32)
def parse(text: str) -> Source | None:
    try:
        return Source(text)
    except (SyntaxError, ValueError):
        return None


# --- where: the statement a line belongs to -----------------------------------------------------


def header(node: ast.AST) -> tuple[int, list[ast.AST]]:
    """Last line of a statement's header and the expressions in it (a simple statement is all header)."""
    body = getattr(node, "body", None)
    if isinstance(node, ast.ExceptHandler):
        exprs = [node.type] if node.type else []
    elif isinstance(node, ast.If | ast.While):
        exprs = [node.test]
    elif isinstance(node, ast.For | ast.AsyncFor):
        exprs = [node.target, node.iter]
    elif isinstance(node, ast.With | ast.AsyncWith):
        exprs = [i.context_expr for i in node.items]
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        exprs = [d for d in node.args.defaults + node.args.kw_defaults if d is not None]
    elif isinstance(node, ast.ClassDef | ast.Try):
        exprs = []
    elif isinstance(node, ast.Match):
        exprs = [node.subject]
    else:
        return node.end_lineno or node.lineno, [node]  # type: ignore[attr-defined]
    end = body[0].lineno - 1 if body else node.end_lineno  # type: ignore[attr-defined]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
        end = max(node.lineno, node.body[0].lineno - 1)
    return max(end, node.lineno), exprs  # type: ignore[attr-defined]


def statement_line(text: str, line: int) -> int | None:
    """The first line of the innermost statement `line` belongs to: one site per statement."""
    src = parse(text)
    found = src.statements.get(line, []) if src else []
    return max(node.lineno for node, _ in found) if found else None  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Clues:
    """What the failing tests' messages say beyond integers (see localise.failure_clues): text the
    assertion expected and did not get, and whether a None reached code that needed a value."""

    texts: tuple[str, ...] = ()
    none_error: bool = False
    got_texts: tuple[str, ...] = ()  # text only the got side shows: the constants that may be wrong
    got_none: bool = False  # the got side shows a None the expected side lacks


NO_CLUES = Clues()


@lru_cache(maxsize=4096)
def mutations(
    text: str, line: int, hints: tuple[int, ...] = (), clues: Clues = NO_CLUES
) -> tuple[Mutation, ...]:
    """Every operator applied at the statement that holds `line`: best prior first, one per result.

    `hints` are integers the failing tests expected or got (see localise.assertion_values): a
    constant may need to become one of them; `clues` add expected text and None errors. Two
    mutants with the same description (two `0xFF` on a line) say which occurrence they change."""
    src = parse(text)
    if src is None:
        return ()
    found: list[Mutation] = []
    for stmt, exprs in src.statements.get(line, []):
        found += statement_mutations(src, stmt)
        for root in exprs:
            for node in ast.walk(root):
                if not isinstance(node, ast.Lambda):
                    found += expression_mutations(src, node)
                    found += hinted_constant(src, node, hints)
                    found += hinted_text(src, node, clues)
                    found += none_coalesce(src, node, clues)
    seen: set[str] = set()
    unique = []
    for m in sorted(found, key=lambda m: -m.prior):
        result = m.apply(text)
        if result != text and result not in seen:
            seen.add(result)
            unique.append(m)
    return tuple(_label_occurrences(unique))


def _label_occurrences(found: list[Mutation]) -> list[Mutation]:
    """`(2nd of 2)` after a description that more than one mutant shares, in source order."""
    groups: dict[str, list[Mutation]] = {}
    for m in found:
        groups.setdefault(m.description, []).append(m)
    rename: dict[int, str] = {}
    for desc, ms in groups.items():
        if len(ms) > 1:
            for k, m in enumerate(sorted(ms, key=lambda m: min(e.start for e in m.edits)), 1):
                rename[id(m)] = f"{desc} ({_ordinal(k)} of {len(ms)})"
    return [replace(m, description=rename[id(m)]) if id(m) in rename else m for m in found]


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def compiles(text: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a mutant's SyntaxWarnings are not the user's business
        try:
            compile(text, "<mutant>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return False
    return True


# --- what: operators on expressions -------------------------------------------------------------


def expression_mutations(src: Source, node: ast.AST) -> list[Mutation]:
    out: list[Mutation] = []
    for op in (compare_swap, boolean, negation, constant, plus_minus_one, arithmetic, antonym,
               swapped_args, drop_slice, regex_anchor, absolute, returned_name, apply_callable,
               sibling_factor, method_swap, complete_clause, none_check, regex_quantifier, similar_name,
               similar_attribute, none_default, truthy_guard, forward_parameter, isinstance_widen,
               flipped_default, charset_member):  # fmt: skip
        out += op(src, node)
    return out


def _gap_token(
    src: Source, left: ast.AST, right: ast.AST, pattern: re.Pattern[str]
) -> tuple[int, int, str] | None:
    a, b = src.span(left)[1], src.span(right)[0]
    m = pattern.search(src.text, a, b)
    return (m.start(), m.end(), m.group(0)) if m else None


def _padded(src: Source, a: int, b: int, text: str) -> str:
    """A word operator (`is`, `in`) needs spaces where a symbol did not."""
    if not text[0].isalpha():
        return text
    before = " " if a > 0 and not src.text[a - 1].isspace() else ""
    after = " " if b < len(src.text) and not src.text[b].isspace() else ""
    return before + text + after


def compare_swap(src: Source, node: ast.AST) -> Iterator[Mutation]:
    if not isinstance(node, ast.Compare):
        return
    operands = [node.left, *node.comparators]
    for i, op in enumerate(node.ops):
        tok = _gap_token(src, operands[i], operands[i + 1], CMP_PATTERN)
        if tok is None:
            continue
        a, b, old = tok
        literal = any(
            isinstance(o, ast.Constant) and o.value not in (None, True, False) for o in operands[i : i + 2]
        )
        for new, prior in CMP_SWAPS.get(CMP_TEXT[type(op)], []):
            if literal and new in ("is", "is not"):
                continue  # identity with a literal is never the fix (and a SyntaxWarning)
            yield Mutation("compare", f"`{old}` -> `{new}`", prior, (Edit(a, b, _padded(src, a, b, new)),))


def boolean(src: Source, node: ast.AST) -> Iterator[Mutation]:
    if not isinstance(node, ast.BoolOp):
        return
    old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
    pattern = re.compile(rf"\b{old}\b")
    for left, right in zip(node.values, node.values[1:], strict=False):
        if tok := _gap_token(src, left, right, pattern):
            yield Mutation("boolean", f"`{old}` -> `{new}`", 0.5, (Edit(tok[0], tok[1], new),))
    for i, value in enumerate(node.values):  # a dropped condition
        if i + 1 < len(node.values):
            a, b = src.span(value)[0], src.span(node.values[i + 1])[0]
        else:
            a, b = src.span(node.values[i - 1])[1], src.span(value)[1]
        removed = src.text[a:b].replace(src.seg(value), "")
        if (
            "(" not in removed and ")" not in removed
        ):  # only the operator goes with it: parentheses stay balanced
            yield Mutation("drop-condition", f"drop `{src.seg(value)}`", 0.35, (Edit(a, b, ""),))


def negation(src: Source, node: ast.AST) -> Iterator[Mutation]:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        a, b = src.span(node)[0], src.span(node.operand)[0]
        if m := re.match(r"not\s*", src.text[a:b]):
            yield Mutation("negate", f"drop `not` in `{src.seg(node)}`", 0.7, (Edit(a, a + m.end(), ""),))
        return
    parent = src.parent.get(node)
    is_test = isinstance(parent, ast.If | ast.While | ast.IfExp | ast.Assert) and parent.test is node  # type: ignore[union-attr]
    if not is_test or isinstance(node, ast.Compare):  # comparisons are flipped by compare_swap
        return
    text = src.seg(node)
    simple = isinstance(node, ast.Name | ast.Call | ast.Attribute | ast.Subscript | ast.Constant)
    yield Mutation(
        "negate",
        f"`{text}` -> `not ...`",
        0.55,
        src.replace(node, f"not {text}" if simple else f"not ({text})"),
    )


def _int_value(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and _int_value(node.operand) is not None
    ):
        return -node.operand.value  # type: ignore[attr-defined]
    return None


def constant(src: Source, node: ast.AST) -> Iterator[Mutation]:
    parent = src.parent.get(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        new = str(not node.value)
        yield Mutation("constant", f"`{node.value}` -> `{new}`", 0.45, src.replace(node, new))
        return
    value = _int_value(node)
    if value is None or (isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub)):
        return
    plus_minus = isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Add | ast.Sub) and value == 1
    in_literal = isinstance(parent, ast.Tuple | ast.List | ast.Set)  # one of several values: rarely the slip
    for new in (value + 1, value - 1):
        if plus_minus and new == 0:
            continue  # `x - 0`: plus_minus_one drops the term instead
        yield Mutation(
            "off-by-one", f"`{value}` -> `{new}`", 0.3 if in_literal else 0.6, src.replace(node, str(new))
        )
    if value and abs(value) >= 10 and str(abs(value)).rstrip("0") == "1" and not in_literal:
        for new in (value * 10, value // 10):
            yield Mutation("constant", f"`{value}` -> `{new}`", 0.4, src.replace(node, str(new)))
    if isinstance(parent, ast.Return) and value:
        yield Mutation("return-value", f"return `{-value}`", 0.5, src.replace(node, str(-value)))


def _needs_parens(src: Source, node: ast.AST) -> bool:
    """Would `node + 1` in place of `node` bind differently than meant?"""
    parent = src.parent.get(node)
    if isinstance(parent, ast.BinOp):
        if isinstance(parent.op, ast.Add) or (isinstance(parent.op, ast.Sub) and parent.left is node):
            return False
        return True
    return (
        isinstance(parent, ast.Attribute | ast.UnaryOp | ast.Await)
        or (isinstance(parent, ast.Call) and parent.func is node)
        or (isinstance(parent, ast.Subscript) and parent.value is node)
    )


def _stringy(node: ast.AST) -> bool:
    """A concatenation or formatting of text: arithmetic operators make no sense on it."""
    if isinstance(node, ast.BinOp):
        return _stringy(node.left) or _stringy(node.right)
    if isinstance(node, ast.List | ast.ListComp | ast.Tuple | ast.Dict | ast.DictComp | ast.Set | ast.SetComp):
        return True  # a container: `+ 1` is a TypeError
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


def _index_like(src: Source, node: ast.AST) -> float:
    """How likely `node` is an integer in a position where off-by-ones happen (0 = not at all)."""
    if _int_value(node) is not None or not isinstance(node, ast.Name | ast.Attribute | ast.Call | ast.BinOp):
        return 0.0
    if _stringy(node):
        return 0.0
    if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id == "len"):
        return 0.0
    if _textual(src, node):
        return 0.0  # `spec + 1` on a string is a TypeError, never the fix
    parent = src.parent.get(node)
    if isinstance(parent, ast.Subscript) and parent.slice is node and _mapping(src, parent.value):
        return 0.0  # a dict key, not an index
    if isinstance(parent, ast.Slice):
        return 0.45
    if isinstance(parent, ast.Subscript) and parent.slice is node:
        return 0.35
    if isinstance(parent, ast.Call) and node in parent.args:
        func = parent.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        positions = INDEX_ARGS.get(name, ())
        if positions is None or parent.args.index(node) in positions:
            return 0.45
    if (
        isinstance(parent, ast.Return)
        and isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Add | ast.Sub)
    ):
        return 0.35
    ident = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    if (
        ident
        and NUMERIC_NAME.search(ident)
        and not isinstance(parent, ast.Attribute | ast.Call | ast.Subscript | ast.Compare | ast.Slice)
    ):
        return 0.3
    return 0.0


def plus_minus_one(src: Source, node: ast.AST) -> Iterator[Mutation]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub) and _int_value(node.right) == 1:
        left = src.seg(node.left)
        yield Mutation("off-by-one", f"`{src.seg(node)}` -> `{left}`", 0.75, src.replace(node, left))
        return
    prior = _index_like(src, node)
    if not prior:
        return
    text = src.seg(node)
    if isinstance(node, ast.BinOp) and not isinstance(
        node.op, ast.Add | ast.Sub | ast.Mult | ast.Div | ast.FloorDiv | ast.Mod
    ):
        text = f"({text})"
    for sign in ("+", "-"):
        new = f"{text} {sign} 1"
        yield Mutation(
            "off-by-one",
            f"`{src.seg(node)}` -> `{new}`",
            prior,
            src.replace(node, f"({new})" if _needs_parens(src, node) else new),
        )


STR_METHODS = {"startswith", "endswith", "lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit",
               "join", "format", "replace", "encode", "decode", "casefold", "splitlines", "isdigit", "isalpha",
               "partition", "rpartition", "title", "capitalize", "zfill", "ljust", "rjust", "center"}  # fmt: skip
TEXT_ANNOTATIONS = {"str", "bytes", "Text"}


def _text_names(src: Source, func: ast.AST) -> frozenset[str]:
    """Names a function binds to text: str/bytes literals, f-strings, str() and str-method results,
    parameters annotated or defaulted as text, names used as the object of a str method."""
    names: set[str] = set()

    def texty(v: ast.AST | None) -> bool:
        if v is None:
            return False
        if _stringy(v):
            return True
        if isinstance(v, ast.Call):
            f = v.func
            return (isinstance(f, ast.Name) and f.id in ("str", "repr", "format", "chr")) or (
                isinstance(f, ast.Attribute) and f.attr in STR_METHODS - {"split", "rsplit", "splitlines",
                                                                          "partition", "rpartition", "encode"}
                and f.attr not in ("isdigit", "isalpha", "startswith", "endswith")
            )  # fmt: skip
        return False

    if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
        a = func.args
        positional = a.posonlyargs + a.args
        for arg, d in zip(positional[len(positional) - len(a.defaults):], a.defaults, strict=False):
            if texty(d):
                names.add(arg.arg)
        for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=False):
            if texty(d):
                names.add(arg.arg)
        for arg in positional + a.kwonlyargs:
            ann = arg.annotation
            if isinstance(ann, ast.Name) and ann.id in TEXT_ANNOTATIONS:
                names.add(arg.arg)
    for n in ast.walk(func):
        if isinstance(n, ast.Assign) and texty(n.value):
            names |= {t.id for t in n.targets if isinstance(t, ast.Name)}
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in STR_METHODS:
            if isinstance(n.func.value, ast.Name) and n.func.attr not in ("join", "format", "zfill"):
                names.add(n.func.value.id)
    return frozenset(names)


def _textual(src: Source, node: ast.AST) -> bool:
    if _stringy(node):
        return True
    if not isinstance(node, ast.Name):
        return False
    scope = src.function_of(node) or src.tree
    return node.id in _text_names(src, scope)


def _mapping(src: Source, node: ast.AST) -> bool:
    """Is `node` a name bound to a dict literal or dict() in its function?"""
    if not isinstance(node, ast.Name):
        return False
    scope = src.function_of(node) or src.tree
    for n in ast.walk(scope):
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in n.targets):
            v = n.value
            if isinstance(v, ast.Dict | ast.DictComp) or (isinstance(v, ast.Call) and getattr(v.func, "id", "") in ("dict", "defaultdict", "OrderedDict", "Counter")):
                return True
    return False


def arithmetic(src: Source, node: ast.AST) -> Iterator[Mutation]:
    if not isinstance(node, ast.BinOp) or type(node.op) not in BIN_TEXT or _stringy(node):
        return
    if _textual(src, node.left) or _textual(src, node.right):
        return  # `+` joins text here
    tok = _gap_token(src, node.left, node.right, BIN_PATTERN)
    if tok is None or tok[2] != BIN_TEXT[type(node.op)]:
        return
    for new, prior in BIN_SWAPS.get(tok[2], []):
        yield Mutation(
            "arithmetic", f"`{tok[2]}` -> `{new}` in `{src.seg(node)}`", prior, (Edit(tok[0], tok[1], new),)
        )
    if tok[2] == "//":  # floor division rounds negatives down where truncation toward zero was meant
        left, right = src.seg(node.left), src.seg(node.right)
        if not isinstance(node.left, ast.Name | ast.Attribute | ast.Constant | ast.Call | ast.Subscript):
            left = f"({left})"
        if not isinstance(node.right, ast.Name | ast.Attribute | ast.Constant | ast.Call | ast.Subscript):
            right = f"({right})"
        yield Mutation("arithmetic", f"`{src.seg(node)}` -> `int({left} / {right})`", 0.35,
                       src.replace(node, f"int({left} / {right})"))  # fmt: skip


def _swap_word(ident: str) -> str | None:
    if ident in ANTONYM:
        return ANTONYM[ident]
    parts = ident.split("_")
    for i, part in enumerate(parts):
        if part in ANTONYM:
            return "_".join(parts[:i] + [ANTONYM[part]] + parts[i + 1 :])
    for a, b in (("smallest", "largest"), ("largest", "smallest")):
        if a in ident:
            return ident.replace(a, b)
    return None


def antonym(src: Source, node: ast.AST) -> Iterator[Mutation]:
    if isinstance(node, ast.Name) and (new := _swap_word(node.id)):
        if new in src.words or hasattr(builtins, new):
            yield Mutation("antonym", f"`{node.id}` -> `{new}`", 0.5, src.replace(node, new))
    elif isinstance(node, ast.Attribute) and (new := _swap_word(node.attr)):
        if new in src.words or node.attr in KNOWN_ATTR_SWAPS:
            end = src.span(node)[1]
            edit = Edit(end - len(node.attr), end, new)
            yield Mutation("antonym", f"`.{node.attr}` -> `.{new}`", 0.5, (edit,))


def swapped_args(src: Source, node: ast.AST) -> Iterator[Mutation]:
    if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
        return
    args = node.args
    for i, x in enumerate(args):
        for j in range(i + 1, len(args)):  # any two of three or more: `f(a, b, c)` for `f(c, b, a)`
            y = args[j]
            (a1, b1), (a2, b2) = src.span(x), src.span(y)
            edits = (Edit(a1, b1, src.text[a2:b2]), Edit(a2, b2, src.text[a1:b1]))
            prior = 0.3 if j == i + 1 else 0.25
            yield Mutation("swap-args", f"swap `{src.seg(x)}` and `{src.seg(y)}`", prior, edits)


def drop_slice(src: Source, node: ast.AST) -> Iterator[Mutation]:
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Slice)
        and isinstance(node.ctx, ast.Load)
    ):
        if node.slice.lower or node.slice.upper:
            value = src.seg(node.value)
            yield Mutation("drop-slice", f"`{src.seg(node)}` -> `{value}`", 0.4, src.replace(node, value))


def _regex_literal(src: Source, node: ast.AST) -> re.Match[str] | None:
    """The pattern literal `node` of a `re.X(pattern, ...)` call, split into (prefix, quote, body)."""
    parent = src.parent.get(node)
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and isinstance(parent, ast.Call)):
        return None
    func = parent.func
    if not (isinstance(func, ast.Attribute) and func.attr in REGEX_FUNCS and isinstance(func.value, ast.Name)
            and func.value.id == "re" and parent.args and parent.args[0] is node):  # fmt: skip
        return None
    return re.fullmatch(r"([rRbBuU]*)('''|\"\"\"|'|\")(.*)\2", src.seg(node), flags=re.S)


def regex_anchor(src: Source, node: ast.AST) -> Iterator[Mutation]:
    m = _regex_literal(src, node)
    if m is None:
        return
    a, b = src.span(node)
    body_start, body_end = a + len(m.group(1)) + len(m.group(2)), b - len(m.group(2))
    if not node.value.endswith("$"):
        yield Mutation("regex", f"anchor `{node.value}` at the end", 0.3, (Edit(body_end, body_end, "$"),))
    if not node.value.startswith("^"):
        yield Mutation(
            "regex", f"anchor `{node.value}` at the start", 0.3, (Edit(body_start, body_start, "^"),)
        )


def absolute(src: Source, node: ast.AST) -> Iterator[Mutation]:
    parent = src.parent.get(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "float"):
        if isinstance(parent, ast.Assign) and parent.value is node:
            yield Mutation(
                "abs", f"`{src.seg(node)}` -> `abs(...)`", 0.15, src.replace(node, f"abs({src.seg(node)})")
            )


def returned_name(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """Variable misuse in a return: `return lo` where another parameter was meant."""
    parent = src.parent.get(node)
    if (
        not (isinstance(node, ast.Name) and isinstance(parent, ast.Return))
        or (func := src.function_of(node)) is None
    ):
        return
    params = [a.arg for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs]
    for other in params:
        if other != node.id and other not in ("self", "cls") and _swap_word(node.id) != other:
            yield Mutation(
                "variable", f"return `{other}` instead of `{node.id}`", 0.3, src.replace(node, other)
            )


def apply_callable(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`x = value` where `x = f(value)` was meant, `f` a parameter the function calls elsewhere."""
    parent = src.parent.get(node)
    if (
        not isinstance(parent, ast.Assign | ast.Return)
        or parent.value is not node
        or isinstance(node, ast.Call)
    ):
        return
    if (func := src.function_of(node)) is None:
        return
    params = {a.arg for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs}
    called = {n.func.id for n in ast.walk(func) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    for name in sorted(params & called):
        yield Mutation(
            "apply",
            f"`{src.seg(node)}` -> `{name}(...)`",
            0.25,
            src.replace(node, f"{name}({src.seg(node)})"),
        )


def sibling_factor(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`f(sign * a, b)` where `f(sign * a, sign * b)` was meant: a factor one argument has and its sibling lacks."""
    if not isinstance(node, ast.Call):
        return
    factors = {
        src.seg(a.left)
        for a in node.args
        if isinstance(a, ast.BinOp) and isinstance(a.op, ast.Mult) and isinstance(a.left, ast.Name)
    }
    for arg in node.args:
        if isinstance(arg, ast.Name | ast.Attribute):
            for f in sorted(factors - {src.seg(arg)}):
                yield Mutation(
                    "factor",
                    f"`{src.seg(arg)}` -> `{f} * {src.seg(arg)}`",
                    0.25,
                    src.replace(arg, f"{f} * {src.seg(arg)}"),
                )


# --- what: operators on statements --------------------------------------------------------------


def statement_mutations(src: Source, stmt: ast.AST) -> list[Mutation]:
    out: list[Mutation] = []
    for op in (guard, exception_types, defaults, condition_constant, forgotten_call, branch_order,
               reversed_iteration):
        out += op(src, stmt)
    return out


def _fallbacks(src: Source, stmt: ast.AST, func: ast.AST) -> list[str]:
    """Plausible values to return early from `func`, most plausible first."""
    if any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(func)):
        return [""]
    values: list[str] = []
    returned = stmt.value if isinstance(stmt, ast.Return) else None
    if returned is not None and any(
        isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) for n in ast.walk(returned)
    ):
        values += ["0.0", "0"]
    if isinstance(returned, ast.List | ast.ListComp) or (
        isinstance(returned, ast.Call) and getattr(returned.func, "id", "") in ("list", "sorted")
    ):
        values.append("[]")
    if isinstance(returned, ast.Dict | ast.DictComp):
        values.append("{}")
    if isinstance(returned, ast.JoinedStr) or (
        isinstance(returned, ast.Call) and getattr(returned.func, "attr", "") in ("join", "format")
    ):
        values.append('""')
    for r in ast.walk(func):
        if isinstance(r, ast.Return) and isinstance(r.value, ast.Constant) and r.value.value is not None:
            values.append(repr(type(r.value.value)()))
    values += ["None", "0"]
    return list(dict.fromkeys(values))[:3]


def guard(src: Source, stmt: ast.AST) -> Iterator[Mutation]:
    """A missing empty/None check: `if not x: return <value>` before a statement that needs x."""
    func = src.function_of(stmt)
    if (
        func is None
        or not isinstance(stmt, ast.stmt)
        or isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ):
        return
    line = src.lines[stmt.lineno - 1]
    indent = line[: len(line) - len(line.lstrip())]
    if src.offset(stmt.lineno, stmt.col_offset) != src.starts[stmt.lineno - 1] + len(indent):
        return  # not the first statement on its line
    _, exprs = header(stmt)
    checks: dict[str, tuple[str, float]] = {}
    for root in exprs:
        for n in ast.walk(root):
            parent = src.parent.get(n)
            if (
                isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "len"
                and n.args
                and isinstance(n.args[0], ast.Name)
            ):
                divisor = (
                    isinstance(parent, ast.BinOp)
                    and parent.right is n
                    and isinstance(parent.op, ast.Div | ast.FloorDiv | ast.Mod)
                )
                checks.setdefault(n.args[0].id, ("not", 0.6 if divisor else 0.35))
            elif (
                isinstance(n, ast.Name)
                and isinstance(parent, ast.BinOp)
                and parent.right is n
                and isinstance(parent.op, ast.Div | ast.FloorDiv | ast.Mod)
            ):
                checks.setdefault(n.id, ("not", 0.45))
            elif (
                isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and isinstance(n.ctx, ast.Load)
            ):
                checks.setdefault(n.value.id, ("not", 0.35))
            elif (
                isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id not in ("self", "cls")
            ):
                checks.setdefault(n.value.id, ("none", 0.3))
    if isinstance(stmt, ast.For | ast.AsyncFor) and isinstance(stmt.iter, ast.Name):
        checks.setdefault(stmt.iter.id, ("none", 0.3))
    at = src.starts[stmt.lineno - 1]
    for name, (kind, prior) in checks.items():
        if name not in _locals(func):
            continue  # a module-level name (a function, a constant) is not what a guard checks
        cond = f"not {name}" if kind == "not" else f"{name} is None"
        for rank, value in enumerate(_fallbacks(src, stmt, func)):
            ret = f"return {value}".rstrip()
            text = f"{indent}if {cond}:\n{indent}    {ret}\n"
            yield Mutation("guard", f"`if {cond}: {ret}`", prior * (1 - 0.2 * rank), (Edit(at, at, text),))


def _locals(func: ast.AST) -> set[str]:
    """Parameters and assigned names (comprehension variables are not bound outside their comprehension)."""
    names = {a.arg for a in ast.walk(func) if isinstance(a, ast.arg)}
    for s in ast.walk(func):
        if isinstance(s, ast.Assign):
            targets = s.targets
        elif isinstance(s, ast.AugAssign | ast.AnnAssign | ast.For | ast.AsyncFor | ast.NamedExpr):
            targets = [s.target]
        elif isinstance(s, ast.With | ast.AsyncWith):
            targets = [i.optional_vars for i in s.items if i.optional_vars]
        else:
            continue
        names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def exception_types(src: Source, stmt: ast.AST) -> Iterator[Mutation]:
    if not isinstance(stmt, ast.ExceptHandler) or stmt.type is None:
        return
    elts = stmt.type.elts if isinstance(stmt.type, ast.Tuple) else [stmt.type]
    names = {e.id for e in elts if isinstance(e, ast.Name)}
    if len(names) != len(elts):
        return
    for exc in EXCEPTIONS:
        if exc in names:
            continue
        prior = 0.5 if exc in LOOKUP and names & LOOKUP else 0.35
        if isinstance(stmt.type, ast.Tuple):
            end = src.span(elts[-1])[1]
            edits: tuple[Edit, ...] = (Edit(end, end, f", {exc}"),)
        else:
            edits = src.replace(stmt.type, f"({src.seg(stmt.type)}, {exc})")
        yield Mutation("except", f"also catch {exc}", prior, edits)


def defaults(src: Source, stmt: ast.AST) -> Iterator[Mutation]:
    """A wrong default value. Number and bool defaults are header constants, mutated by `constant`."""
    if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
        return
    for d in stmt.args.defaults + [d for d in stmt.args.kw_defaults if d is not None]:
        if not isinstance(d, ast.Constant) or isinstance(d.value, str | bytes):
            yield Mutation("default", f"default `{src.seg(d)}` -> `None`", 0.2, src.replace(d, "None"))


def forgotten_call(src: Source, stmt: ast.AST) -> Iterator[Mutation]:
    """A bound method saved in a local (`clear = cache.clear`) and never called: call it after this statement."""
    func = src.function_of(stmt)
    if (
        func is None
        or not isinstance(stmt, ast.Expr | ast.Assign | ast.AugAssign | ast.Return)
        or isinstance(stmt, ast.Return)
    ):
        return
    loaded = {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    unused = [
        t.id
        for a in ast.walk(func)
        if isinstance(a, ast.Assign) and isinstance(a.value, ast.Attribute)
        for t in a.targets
        if isinstance(t, ast.Name) and t.id not in loaded
    ]
    line = src.lines[stmt.lineno - 1]
    indent = line[: len(line) - len(line.lstrip())]
    at = src.starts[stmt.end_lineno or stmt.lineno]
    for name in unused:
        yield Mutation(
            "call", f"call `{name}()` after line {stmt.lineno}", 0.3, (Edit(at, at, f"{indent}{name}()\n"),)
        )


def condition_constant(src: Source, stmt: ast.AST) -> Iterator[Mutation]:
    """A condition that should not be there at all (or should always hold)."""
    if isinstance(stmt, ast.If | ast.While) and not isinstance(stmt.test, ast.Constant):
        for value in ("True", "False") if isinstance(stmt, ast.If) else ("False",):
            yield Mutation(
                "drop-condition", f"`{src.seg(stmt.test)}` -> `{value}`", 0.15, src.replace(stmt.test, value)
            )


# --- what: call sites, clauses, values the failing test named ------------------------------------

# Methods easily confused at a call site, with the prior that one was meant for the other.
METHOD_SWAPS: dict[str, list[tuple[str, float]]] = {
    "values": [("items", 0.5), ("keys", 0.4)], "items": [("values", 0.5), ("keys", 0.4)],
    "keys": [("values", 0.4), ("items", 0.4)], "append": [("extend", 0.45)], "extend": [("append", 0.45)],
    "find": [("rfind", 0.45), ("index", 0.3)], "rfind": [("find", 0.45)], "index": [("rindex", 0.4), ("find", 0.3)],
    "rindex": [("index", 0.4)], "split": [("rsplit", 0.4)], "rsplit": [("split", 0.4)],
    "partition": [("rpartition", 0.45)], "rpartition": [("partition", 0.45)], "remove": [("discard", 0.4)],
    "discard": [("remove", 0.3)], "get": [("pop", 0.3)], "pop": [("get", 0.3)], "add": [("update", 0.3)],
    "update": [("add", 0.2)], "match": [("search", 0.45), ("fullmatch", 0.45)], "search": [("match", 0.4)],
    "fullmatch": [("match", 0.4)], "isdigit": [("isnumeric", 0.3), ("isdecimal", 0.3)], "lower": [("casefold", 0.2)],
    "strip": [("rstrip", 0.4), ("lstrip", 0.4)], "copy": [("deepcopy", 0.2)], "setdefault": [("get", 0.3)],
    "sort": [("reverse", 0.2)], "issubset": [("issuperset", 0.45)], "issuperset": [("issubset", 0.45)],
    "union": [("update", 0.2)], "difference": [("symmetric_difference", 0.3)],
}  # fmt: skip


def method_swap(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`.values()` where `.items()` was meant: another method of the same receiver at a call site."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return
    attr = node.func.attr
    end = src.span(node.func)[1]
    for new, prior in METHOD_SWAPS.get(attr, []):
        yield Mutation("method", f"`.{attr}(...)` -> `.{new}(...)`", prior, (Edit(end - len(attr), end, new),))


NEGATIVE_OPS = (ast.NotIn, ast.NotEq, ast.IsNot)


def complete_clause(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`"%Y" not in s` where `"%y"` matters too: a comparison against a literal gets a sibling clause
    for another literal the file compares the same way (or the literal's other case)."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return
    left, right = node.left, node.comparators[0]
    if isinstance(left, ast.Constant) and not isinstance(right, ast.Constant):
        lit, other = left, right
    elif isinstance(right, ast.Constant) and not isinstance(left, ast.Constant):
        lit, other = right, left
    else:
        return
    if not isinstance(lit.value, str | int) or isinstance(lit.value, bool):
        return
    other_text, op = src.seg(other), type(node.ops[0])
    values: dict[object, float] = {}
    for n in ast.walk(src.tree):  # sibling comparisons: same operator, same other side, another literal
        if n is node or not (isinstance(n, ast.Compare) and len(n.ops) == 1 and type(n.ops[0]) is op):
            continue
        for a, b in ((n.left, n.comparators[0]), (n.comparators[0], n.left)):
            if isinstance(a, ast.Constant) and type(a.value) is type(lit.value) and a.value != lit.value:
                if src.seg(b) == other_text:
                    values.setdefault(a.value, 0.4)
    if isinstance(lit.value, str) and lit.value.swapcase() != lit.value and repr(lit.value.swapcase())[1:-1] in src.text:
        values.setdefault(lit.value.swapcase(), 0.35)
    joiner = "and" if op in NEGATIVE_OPS else "or"
    here = src.seg(node)
    parent = src.parent.get(node)
    bare = isinstance(parent, ast.If | ast.While | ast.Assert) or (
        isinstance(parent, ast.BoolOp) and (joiner == "and") == isinstance(parent.op, ast.And)
    )
    a, b = src.span(lit)
    start = src.span(node)[0]
    for value, prior in list(values.items())[:4]:
        quote = src.text[a] if src.text[a] in "'\"" else ""
        literal = f"{quote}{value}{quote}" if quote and isinstance(value, str) and quote not in value and "\\" not in value else repr(value)
        sibling = here[: a - start] + literal + here[b - start :]
        text = f"{here} {joiner} {sibling}"
        yield Mutation("clause", f"add `{joiner} {sibling}`", prior, src.replace(node, text if bare else f"({text})"))


def hinted_constant(src: Source, node: ast.AST, hints: tuple[int, ...]) -> Iterator[Mutation]:
    """An integer literal that should be one the failing assertion expected, or off by the gap
    between what it got and what it expected (hints come as (got, expected) pairs)."""
    value = _int_value(node)
    parent = src.parent.get(node)
    if value is None or not hints or (isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub)):
        return
    proposals: dict[int, float] = {}
    for got, expected in zip(hints[::2], hints[1::2], strict=False):
        gap = expected - got
        if gap and abs(gap) <= 10**6:
            proposals.setdefault(value + gap, 0.55)
            proposals.setdefault(value - gap, 0.4)
        if expected != value:
            proposals.setdefault(expected, 0.35)
    for new, prior in proposals.items():
        if new != value:
            yield Mutation("constant", f"`{value}` -> `{new}` (from the failing assertion)", prior, src.replace(node, str(new)))


# --- what: idioms of real one-line fixes ---------------------------------------------------------

ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
NUMERIC_CALLS = {"max", "min", "abs", "int", "float", "round", "range"}


def none_check(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`if x:` where `if x is not None:` was meant (an empty value is a value), and `if not x:`
    where `if x is None:` was meant."""
    parent = src.parent.get(node)
    in_test = isinstance(parent, ast.If | ast.While | ast.IfExp) and parent.test is node  # type: ignore[union-attr]
    if isinstance(parent, ast.BoolOp):
        grand = src.parent.get(parent)
        in_test = isinstance(grand, ast.If | ast.While | ast.IfExp) and grand.test is parent  # type: ignore[union-attr]
    if not in_test:
        return
    if isinstance(node, ast.Name | ast.Attribute):
        text = src.seg(node)
        yield Mutation("none-check", f"`{text}` -> `{text} is not None`", 0.5, src.replace(node, f"{text} is not None"))
    elif (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and isinstance(node.operand, ast.Name | ast.Attribute)
    ):
        text = src.seg(node.operand)
        yield Mutation("none-check", f"`not {text}` -> `{text} is None`", 0.5, src.replace(node, f"{text} is None"))


def none_coalesce(src: Source, node: ast.AST, clues: Clues) -> Iterator[Mutation]:
    """`max(lineno, 1)` where `lineno` can be None: `lineno or 0`. Offered only when a failing test
    saw a None where a value was needed (a TypeError naming NoneType)."""
    if not clues.none_error or not isinstance(node, ast.Name | ast.Attribute) or not isinstance(node.ctx, ast.Load):
        return
    if isinstance(node, ast.Name) and node.id in ("self", "cls", "None"):
        return
    parent = src.parent.get(node)
    fallback, parens = None, True
    if isinstance(parent, ast.Call) and node in parent.args:
        name = parent.func.id if isinstance(parent.func, ast.Name) else ""
        if name in NUMERIC_CALLS:
            fallback, parens = "0", False
        elif name in ("len", "sorted", "list", "tuple", "set", "enumerate"):
            fallback, parens = "()", False
    elif isinstance(parent, ast.Compare) and any(isinstance(op, ORDERING) for op in parent.ops):
        fallback = "0"
    elif isinstance(parent, ast.BinOp) and not _stringy(parent) and type(parent.op) in BIN_TEXT:
        fallback = "0"
    elif isinstance(parent, ast.For) and parent.iter is node:
        fallback = "()"
    if fallback is None:
        return
    text = f"{src.seg(node)} or {fallback}"
    yield Mutation("none", f"`{src.seg(node)}` -> `{text}`", 0.55, src.replace(node, f"({text})" if parens else text))


def hinted_text(src: Source, node: ast.AST, clues: Clues) -> Iterator[Mutation]:
    """A None or text constant that should be the text the failing assertion expected and did not get
    (`{'type': None} != {'type': 'null'}`)."""
    if not clues.texts or not isinstance(node, ast.Constant):
        return
    parent = src.parent.get(node)
    if not (node.value is None or isinstance(node.value, str)) or isinstance(parent, ast.Expr):
        return  # a docstring is not a value
    if isinstance(parent, ast.Dict) and node in parent.keys:
        return  # the key is what the assertion matched on
    if not (clues.got_none if node.value is None else node.value in clues.got_texts):
        return  # only a constant the wrong output shows can be what made it wrong
    for k, value in enumerate(clues.texts[:4]):
        if value != node.value:
            yield Mutation(
                "constant", f"`{src.seg(node)}` -> `{value!r}` (from the failing assertion)",
                0.5 - 0.05 * k, src.replace(node, repr(value)),
            )  # fmt: skip


REGEX_ATOM = re.compile(r"(?<!\\)(\\[dwsDWS]|\[(?:\\.|[^\]\\])+\])(?![*+?{])")


def regex_quantifier(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`(\\d)` where `(\\d+)` was meant: one more repetition for a character class in a regex literal."""
    m = _regex_literal(src, node)
    if m is None or m.group(1) not in ("r", "R"):
        return  # only raw literals: their source text is the pattern
    a = src.span(node)[0] + len(m.group(1)) + len(m.group(2))
    for atom in REGEX_ATOM.finditer(m.group(3)):
        end = a + atom.end()
        yield Mutation("regex", f"`{atom.group(0)}` -> `{atom.group(0)}+`", 0.35, (Edit(end, end, "+"),))


def branch_order(src: Source, stmt: ast.AST) -> Iterator[Mutation]:
    """`if a: X elif b: Y` where b must be checked first: the two branches trade places (offered
    at either branch's line)."""
    if not isinstance(stmt, ast.If):
        return
    if len(stmt.orelse) == 1 and isinstance(stmt.orelse[0], ast.If):
        yield from _swap_branches(src, stmt, stmt.orelse[0])
    parent = src.parent.get(stmt)
    if isinstance(parent, ast.If) and parent.orelse == [stmt]:
        yield from _swap_branches(src, parent, stmt)


def _swap_branches(src: Source, stmt: ast.If, other: ast.If) -> Iterator[Mutation]:
    if not src.lines[other.lineno - 1].lstrip().startswith("elif"):
        return
    last = other.body[-1].end_lineno or other.body[-1].lineno
    body_a = (src.starts[stmt.test.end_lineno], src.starts[other.lineno - 1])  # type: ignore[index]
    body_b = (src.starts[other.test.end_lineno], src.starts[last])  # type: ignore[index]
    if not (src.text[src.span(stmt.test)[1]:body_a[0]].strip() == ":" and src.text[src.span(other.test)[1]:body_b[0]].strip() == ":"):
        return  # a body on the header's line (`if a: x`): keep to the plain layout
    test_a, test_b = src.span(stmt.test), src.span(other.test)
    edits = (
        Edit(*test_a, src.seg(other.test)), Edit(*body_a, src.text[body_b[0]:body_b[1]]),
        Edit(*test_b, src.seg(stmt.test)), Edit(*body_b, src.text[body_a[0]:body_a[1]]),
    )  # fmt: skip
    yield Mutation("branch-order", f"check `{src.seg(other.test)}` before `{src.seg(stmt.test)}`", 0.4, edits)


# --- which: operators on names and arguments (variable misuse, the commonest one-line fix) -------

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _words(ident: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(ident)}


def _likeness(a: str, b: str) -> float:
    """How alike two identifiers read (`i_exp`/`i_failed`, `_attrs`/`attrs`, `traceback`/`ntraceback`):
    a misused name is nearly always a neighbour by spelling, not an arbitrary one in scope."""
    if a == b:
        return 0.0
    core_a, core_b = a.strip("_").lower(), b.strip("_").lower()
    if core_a == core_b or (min(len(core_a), len(core_b)) >= 4 and (core_a in core_b or core_b in core_a)):
        return 1.0
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def _bound_before(func: ast.AST, name: str, line: int) -> bool:
    """`name` is a parameter of `func` or assigned in it on an earlier line (so using it cannot
    raise UnboundLocalError where the old name did not)."""
    if any(isinstance(a, ast.arg) and a.arg == name for a in ast.walk(func)):
        return True
    return any(
        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store) and n.lineno < line
        for n in ast.walk(func)
    )


def similar_name(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`get(i_exp, j)` where `get(i_failed, j)` was meant: a name read in place of a local that is
    spelled alike (shares a word, or contains the other), bound before this line."""
    if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)) or node.id in ("self", "cls"):
        return
    parent = src.parent.get(node)
    if isinstance(parent, ast.Call) and parent.func is node:
        return  # the callee: which function is called is not a variable misuse
    if (func := src.function_of(node)) is None:
        return
    alike = sorted(((_likeness(node.id, other), other) for other in _locals(func) - {"self", "cls"}), reverse=True)
    for score, other in alike[:3]:
        if score >= 0.3 and _bound_before(func, other, node.lineno):
            yield Mutation("variable", f"`{node.id}` -> `{other}`", round(0.15 + 0.15 * score, 3), src.replace(node, other))


def similar_attribute(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`self._attrs` where `self.attrs` was meant: another attribute the file reads on the same
    receiver, spelled alike; or a local named after the attribute (`x.traceback` -> `ntraceback`)."""
    if not (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)):
        return
    parent = src.parent.get(node)
    if isinstance(parent, ast.Call) and parent.func is node:
        return  # a method: method_swap and antonym cover the known pairs
    here = src.attributes.get(src.seg(node.value), set())
    # on the same receiver a shared word will do; from elsewhere in the file only a near-spelling
    alike = sorted({(_likeness(node.attr, a), a) for attrs in src.attributes.values() for a in attrs}, reverse=True)
    alike = [(score, other) for score, other in alike if score >= (0.5 if other in here else 0.8)]
    end = src.span(node)[1]
    same = _same_attribute_in_statement(src, node)
    for score, other in alike[:2]:
        prior = round(0.15 + 0.1 * score, 3)
        yield Mutation("attribute", f"`.{node.attr}` -> `.{other}`", prior, (Edit(end - len(node.attr), end, other),))
        if len(same) > 1:  # `a.indexes, b.indexes` -> `a.xindexes, b.xindexes`: one rename, every use
            edits = tuple(Edit(src.span(n)[1] - len(n.attr), src.span(n)[1], other) for n in same)
            yield Mutation("attribute", f"every `.{node.attr}` -> `.{other}`", prior, edits)
    if (func := src.function_of(node)) is not None:
        for local in sorted(_locals(func)):
            if local != node.attr and local.endswith(node.attr) and _bound_before(func, local, node.lineno):
                yield Mutation("variable", f"`{src.seg(node)}` -> `{local}`", 0.2, src.replace(node, local))


def _same_attribute_in_statement(src: Source, node: ast.Attribute) -> list[ast.Attribute]:
    stmt: ast.AST = node
    while stmt in src.parent and not isinstance(stmt, ast.stmt):
        stmt = src.parent[stmt]
    return [
        n
        for root in header(stmt)[1]
        for n in ast.walk(root)
        if isinstance(n, ast.Attribute) and n.attr == node.attr and isinstance(n.ctx, ast.Load)
    ]


def charset_member(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`c in " \t\r,"` where one of the characters must not count."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn)):
        return
    lit = node.comparators[0]
    if isinstance(lit, ast.Constant) and isinstance(lit.value, str) and 2 <= len(lit.value) <= 8:
        if len(set(lit.value)) == len(lit.value):  # a set of characters, not a word
            quote = src.seg(lit)[:1]
            for i, ch in enumerate(lit.value):
                new = repr(lit.value[:i] + lit.value[i + 1 :])
                if quote == '"' and '"' not in new:
                    new = f'"{new[1:-1]}"'  # keep the file's quote
                yield Mutation("charset", f"drop {ch!r} from {lit.value!r}", 0.15, src.replace(lit, new))


def none_default(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`x or default` where only None means "missing" (0, "" and False are values)."""
    if not (isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and len(node.values) == 2):
        return
    parent = src.parent.get(node)
    if isinstance(parent, ast.If | ast.While | ast.Assert | ast.IfExp | ast.BoolOp | ast.UnaryOp):
        return  # a condition: there truthiness is what `or` means
    first, default = node.values
    if not isinstance(first, ast.Name | ast.Attribute | ast.Subscript):
        return
    x = src.seg(first)
    text = f"{x} if {x} is not None else {src.seg(default)}"
    yield Mutation("none-default", f"`{src.seg(node)}` -> `{text}`", 0.3, src.replace(node, text))


def truthy_guard(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`if s[-1] == x` that fails on an empty or None `s`: the condition first checks `s`."""
    parent = src.parent.get(node)
    if not (isinstance(parent, ast.If | ast.While | ast.IfExp) and parent.test is node):
        return
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return
    if (func := src.function_of(node)) is None:
        return
    names: list[str] = []
    bound = _locals(func) - {"self", "cls"}
    for n in ast.walk(node):
        if isinstance(n, ast.Subscript | ast.Attribute) and isinstance(n.value, ast.Name) and isinstance(n.ctx, ast.Load):
            if n.value.id in bound and n.value.id not in names:
                names.append(n.value.id)
    here = src.seg(node)
    if isinstance(node, ast.IfExp | ast.Lambda | ast.NamedExpr):
        here = f"({here})"
    for name in names[:2]:
        yield Mutation("guard", f"check `{name}` first: `{name} and ...`", 0.25, src.replace(node, f"{name} and {here}"))


def _read_names(func: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _unused_parameters(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    read = _read_names(func)
    params = [a.arg for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs]
    return [p for p in params if p not in read and p not in ("self", "cls") and not p.startswith("_")]


def forward_parameter(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`helper(x)` where `helper(x, n)` was meant: a parameter the function never reads (or its
    `*args`/`**kwargs`) is passed on: as the next argument, by keyword, or in place of a literal."""
    if not isinstance(node, ast.Call) or (func := src.function_of(node)) is None:
        return
    read = _read_names(func)
    star = [f"*{a.arg}" for a in [func.args.vararg] if a and a.arg not in read]
    star += [f"**{a.arg}" for a in [func.args.kwarg] if a and a.arg not in read]
    if star and not node.args and not node.keywords:
        text = ", ".join(star)
        yield Mutation("forward", f"pass `{text}` on", 0.35, (_appended(src, node, text),))
    positional_end = src.span(node.args[-1])[1] if node.args else None
    for p in _unused_parameters(func)[:3]:
        yield Mutation("forward", f"pass `{p}=` on", 0.3, (_appended(src, node, f"{p}={p}"),))
        if positional_end is not None and not any(isinstance(a, ast.Starred) for a in node.args):
            yield Mutation("forward", f"pass `{p}` on", 0.3, (Edit(positional_end, positional_end, f", {p}"),))
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            if _placeholder(arg):
                yield Mutation("forward", f"`{src.seg(arg)}` -> `{p}`", 0.3, src.replace(arg, p))


def _appended(src: Source, call: ast.Call, arg: str) -> Edit:
    """`arg` added as the call's last argument, before its closing parenthesis."""
    close = src.span(call)[1] - 1
    inner = src.text[src.span(call.func)[1] : close].rstrip()
    sep = "" if inner == "(" else " " if inner.endswith(",") else ", "
    return Edit(close, close, sep + arg)


def _placeholder(node: ast.AST) -> bool:
    """An argument that stands for "nothing": None, 0, "", or an empty list, tuple or dict."""
    if isinstance(node, ast.Constant):
        return node.value is None or (node.value in (0, "") and not isinstance(node.value, bool))
    return isinstance(node, ast.List | ast.Tuple) and not node.elts or isinstance(node, ast.Dict) and not node.keys


def isinstance_widen(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`isinstance(x, A)` where `(A, B)` was meant: B another type the file checks, from the same
    namespace (`nodes.Call` -> `nodes.Name`), most checked first."""
    if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance" and len(node.args) == 2):
        return
    kind = node.args[1]
    if not isinstance(kind, ast.Name | ast.Attribute):
        return
    prefix = src.seg(kind).rpartition(".")[0]
    counts: dict[str, int] = {}
    for n in ast.walk(src.tree):
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "isinstance" and len(n.args) == 2:
            for t in n.args[1].elts if isinstance(n.args[1], ast.Tuple) else [n.args[1]]:
                text = src.seg(t)
                if isinstance(t, ast.Name | ast.Attribute) and text != src.seg(kind) and text.rpartition(".")[0] == prefix:
                    counts[text] = counts.get(text, 0) + 1
    for other, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:3]:
        yield Mutation("isinstance", f"also accept `{other}`", 0.2, src.replace(kind, f"({src.seg(kind)}, {other})"))


def reversed_iteration(src: Source, stmt: ast.AST) -> Iterator[Mutation]:
    """`for x in xs` where the items must be taken last first."""
    if isinstance(stmt, ast.For) and not (isinstance(stmt.iter, ast.Call) and getattr(stmt.iter.func, "id", "") == "reversed"):
        if not isinstance(stmt.iter, ast.Call | ast.Constant):  # a generator may not be reversible
            it = src.seg(stmt.iter)
            yield Mutation("order", f"iterate `reversed({it})`", 0.15, src.replace(stmt.iter, f"reversed({it})"))


def flipped_default(src: Source, node: ast.AST) -> Iterator[Mutation]:
    """`f(x)` where `f(x, strict=True)` was meant: a True/False default of a function this file
    defines, not passed here, passed flipped."""
    if not isinstance(node, ast.Call):
        return
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    passed = {k.arg for k in node.keywords}
    for d in src.functions.get(name or "", [])[:1]:
        positional = d.args.posonlyargs + d.args.args
        pairs = list(zip(positional[len(positional) - len(d.args.defaults) :], d.args.defaults, strict=True))
        pairs += [(a, v) for a, v in zip(d.args.kwonlyargs, d.args.kw_defaults, strict=True) if v is not None]
        for arg, default in pairs:
            if isinstance(default, ast.Constant) and isinstance(default.value, bool) and arg.arg not in passed:
                text = f"{arg.arg}={not default.value}"
                yield Mutation("flag", f"pass `{text}`", 0.2, (_appended(src, node, text),))
