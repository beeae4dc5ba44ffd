"""OfflinePolicy: automated program repair with no model.

- plan   = a suspicious statement (Ochiai over per-test coverage, see localise.py), prior = its
           score relative to the top one;
- code   = one repair operator at that statement (operators.py), prior = the operator's prior;
- repair = a second operator on top of an attempt that passes more tests than the base did, at
           the lines the tests it still fails point to.

Every call proposes the best candidate not yet among the node's children (nor anywhere else in
the tree: candidates are deduplicated by the files they produce), so progressive widening walks
down each ranking. The spectrum is stored in the run store, so a resumed run does not gather it again.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import re
import threading
from dataclasses import asdict, dataclass

from treefix.agent.policies.base import Candidate, NoCandidate, SearchContext
from treefix.agent.policies.localise import (
    Site,
    Spectrum,
    assertion_values,
    failure_clues,
    frame_weights,
    gather,
    ochiai,
)
from treefix.agent.policies.operators import Clues, Mutation, compiles, mutations, parse, statement_line
from treefix.agent.tree import BASE_SECONDS_KEY, Judgement, Node, NodeKind
from treefix.tools.diffs import changed_paths
from treefix.tools.testing import PASSED

SPECTRUM_KEY = "offline/spectrum"
BASELINE_KEY = "offline/baseline"  # pass fraction of the task's tests at base
MAX_PLANS = 40  # suspicious lines worth a plan
REPAIR_SITES = 12  # lines a repair looks at
UNMENTIONED = 0.75  # rank factor for lines whose function neither the issue nor a failing test's name names
SIGNATURE = 0.5  # rank factor for a suspicious function's `def` line (its default values)
FRAME_FUNCTION = 2.0  # rank factor per unit of traceback weight on the function a failing test raised in
GROUP_DECAY = 0.95  # each further line of a function ranks as if its function's best were this much lower
REPORTING = {"__repr__", "__str__"}
REPORTING_FACTOR = 0.3


@dataclass(frozen=True)
class Proposal:
    """What a plan/code/repair node is, kept as its content so later calls can see what was tried."""

    path: str
    line: int
    score: float = 0.0
    operator: str = ""
    description: str = ""
    state: str = ""  # hash of the files this attempt produces

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> Proposal | None:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None


class OfflinePolicy:
    name = "offline"
    # Its search settings (many operators per line, values from OfflineCritic alone) are the
    # policy defaults in agent/config.py: the lowest source, so a user's explicit value wins.

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._spectrum: Spectrum | None = None
        self._sites: list[Site] | None = None
        self._base: dict[str, str] = {}

    # ---- Policy -------------------------------------------------------------------------------
    def plan(self, ctx: SearchContext, root: Node) -> Candidate:
        tried = {(p.path, p.line) for p in _proposals(ctx.store.children(root.id))}
        for site in self.sites(ctx):
            if (site.path, site.line) not in tried:
                text = self.base_text(ctx, site.path)
                code = text.splitlines()[site.line - 1].strip() if site.line <= text.count("\n") + 1 else ""
                return Candidate(
                    title=f"suspicious {site.path}:{site.line} `{code[:60]}` ({site.score:.2f})",
                    content=Proposal(site.path, site.line, site.score).dumps(),
                    prior=self._plan_prior(ctx, site),
                )
        raise NoCandidate

    def _plan_prior(self, ctx: SearchContext, site: Site) -> float:
        """The site's score relative to the top site's, so the top plan starts at value 1."""
        top = self.sites(ctx)[0].score or 1.0
        return round(min(max(site.score / top, 0.01), 1.0), 4)

    def code(self, ctx: SearchContext, plan: Node) -> Candidate:
        site = Proposal.loads(plan.content)
        if site is None:
            raise NoCandidate
        text = self.base_text(ctx, site.path)
        seen = self._seen_states(ctx)
        for m in mutations(text, site.line, self.hints(ctx), self.clues(ctx)):
            if (cand := self._candidate(site.path, site.line, text, m, {}, seen)) is not None:
                return cand
        raise NoCandidate

    def repair(self, ctx: SearchContext, node: Node) -> Candidate:
        spectrum = self.spectrum(ctx)
        bar = spectrum.baseline
        if node.kind is NodeKind.REPAIR and node.parent:
            parent = ctx.store.get(node.parent)
            bar = max(bar, parent.exec.score if parent.exec else 0.0)
        if node.exec is None or node.exec.score <= bar + 1e-9:
            raise NoCandidate  # only attempts that beat the base (and their own parent) earn another edit
        still = {t for t, o in node.exec.tests.items() if o not in (PASSED, "skipped")} & set(spectrum.tests)
        sites = self._rank(ctx, ochiai(spectrum, still)) if still else self.sites(ctx)
        changed = changed_paths(node.diff)
        paths = list(dict.fromkeys(changed + [s.path for s in sites[:REPAIR_SITES]]))
        current = ctx.workspace_files(node.diff, paths, limit=10**8)
        touched = {p: current[p] for p in changed if p in current}
        seen = self._seen_states(ctx)
        options: list[tuple[float, str, int, Mutation]] = []
        for site in sites[:REPAIR_SITES]:
            if site.path not in current:
                continue
            line = _moved_line(self.base_text(ctx, site.path), current[site.path], site.line)
            options += [
                (site.score * m.prior, site.path, line, m)
                for m in mutations(current[site.path], line, self.hints(ctx), self.clues(ctx))
            ]
        for _, path, line, m in sorted(options, key=lambda o: -o[0]):
            if m.apply(current[path]) == self.base_text(ctx, path):
                continue  # undoes the parent's edit
            if (cand := self._candidate(path, line, current[path], m, touched, seen)) is not None:
                cand.title = "+ " + cand.title
                return cand
        raise NoCandidate

    # ---- localisation -------------------------------------------------------------------------
    def spectrum(self, ctx: SearchContext) -> Spectrum:
        with self._lock:
            if self._spectrum is None:
                cached = ctx.store.get_meta(SPECTRUM_KEY)
                if cached is not None:
                    self._spectrum = Spectrum.from_dict(cached)
                else:
                    spectrum = gather(ctx)
                    ctx.store.set_meta(SPECTRUM_KEY, spectrum.to_dict())
                    ctx.store.set_meta(BASELINE_KEY, spectrum.baseline)
                    if spectrum.seconds and not spectrum.error:
                        ctx.store.set_meta(BASE_SECONDS_KEY, spectrum.seconds)
                    failing = len(spectrum.failing)
                    ctx.store.event(
                        "localise", tests=len(spectrum.tests), failing=failing, error=spectrum.error
                    )
                    self._spectrum = spectrum
            return self._spectrum

    def hints(self, ctx: SearchContext) -> tuple[int, ...]:
        """Values the failing assertions got and expected, for constants informed by them."""
        return assertion_values(self.spectrum(ctx))

    def clues(self, ctx: SearchContext) -> Clues:
        """Text the failing assertions expected, and whether a None broke them."""
        return failure_clues(self.spectrum(ctx))

    def sites(self, ctx: SearchContext) -> list[Site]:
        with self._lock:
            if self._sites is None:
                self._sites = self._rank(ctx, ochiai(self.spectrum(ctx)))[:MAX_PLANS]
                # the ranking, for diagnostics (did localisation reach the faulty line, and how high?)
                ctx.store.event("sites", sites=[[s.path, s.line, s.score] for s in self._sites])
            return self._sites

    def _rank(self, ctx: SearchContext, sites: list[Site]) -> list[Site]:
        """One site per statement, ordered by function first, then by line.

        Ochiai ties are common (every line that the failing tests run and no passing test does
        scores the same), and a function's best line is stronger evidence than any one line, so
        sites are grouped by (outermost) function and groups ranked by their best site; each
        further line of a group ranks a little lower (GROUP_DECAY), so one long function cannot
        hold every plan. A site's score is also weighed by whether the issue or a failing test's
        name names its function, and how repairable the line looks. `__repr__`/`__str__` are
        discounted: pytest's assertion messages run them in failing tests only.
        """
        issue = set(re.findall(r"\w+", ctx.task.problem_statement))
        tested = _tested_names(self.spectrum(ctx).failing)
        raised = self._raising_functions(ctx)
        scored: dict[tuple[str, int], tuple[float, tuple[str, int]]] = {}  # site -> (score, function)

        def add(key: tuple[str, int], score: float, group: tuple[str, int]) -> None:
            if key not in scored or scored[key][0] < score:
                scored[key] = (score, group)

        for site in sites:
            text = self.base_text(ctx, site.path)
            src, line = parse(text), statement_line(text, site.line)
            ops = mutations(text, line, self.hints(ctx), self.clues(ctx)) if line else ()
            if src is None or line is None or not ops:
                continue
            funcs = _functions_at(src.tree, line)
            func = funcs[-1] if funcs else None
            named = any(f.name in issue or _named_in(f.name, tested) for f in funcs)
            factor = 1.0 if named else UNMENTIONED
            if func is not None and func.name in REPORTING and func.name not in issue:
                factor *= REPORTING_FACTOR
            if func is not None:
                factor *= 1 + FRAME_FUNCTION * raised.get((site.path, func.lineno), 0.0)
            score = site.score * factor * (0.5 + 0.5 * ops[0].prior)
            group = (site.path, funcs[0].lineno if funcs else line)  # a closure counts with its function
            add((site.path, line), score, group)
            if func is not None and (func.args.defaults or func.args.kw_defaults):
                add((site.path, func.lineno), score * SIGNATURE, group)
        best: dict[tuple[str, int], float] = {}
        for score, group in scored.values():
            best[group] = max(best.get(group, 0.0), score)
        order = sorted(scored.items(), key=lambda kv: (-best[kv[1][1]], kv[1][1], -kv[1][0]))
        nth: dict[tuple[str, int], int] = {}
        ranked = []
        for pos, ((path, line), (score, group)) in enumerate(order):
            k = nth[group] = nth.get(group, -1) + 1
            ranked.append((-best[group] * GROUP_DECAY**k, pos, Site(path, line, round(score, 4))))
        return [site for *_, site in sorted(ranked)]

    def _raising_functions(self, ctx: SearchContext) -> dict[tuple[str, int], float]:
        """(path, def line) -> traceback weight of the innermost function around each frame of
        the failing tests: the function a test raised in is suspect even where every test runs it."""
        out: dict[tuple[str, int], float] = {}
        for (path, line), w in frame_weights(self.spectrum(ctx)).items():
            src = parse(self.base_text(ctx, path))
            funcs = _functions_at(src.tree, line) if src else []
            if funcs:
                key = (path, funcs[-1].lineno)
                out[key] = max(out.get(key, 0.0), w)
        return out

    def base_text(self, ctx: SearchContext, path: str) -> str:
        with self._lock:
            if path not in self._base:
                self._base[path] = ctx.workspace_files("", [path], limit=10**8).get(path, "")
            return self._base[path]

    # ---- candidates ---------------------------------------------------------------------------
    def _candidate(
        self, path: str, line: int, text: str, m: Mutation, touched: dict[str, str], seen: set[str]
    ) -> Candidate | None:
        new = m.apply(text)
        state = _state({**touched, path: new})
        if state in seen or not compiles(new):
            return None
        return Candidate(
            title=f"{m.operator}: {m.description} at {path}:{line}",
            content=Proposal(path, line, 0.0, m.operator, m.description, state).dumps(),
            diff=unified_diff(path, text, new),
            prior=round(m.prior, 4),
        )

    def _seen_states(self, ctx: SearchContext) -> set[str]:
        nodes = [n for n in ctx.store.nodes() if n.kind in (NodeKind.CODE, NodeKind.REPAIR)]
        return {p.state for p in _proposals(nodes) if p.state}


class OfflineCritic:
    """Execution only, measured from the base: the share of the base's failures an attempt fixes,
    net of what it breaks. An edit that changes nothing is worth 0 here rather than the base's
    pass rate, so the search is not drawn to lines where edits make no difference."""

    def judge(self, ctx: SearchContext, node: Node) -> Judgement:
        if node.kind is NodeKind.PLAN:
            return Judgement(node.prior, "suspiciousness of the line")
        ex = node.exec
        if ex is None or not (ex.applied and ex.compiled) or ex.total == 0:
            return Judgement(0.0, "not run")
        base = ctx.store.get_meta(BASELINE_KEY)
        if base is None:  # a follow-up with new tests re-evaluates its node before any localisation
            base = OfflinePolicy().spectrum(ctx).baseline
        base = float(base)
        gain = (ex.score - base) / (1 - base) if base < 1 else ex.score
        return Judgement(round(min(max(gain, 0.0), 1.0), 4), f"{ex.passed}/{ex.total} pass, base {base:.2f}")


def _proposals(nodes: list[Node]) -> list[Proposal]:
    return [p for n in nodes if (p := Proposal.loads(n.content)) is not None]


def _state(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + files[path].encode() + b"\0")
    return h.hexdigest()[:16]


def _tested_names(failing: set[str]) -> str:
    """The failing tests' class and function names, snake_case, one per line: a test is usually
    named after what it tests (`test_parse_version_string`, `WeeksPropertyGetterTest`)."""
    names = set()
    for test in failing:
        for part in re.split(r"::", re.sub(r"\[.*", "", test))[1:]:
            names.add(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", part).lower())
    return "\n".join(sorted(names))


def _named_in(name: str, tested: str) -> bool:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip("_")).lower()
    return (
        len(name) >= 4
        and name != "test"
        and re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", tested) is not None
    )


def _functions_at(tree: ast.AST, line: int) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The functions enclosing `line`, outermost first."""
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.lineno <= line <= (node.end_lineno or 0)
    ]
    return sorted(found, key=lambda f: f.lineno)


def _moved_line(old: str, new: str, line: int) -> int:
    """Where line `line` of `old` is in `new` (an inserted guard shifts what follows it)."""
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    for tag, i1, i2, j1, _ in matcher.get_opcodes():
        if i1 <= line - 1 < i2:
            return j1 + (line - 1 - i1) + 1 if tag == "equal" else j1 + 1
    return line


def unified_diff(path: str, old: str, new: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=3
    )
    out = []
    for ln in lines:
        out.append(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n")
    return "".join(out)
