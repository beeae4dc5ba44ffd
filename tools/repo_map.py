"""The repository map: the most relevant definitions of a repository, fitted to a token budget.

Files are ranked by personalised PageRank over "uses an identifier defined in" links (tools/pagerank),
personalised toward the files and identifiers of the issue and plan. Each definition then scores the
rank that flows into its file through its own name, and the map prints the best ones as
`path:` followed by `line│signature` lines, methods indented under their class. The number of
definitions is found by binary search so the map uses 95-100% of the budget and never more.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from treefix.tools.index import RefreshStats, RepoIndex
from treefix.tools.pagerank import HubGraph, Ranking, pagerank
from treefix.tools.tags import Definition
from treefix.tools.tokens import count_tokens
from treefix.tools.treesitter import language_name

FILL = 0.95  # a rendering below this share of the budget is topped up with smaller items
TOP_UP_TRIES = 40
_SHOWN_UNDER = {"class", "interface", "impl", "module", "enum"}  # definitions nested in these are shown
_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FAMILY = {"typescript": "js", "tsx": "js", "javascript": "js"}


@dataclass
class _Graph:
    files: list[str]
    file_index: dict[str, int]
    families: list[str]  # file -> language family (identifiers only link within a family)
    idents: list[str]  # hub -> identifier name
    ident_index: dict[tuple[str, str], int]  # (family, name) -> hub
    by_name: dict[str, list[int]]  # name -> hubs in every family
    definers: list[list[int]]
    homes: list[list[int]]  # the definers that really implement it: no stubs, no `x = other.x` re-exports
    uses: list[list[tuple[int, float]]]  # file -> (identifier, weight: sqrt(number of uses) x heuristics)
    users: list[list[int]]  # identifier -> files that use it


class RepoMap:
    def __init__(self, root: Path, cache_dir: Path | None = None, index: RepoIndex | None = None) -> None:
        self.root = root.resolve()
        self.index = index or RepoIndex(self.root, cache_dir)
        self._graph: _Graph | None = None
        self._ranks: dict[tuple[tuple[str, ...], tuple[str, ...]], Ranking] = {}  # siblings share a focus

    # ------------------------------------------------------------ public

    def refresh(self) -> RefreshStats:
        stats = self.index.refresh()
        if stats.parsed or stats.files != len(self._graph.files if self._graph else ()):
            self._graph = None
            self._ranks.clear()
        return stats

    def files(self) -> list[str]:
        return self._ensure().files

    def split_focus(self, items: Iterable[str]) -> tuple[list[str], list[str]]:
        """Sort user-given focus items into repository files and identifiers."""
        graph = self._ensure()
        files, idents = [], []
        for item in items:
            match = self._match_file(item.strip().strip("`'\"").lstrip("./"), graph)
            if match:
                files.append(match)
            else:
                idents.extend(_WORDS.findall(item.split(".")[-1] if "/" not in item else item))
        return files, idents

    def focus_from_text(self, text: str) -> tuple[list[str], list[str]]:
        """Files and identifiers of this repository mentioned in free text (an issue, a plan)."""
        graph = self._ensure()
        files: list[str] = []
        for token in re.findall(r"[\w./-]+\.\w+", text):  # a path, or a unique tail of one
            if (match := self._match_file(token.lstrip("./"), graph)) and match not in files:
                files.append(match)
        idents = []
        for word in dict.fromkeys(_WORDS.findall(text)):
            if word in graph.by_name and (_code_like(word) or f"`{word}" in text or f"{word}(" in text):
                idents.append(word)
        return files, idents

    def rank_files(
        self, focus_files: Sequence[str] = (), focus_idents: Sequence[str] = ()
    ) -> list[tuple[str, float]]:
        graph = self._ensure()
        ranking = self._rank(graph, focus_files, focus_idents)
        order = sorted(range(len(graph.files)), key=lambda i: -ranking.files[i])
        return [(graph.files[i], ranking.files[i]) for i in order]

    def render(self, tokens: int, focus_files: Sequence[str] = (), focus_idents: Sequence[str] = ()) -> str:
        graph = self._ensure()
        if tokens <= 0 or not graph.files:
            return ""
        items = self._ranked_items(graph, self._rank(graph, focus_files, focus_idents), focus_idents)
        return _fit(items, tokens, self.index)

    # ------------------------------------------------------------ ranking

    def _ensure(self) -> _Graph:
        if self._graph is None:
            if not self.index.entries:
                self.index.refresh()
            self._graph = _build_graph(self.index)
        return self._graph

    def _match_file(self, item: str, graph: _Graph) -> str | None:
        if item in graph.file_index:
            return item
        hits = [f for f in graph.files if f.endswith("/" + item)]
        return hits[0] if len(hits) == 1 else None

    def _rank(self, graph: _Graph, focus_files: Sequence[str], focus_idents: Sequence[str]) -> Ranking:
        key = (tuple(sorted(set(focus_files))), tuple(sorted(set(focus_idents))))
        if key not in self._ranks:
            if len(self._ranks) > 16:
                self._ranks.clear()
            self._ranks[key] = self._compute_rank(graph, focus_files, focus_idents)
        return self._ranks[key]

    def _compute_rank(
        self, graph: _Graph, focus_files: Sequence[str], focus_idents: Sequence[str]
    ) -> Ranking:
        focus_f = {graph.file_index[f] for f in focus_files if f in graph.file_index}
        focus_i = {h for i in focus_idents for h in graph.by_name.get(i, ())}
        uses = graph.uses
        if focus_f or focus_i:  # reweigh only the files the focus touches
            uses = list(uses)
            for f in focus_f | {f for h in focus_i for f in graph.users[h]}:
                boost = 50 if f in focus_f else 1
                uses[f] = [(h, w * boost * (10 if h in focus_i else 1)) for h, w in uses[f]]
        # Personalisation: mostly the focus (named files, files defining named identifiers, files whose
        # path mentions a named identifier), with a little uniform mass so unrelated files still rank.
        wanted = set(focus_f)
        for h in focus_i:
            wanted.update(graph.homes[h])
        lowered = {i.lower() for i in focus_idents if len(i) >= 4}
        if lowered:
            for f, path in enumerate(graph.files):
                if any(part in lowered for part in re.split(r"[/._-]", path.lower())):
                    wanted.add(f)
        n = len(graph.files)
        person = [0.1 / n] * n
        for f in wanted:
            person[f] += 0.9 / len(wanted)
        return pagerank(HubGraph(n, graph.definers, uses), person if wanted else None)

    def _ranked_items(self, graph: _Graph, ranking: Ranking, focus_idents: Sequence[str]) -> list[_Item]:
        focus = set(focus_idents)
        items: list[_Item] = []
        for f, path in enumerate(graph.files):
            defs = self.index.entries[path].definitions  # raw tuples: cheaper than Definition objects here
            if not defs:
                continue
            tie = ranking.files[f] / len(defs)  # definitions nobody uses still follow their file's rank
            visible = [True] * len(defs)
            for d_index, (name, _, _, _, _, parent, _) in enumerate(defs):
                if parent >= 0 and not (visible[parent] and defs[parent][1] in _SHOWN_UNDER):
                    visible[d_index] = False  # locals inside functions, and everything inside those
                    continue
                h = graph.ident_index.get((graph.families[f], name))
                score = (ranking.flow[h] if h is not None else 0.0) + tie
                if name in focus:
                    score *= 10
                items.append(_Item(score, path, d_index))
        items.sort(key=lambda it: (-it.score, it.path, it.def_index))
        shown = {it.path for it in items}
        order = sorted(range(len(graph.files)), key=lambda i: -ranking.files[i])
        items += [_Item(0.0, graph.files[i], -1) for i in order if graph.files[i] not in shown]
        return items


@dataclass
class _Item:
    score: float
    path: str
    def_index: int  # -1: the file alone, no definitions


def _build_graph(index: RepoIndex) -> _Graph:
    files = sorted(index.entries)
    file_index = {f: i for i, f in enumerate(files)}
    # Python code does not call a Go method of the same name: identifiers link within a language family.
    languages = [language_name(f) or "" for f in files]
    families = [_FAMILY.get(lang, lang) for lang in languages]
    ident_index: dict[tuple[str, str], int] = {}
    definers: list[list[int]] = []
    homes: list[list[int]] = []
    stems = {f.removesuffix(".py") for f in files if f.endswith(".py")}
    for f, path in enumerate(files):
        stub = path.endswith(".pyi") and path[:-4] in stems
        for d in index.entries[path].definitions:
            h = ident_index.setdefault((families[f], d[0]), len(definers))
            if h == len(definers):
                definers.append([])
                homes.append([])
            if not definers[h] or definers[h][-1] != f:
                definers[h].append(f)
            if not stub and d[1] != "constant" and (not homes[h] or homes[h][-1] != f):
                homes[h].append(f)
    homes = [home or every for home, every in zip(homes, definers, strict=True)]
    mult = [_ident_weight(name, len(d)) for (_, name), d in zip(ident_index, definers, strict=True)]
    uses: list[list[tuple[int, float]]] = []
    users: list[list[int]] = [[] for _ in definers]
    for f, path in enumerate(files):
        refs, fam = index.entries[path].references, families[f]
        hubs = [(ident_index[(fam, n)], c) for n, c in refs.items() if (fam, n) in ident_index]
        uses.append([(h, mult[h] * math.sqrt(c)) for h, c in hubs])
        for h, _ in hubs:
            users[h].append(f)
    by_name: dict[str, list[int]] = {}
    for (_, name), h in ident_index.items():
        by_name.setdefault(name, []).append(h)
    idents = [name for _, name in ident_index]
    return _Graph(files, file_index, families, idents, ident_index, by_name, definers, homes, uses, users)


def _ident_weight(name: str, n_definers: int) -> float:
    # Aider's heuristics: long specific names matter, private and ubiquitous ones much less.
    weight = 1.0
    if len(name) >= 8 and ("_" in name.strip("_") or (name.lower() != name and name.upper() != name)):
        weight *= 10
    if name.startswith("_") or len(name) < 3:
        weight *= 0.1
    if n_definers > 5:
        weight *= 0.1
    return weight


def _code_like(word: str) -> bool:
    return "_" in word.strip("_") or (any(c.isupper() for c in word[1:]) and any(c.islower() for c in word))


# ------------------------------------------------------------ rendering


def _fit(items: list[_Item], budget: int, index: RepoIndex) -> str:
    """The longest rendering of a prefix of `items` within the budget, topped up toward 95% of it."""
    cache: dict[str, list[Definition]] = {}

    def defs(path: str) -> list[Definition]:
        if path not in cache:
            cache[path] = index.definitions(path)
        return cache[path]

    def measure(chosen: list[_Item]) -> tuple[str, int]:
        text = _render(chosen, defs)
        return text, count_tokens(text)

    # Gallop to bracket the answer, then bisect: renderings stay near the budget, so each count is cheap.
    lo, hi = 0, len(items)  # invariant: prefix lo fits; prefixes longer than hi do not
    best, best_tokens = "", 0
    step = max(1, budget // 40)
    while lo < hi:
        probe = min(lo + step, hi)
        text, used = measure(items[:probe])
        if used > budget:
            hi = probe - 1
            break
        lo, best, best_tokens = probe, text, used
        step *= 2
    while lo < hi:
        mid = (lo + hi + 1) // 2
        text, used = measure(items[:mid])
        if used <= budget:
            lo, best, best_tokens = mid, text, used
        else:
            hi = mid - 1
    chosen = items[:lo]
    # The next item did not fit; later, smaller ones may (a method under a class already shown).
    for item in items[lo + 1 : lo + 1 + TOP_UP_TRIES]:
        if best_tokens >= FILL * budget:
            break
        text, used = measure([*chosen, item])
        if used <= budget:
            chosen.append(item)
            best, best_tokens = text, used
    return best


def _render(chosen: list[_Item], defs_of: Callable[[str], list[Definition]]) -> str:
    by_file: dict[str, set[int]] = {}
    for item in chosen:
        wanted = by_file.setdefault(item.path, set())
        if item.def_index >= 0:
            wanted.add(item.def_index)
    out: list[str] = []
    for path, wanted in by_file.items():
        out.append(f"{path}:")
        if not wanted:
            continue
        defs = defs_of(path)
        shown = set()
        for i in wanted:
            while i >= 0 and i not in shown:  # show the enclosing class of a method too
                shown.add(i)
                i = defs[i].parent
        for i in sorted(shown):
            d = defs[i]
            out.append(f"{d.line}│{'    ' * d.depth}{d.signature}")
    return "\n".join(out) + "\n" if out else ""
