"""A search simulator: synthetic tasks solved through the real run (run_fix, graph, store, budget,
caller, tool loop, turn control), where only the model and the test run are synthetic.

A policy of chosen quality draws, per node, whether its plan is right (it may need several tool
turns to find out; a loop cut short halves its chance), whether code implements a right plan, and
whether a repair fixes a failing attempt. The visible tests pass for a true fix and, with a chance
set by the reproduction quality, for a wrong one too; the critic sees the truth through Gaussian
noise. Prompt tokens grow with depth. A task is resolved when the run's chosen node is a true fix.
Every draw comes from a generator seeded by (seed, task, node path, what is drawn), so a run is
repeatable and all strategies meet the same luck on the same node (common random numbers): the
table's paired differences compare choices, not draws.

    python -m treefix.evals.simulate --tasks 200 --out sim/
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from treefix.agent.budget import Budget, Limits
from treefix.agent.calls import Caller
from treefix.agent.config import RunConfig
from treefix.agent.models.base import Completion, Message, Price, ToolCall, ToolSpec, Usage
from treefix.agent.policies.base import Candidate, SearchContext
from treefix.agent.run import Agents, EventSink, call_recorder, run_fix
from treefix.agent.store import RunStore
from treefix.agent.task import Task
from treefix.agent.tool_loop import run_tool_loop
from treefix.agent.tree import ExecResult, Judgement, Node, NodeKind
from treefix.agent.turns import percentile

STRATEGIES = ("mcts", "best-of-n", "linear", "greedy")
BUDGETS = (8, 16, 32, 64, 128)
TESTS = 10  # visible tests per synthetic task


@dataclass(frozen=True)
class Quality:
    """How good the synthetic policy, critic and reproduction are."""

    name: str = "medium"
    p_plan: float = 0.35  # a plan is right (scaled per task by its difficulty)
    p_code: float = 0.4  # code implements a right plan
    p_repair: float = 0.3  # a repair fixes a failing attempt of a right plan
    critic_noise: float = 0.2  # sd of the critic's error on a [0, 1] scale
    repro: float = 0.8  # the visible tests catch a wrong fix; else they pass it too (a false "verified")
    tokens: int = 3000  # prompt tokens of a node at depth 1
    growth: float = 0.5  # extra prompt share per level of depth
    look: float = 3.0  # mean tool turns a plan needs before it can be right


QUALITIES = {
    "weak": Quality("weak", p_plan=0.2, p_code=0.3, p_repair=0.2, critic_noise=0.3, repro=0.7),
    "medium": Quality("medium"),
    "strong": Quality("strong", p_plan=0.5, p_code=0.6, p_repair=0.45, critic_noise=0.1, repro=0.9),
}


# ---- the synthetic model: spends turns and tokens through the real Caller --------------------------
HEAD = re.compile(r"^SIM need=(\d+) tokens=(\d+)", re.M)


class SimModel:
    """A ChatModel. A plan prompt says how many tool turns the plan needs; the model looks around
    (a real `view` tool call) until it has them, asks for more turns (`EXTEND:`) when a reminder
    invites it and it has not, and answers when asked to."""

    name = "sim"

    def price(self) -> Price | None:
        return Price(3.0, 15.0)

    def complete(self, messages: list[Message], tools: list[ToolSpec] | None = None, **params: Any) -> Completion:
        first = next(m for m in messages if m.role == "user" and HEAD.match(m.content))
        m = HEAD.match(first.content)
        assert m is not None
        need, tokens = int(m.group(1)), int(m.group(2))
        made = sum(1 for x in messages if x.role == "assistant" and x.tool_calls)
        usage = Usage(tokens + 400 * made, 300)
        if not tools or made >= need:
            return Completion("TITLE: simulated answer", usage=usage, model=self.name)
        last = messages[-1].content if messages[-1].role == "user" else ""
        left = re.search(r"(\d+) turns? left", last)
        ask = "EXTEND:" in last and left is not None and int(left.group(1)) < need - made
        text = f"EXTEND: {need - made} more files to read" if ask else ""
        return Completion(text, [ToolCall(f"c{made}", "view", {"path": "sim.py"})], usage, model=self.name)


# ---- the synthetic policy, critic and evaluator --------------------------------------------------------
@dataclass
class SimTask:
    """One synthetic task. Every draw is keyed by (seed, task, node path, purpose): the i-th plan of
    the root, its j-th code child and so on have the same luck under every strategy and budget
    (common random numbers), so two strategies differ on a task only by what they choose to try."""

    index: int
    seed: int
    quality: Quality
    difficulty: float = field(init=False)

    def __post_init__(self) -> None:
        self.trace: list[tuple[int, bool, bool]] = []  # per attempt: (turns spent when tested, verified, fixed)
        self.tested: dict[str, bool] = {}  # node path -> a true fix, per attempt tested
        self.difficulty = self._rng("difficulty").betavariate(2.0, 2.0) * 2  # mean 1: some tasks twice as hard
        self.lock = threading.Lock()
        self.paths: set[str] = set()

    def _rng(self, key: str) -> random.Random:
        return random.Random(f"{self.seed}/{self.index}/{key}")

    def draw(self, key: str) -> float:
        return self._rng(key).random()

    def gauss(self, key: str, sd: float) -> float:
        return self._rng(key).gauss(0.0, sd)

    def child_path(self, parent: str, siblings: int) -> str:
        """The path of a parent's next child: `p2` (the root's third plan), `p2/c0`, `p2/c0/c1`.
        Parallel expansions may see the same sibling count; the later one takes the next free index."""
        with self.lock:
            while (path := f"{parent}/c{siblings}" if parent else f"p{siblings}") in self.paths:
                siblings += 1
            self.paths.add(path)
            return path


def latent(node: Node) -> dict[str, Any]:
    return json.loads(node.content.splitlines()[-1]) if node.content else {}


class SimPolicy:
    name = "sim"

    def __init__(self, task: SimTask, tools_dir: Path):
        self.task, self.q, self.tools_dir = task, task.quality, tools_dir

    def _tokens(self, depth: int) -> int:
        return int(self.q.tokens * (1 + self.q.growth * (depth - 1)))

    def _ask(self, ctx: SearchContext, role: str, depth: int, usage: dict[str, float]) -> None:
        assert ctx.caller is not None
        ctx.caller(role, [Message("user", f"SIM need=0 tokens={self._tokens(depth)}")], usage=usage)

    def plan(self, ctx: SearchContext, root: Node) -> Candidate:
        assert ctx.caller is not None
        caller, usage = ctx.caller, {}
        path = self.task.child_path("", len(ctx.store.children(root.id)))
        need = min(int(self.task.draw(f"{path}/need") * 2 * self.q.look) + 1, 12)
        turns = ctx.budget.limits.turns_per_node - 1
        caps = ctx.turns.loop(turns) if ctx.turns else None
        prompt = [Message("user", f"SIM need={need} tokens={self._tokens(1)}")]
        _, messages = run_tool_loop(
            lambda msgs, tools: caller("plan", msgs, tools or None, usage=usage), prompt, self.tools_dir, turns, caps
        )
        looked = sum(1 for m in messages if m.role == "assistant" and m.tool_calls)
        p = min(self.q.p_plan / self.task.difficulty, 0.95) * (1.0 if looked >= need else 0.5)
        right = self.task.draw(f"{path}/right") < p
        body = {"right": right, "fixed": False, "partial": 0.0, "path": path}
        return Candidate("plan", json.dumps(body), usage=usage)

    def code(self, ctx: SearchContext, plan: Node) -> Candidate:
        return self._attempt(ctx, plan, self.q.p_code)

    def repair(self, ctx: SearchContext, node: Node) -> Candidate:
        return self._attempt(ctx, node, self.q.p_repair)

    def _attempt(self, ctx: SearchContext, parent: Node, p: float) -> Candidate:
        usage: dict[str, float] = {}
        self._ask(ctx, "code" if parent.kind is NodeKind.PLAN else "repair", parent.depth + 1, usage)
        state = latent(parent)
        path = self.task.child_path(state["path"], len(ctx.store.children(parent.id)))
        right = bool(state.get("right"))
        fixed = self.task.draw(f"{path}/fixed") < (p if right else p * 0.05)
        base = state.get("partial", 0.0)
        partial = min(0.9, base + self.task.draw(f"{path}/partial") * (0.5 if right else 0.25))
        body = json.dumps({"right": right, "fixed": fixed, "partial": partial, "path": path})
        return Candidate("attempt", f"simulated attempt\n{body}", diff=f"+sim {path}\n", usage=usage)


class SimCritic:
    def __init__(self, task: SimTask):
        self.task = task

    def judge(self, ctx: SearchContext, node: Node) -> Judgement:
        assert ctx.caller is not None
        ctx.caller("critic", [Message("user", f"SIM need=0 tokens={self.task.quality.tokens // 2}")], usage=node.usage)
        state = latent(node)
        truth = 1.0 if state.get("fixed") else 0.3 + 0.4 * state.get("partial", 0.0) if state.get("right") else 0.2
        value = min(max(truth + self.task.gauss(f"{state['path']}/critic", self.task.quality.critic_noise), 0.0), 1.0)
        return Judgement(value, "simulated")


def sim_evaluator(task: SimTask):  # type: ignore[no-untyped-def]
    def evaluate(ctx: SearchContext, node: Node) -> ExecResult | None:
        if node.kind in (NodeKind.ROOT, NodeKind.PLAN):
            return None
        ctx.budget.charge_test_run()
        state = latent(node)
        fooled = task.draw(f"{state['path']}/fooled") < (1 - task.quality.repro) * 0.3  # the visible tests miss what is wrong
        if state["fixed"] or fooled:
            passed = TESTS
        else:
            passed = min(int(state["partial"] * TESTS), TESTS - 1)
        if state["right"] and task.draw(f"{state['path']}/repro") < task.quality.repro:  # the reproduction now passes
            ctx.store.event("reproduction", node=node.id, passed=True)
        task.trace.append((ctx.budget.spent.turns, passed == TESTS, bool(state["fixed"])))
        task.tested[state["path"]] = bool(state["fixed"])
        return ExecResult(passed=passed, failed=TESTS - passed, exit_code=0 if passed == TESTS else 1)

    return evaluate


# ---- the workspace stand-in: diffs are strings, worktrees are keys --------------------------------------
class SimWorkspace:
    def __init__(self, root: Path):
        self.root, self.base_sha = root, "sim"
        self._trees: dict[str, str] = {}
        self._n = 0
        self._lock = threading.Lock()

    @contextmanager
    def worktree(self) -> Iterator[Path]:
        with self._lock:
            self._n += 1
            key = self.root / f"wt{self._n}"
        self._trees[str(key)] = ""
        try:
            yield key
        finally:
            self._trees.pop(str(key), None)

    def apply_diff(self, path: Path, diff: str) -> str | None:
        self._trees[str(path)] += diff
        return None

    def diff(self, path: Path) -> str:
        return self._trees[str(path)]

    def overview(self, max_files: int = 200) -> str:
        return "sim"

    def is_dirty(self) -> bool:
        return False

    def close(self) -> None:
        pass


# ---- one run, many runs --------------------------------------------------------------------------------
@dataclass
class Result:
    task: int
    resolved: bool
    verified: bool
    turns: int
    tokens: int
    cost: float
    nodes: int
    status: str
    trace: list[tuple[int, bool, bool]] = field(default_factory=list)
    tested: dict[str, bool] = field(default_factory=dict)  # node path -> a true fix

    def at(self, budget: int) -> tuple[bool, int]:
        """(resolved, turns) of the same run with a turn budget of `budget` (at most this run's).

        The search never looks at the budget left, so a run with a smaller turn limit makes the
        same calls, in the same order, until a call would cross the limit: it is this run's prefix.
        It ends at the first verified attempt tested within `budget` turns (+1 for its critic),
        else at the budget. `tests/test_simulate.py` checks this against real runs."""
        for turns, verified, fixed in self.trace:
            if turns > budget:
                break
            if verified:
                return fixed, min(turns + 1, budget, self.turns)
        return False, min(budget, self.turns)

def simulate_one(
    index: int, seed: int, quality: Quality, config: RunConfig, scratch: Path, events: list | None = None
) -> Result:
    """One synthetic task through run_fix. `scratch`: a folder for the run's store and files."""
    task = SimTask(index, seed, quality)
    run_dir = Path(tempfile.mkdtemp(dir=scratch))
    tools_dir = scratch / "tools"
    if not (tools_dir / "sim.py").exists():
        tools_dir.mkdir(exist_ok=True)
        (tools_dir / "sim.py").write_text("def f():\n    return 1\n")

    def agents(cfg: RunConfig, budget: Budget, store: RunStore, emit: EventSink) -> Agents:
        caller = Caller(SimModel(), budget, cfg.limits.max_output_tokens, call_recorder(store, budget, emit), 10**9)
        return Agents(SimPolicy(task, tools_dir), SimCritic(task), caller, sim_evaluator(task))

    sink = (lambda k, d: events.append((k, d))) if events is not None else None
    workspace = SimWorkspace(run_dir)
    sim_task = Task(repo=run_dir, problem_statement=f"synthetic task {index}", test_cmd="sim")
    try:
        out = run_fix(sim_task, config, run_dir / "run", sink, agents=agents, workspace=workspace)  # type: ignore[arg-type]
        store = RunStore(run_dir / "run" / "run.sqlite")
        best = store.get(out.best_node) if out.best_node else None
        resolved = bool(best and latent(best).get("fixed"))
        nodes = len(store.nodes()) - 1
        store.close()
        usage = out.summary["usage"]
        return Result(index, resolved, out.exit_status == "verified", usage["turns"], usage["tokens"],
                      usage["cost"], nodes, out.exit_status, task.trace, task.tested)  # fmt: skip
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


# The selection knobs chosen on tuning seed 1 (benchmarks/knobs.py) for the simulator's tables; the
# engine's own defaults stay at 0.5 / 1 / 0 (a small scripted end-to-end run needs the first plan repaired
# before the root widens). A run with a model can take them with -c widen_alpha=0.7 -c exploration=0.25
# -c plan_patience=3 (k = 3 of 0, 2, 3, 4 on seed 1; docs/turns-and-simulation.md).
TUNED: dict[str, Any] = {"widen_alpha": 0.7, "exploration": 0.25, "plan_patience": 3}


def sim_config(strategy: str, budget: int, turn_control: str = "none", turn_cap: int = 0, **knobs: Any) -> RunConfig:
    limits = Limits(cost_limit=0, max_turns=budget, max_nodes=0, turns_per_node=6, max_output_tokens=300)
    return RunConfig(
        model="sim", search=strategy, limits=limits, map_tokens=0, turn_control=turn_control, turn_cap=turn_cap,
        **{**TUNED, **knobs},
    )  # fmt: skip


@dataclass
class Cell:
    quality: str
    strategy: str
    budget: int
    turn_control: str
    results: list[Result]
    turn_cap: int = 0

    @property
    def resolve_rate(self) -> float:
        return sum(r.resolved for r in self.results) / len(self.results)

    @property
    def mean_turns(self) -> float:
        return sum(r.turns for r in self.results) / len(self.results)

    @property
    def mean_cost(self) -> float:
        return sum(r.cost for r in self.results) / len(self.results)

    def row(self) -> dict[str, Any]:
        return {"quality": self.quality, "strategy": self.strategy, "budget": self.budget,
                "turn_control": self.turn_control, "turn_cap": self.turn_cap,
                "resolve_rate": round(self.resolve_rate, 4), "mean_turns": round(self.mean_turns, 2),
                "mean_cost": round(self.mean_cost, 4), "tasks": len(self.results)}  # fmt: skip


def run_cell(quality: Quality, config: RunConfig, tasks: int, seed: int, scratch: Path) -> list[Result]:
    return [simulate_one(i, seed, quality, config, scratch) for i in range(tasks)]


def truncated(results: list[Result], budget: int) -> list[Result]:
    """The runs as they would have gone with a turn limit of `budget` (see Result.at)."""
    out = []
    for r in results:
        resolved, turns = r.at(budget)
        out.append(replace(r, resolved=resolved, turns=turns, cost=r.cost * turns / max(r.turns, 1), trace=[], tested={}))
    return out


def budget_blind(config: RunConfig) -> bool:
    """Does this search ignore the budget left? Then a smaller budget's run is a prefix of a larger
    one's. Tree strategies with the budget-aware rule (SearchParams.branch_margin) read it."""
    params = config.params()
    return params.strategy in ("linear", "best-of-n") or not params.branch_margin


# dynamic turn control in the sweep: the initial run cap at this percentile of the none runs' turns
# (`--turn-start pNN:RUN_DIR`), the hard cap at the budget (DYNAMIC_HARD "budget") or at fixed's p75.
DYNAMIC_START = 0.0  # 0: the engine default, half the hard cap
DYNAMIC_HARD = "p75"


def dynamic_caps(turns: list[float], budget: int, p75: int) -> tuple[int, int]:
    """(initial run cap, hard cap) of a dynamic run, from the none runs' turns at this budget."""
    hard = budget if DYNAMIC_HARD == "budget" else p75
    if not DYNAMIC_START:
        return 0, hard  # the engine's default: half the hard cap
    return min(hard, max(1, math.ceil(percentile(turns, DYNAMIC_START)))), hard


def sweep(
    qualities: list[Quality], strategies: tuple[str, ...], budgets: tuple[int, ...], controls: tuple[str, ...],
    tasks: int, seed: int, scratch: Path, progress: Any = None, **knobs: Any,
) -> list[Cell]:  # fmt: skip
    """Every (quality, strategy, budget, turn control).

    `none`: a real run per task and budget; for a search blind to the budget left, one run per task
    at the largest budget, read at each smaller one as its prefix (Result.at; the cost of a prefix
    is pro rata). `fixed` and `dynamic` take their run cap from the
    75th percentile of the `none` runs' turns at that budget, as `--turn-cap p75:RUN_DIR` would; they
    run for real, except `fixed` where its cap equals the budget, where it is `none` by definition
    (the simulated model reads no reminder unless it may ask for more turns)."""
    cells: list[Cell] = []
    for q in qualities:
        for strategy in strategies:
            blind = budget_blind(sim_config(strategy, max(budgets), **knobs))
            full = run_cell(q, sim_config(strategy, max(budgets), **knobs), tasks, seed, scratch) if blind else []
            for budget in sorted(budgets):
                if blind:
                    base = truncated(full, budget)
                else:
                    base = run_cell(q, sim_config(strategy, budget, **knobs), tasks, seed, scratch)
                cells.append(Cell(q.name, strategy, budget, "none", base))
                cap = max(1, math.ceil(percentile([float(r.turns) for r in base], 75)))
                for control in controls:
                    if control == "none":
                        continue
                    if control == "fixed" and cap >= budget:
                        cells.append(Cell(q.name, strategy, budget, control, base, cap))
                        continue
                    if control == "dynamic":
                        start, hard = dynamic_caps([float(r.turns) for r in base], budget, cap)
                        config = sim_config(strategy, budget, control, hard, turn_start=start, **knobs)
                    else:
                        config = sim_config(strategy, budget, control, cap, **knobs)
                    cells.append(Cell(q.name, strategy, budget, control, run_cell(q, config, tasks, seed, scratch), cap))
                if progress:
                    progress(cells[-1])
    return cells


def markdown(cells: list[Cell]) -> str:
    """Resolve rate (mean turns) per budget, one row per quality, strategy and turn control."""
    budgets = sorted({c.budget for c in cells})
    lines = ["| quality | strategy | turns | " + " | ".join(f"{b}" for b in budgets) + " |",
             "|---|---|---|" + "---|" * len(budgets)]  # fmt: skip
    keys = list(dict.fromkeys((c.quality, c.strategy, c.turn_control) for c in cells))
    for key in keys:
        row = {c.budget: c for c in cells if (c.quality, c.strategy, c.turn_control) == key}
        parts = [f"{row[b].resolve_rate:.1%} ({row[b].mean_turns:.1f}t)" if b in row else "-" for b in budgets]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(parts) + " |")
    return "\n".join(lines) + "\n"


def turn_table(cells: list[Cell]) -> str:
    """dynamic against fixed (capped at the none runs' p75) and none, per cell, with the paired
    per-task difference dynamic − fixed in resolve rate (points ± SE) and the turns dynamic saves."""
    lines = ["| quality | strategy | budget | p75 cap | none | fixed | dynamic | dynamic − fixed (pts) | dynamic turns vs fixed |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    by = {(c.quality, c.strategy, c.budget, c.turn_control): c for c in cells}
    for (q, s, b, t), dyn in by.items():
        if t != "dynamic" or (q, s, b, "fixed") not in by:
            continue
        fix, none = by[(q, s, b, "fixed")], by[(q, s, b, "none")]
        saved = 1 - dyn.mean_turns / fix.mean_turns if fix.mean_turns else 0.0
        cell = lambda c: f"{c.resolve_rate:.1%} / {c.mean_turns:.1f}t"  # noqa: E731
        lines.append(f"| {q} | {s} | {b} | {fix.turn_cap} | {cell(none)} | {cell(fix)} | {cell(dyn)} "
                     f"| {paired(dyn.results, fix.results)} | {-saved:+.1%} |")  # fmt: skip
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Paired:
    """The mean per-task difference of two cells run on the same tasks, and its standard error."""

    diff: float
    se: float
    tasks: int

    def __str__(self) -> str:
        return f"{self.diff * 100:+.1f} ± {self.se * 100:.1f}"


def paired(a: list[Result], b: list[Result], value: str = "resolved") -> Paired:
    """a − b, task by task (both lists hold the same tasks; with common random numbers they met the
    same luck, so the difference is what the strategies chose, not what they drew)."""
    if [r.task for r in a] != [r.task for r in b] or not a:
        raise ValueError("a paired comparison needs the same tasks on both sides")
    d = [float(getattr(x, value)) - float(getattr(y, value)) for x, y in zip(a, b, strict=True)]
    mean = sum(d) / len(d)
    var = sum((x - mean) ** 2 for x in d) / (len(d) - 1) if len(d) > 1 else 0.0
    return Paired(mean, math.sqrt(var / len(d)), len(d))


def paired_table(cells: list[Cell], against: str = "mcts") -> str:
    """`against` minus each other strategy, per quality and budget (no turn control), in points of
    resolve rate ± one standard error of the paired difference."""
    budgets = sorted({c.budget for c in cells})
    by = {(c.quality, c.strategy, c.budget): c for c in cells if c.turn_control == "none"}
    lines = [f"| quality | {against} minus | " + " | ".join(map(str, budgets)) + " |",
             "|---|---|" + "---|" * len(budgets)]  # fmt: skip
    for q in dict.fromkeys(c.quality for c in cells):
        for s in dict.fromkeys(c.strategy for c in cells if c.strategy != against):
            parts = [str(paired(by[(q, against, b)].results, by[(q, s, b)].results))
                     if (q, against, b) in by and (q, s, b) in by else "-" for b in budgets]  # fmt: skip
            lines.append(f"| {q} | {s} | " + " | ".join(parts) + " |")
    return "\n".join(lines) + "\n"


def plot(cells: list[Cell], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qualities = list(dict.fromkeys(c.quality for c in cells))
    fig, axes = plt.subplots(1, len(qualities), figsize=(6 * len(qualities), 4.5), squeeze=False)
    for ax, q in zip(axes[0], qualities, strict=True):
        for key in dict.fromkeys((c.strategy, c.turn_control) for c in cells if c.quality == q):
            row = sorted((c for c in cells if (c.quality, c.strategy, c.turn_control) == (q, *key)), key=lambda c: c.budget)
            style = {"none": "-", "fixed": "--", "dynamic": ":"}[key[1]]
            color = f"C{STRATEGIES.index(key[0])}"  # one colour per strategy, one line style per turn control
            ax.plot([c.mean_turns for c in row], [c.resolve_rate for c in row], style, color=color, marker="o",
                    label=f"{key[0]} {key[1]}")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xlabel("mean turns spent per task (budget 8..128)")
        ax.set_ylabel("resolve rate")
        ax.set_title(f"policy quality: {q}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


app = typer.Typer(add_completion=False, help="Simulate the search on synthetic tasks; print resolve rate and cost vs budget.")


def _fail(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", markup=False)
    raise typer.Exit(2)


@app.command()
def main(
    tasks: Annotated[int, typer.Option("--tasks", help="synthetic tasks per cell")] = 200,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    quality: Annotated[list[str] | None, typer.Option("-q", "--quality", help="weak | medium | strong (repeatable)")] = None,
    strategy: Annotated[list[str] | None, typer.Option("-s", "--search", help="strategies (repeatable)")] = None,
    budget: Annotated[list[int] | None, typer.Option("-b", "--budget", help="turn budgets (repeatable)")] = None,
    turn_control: Annotated[list[str] | None, typer.Option("-t", "--turn-control", help="none | fixed | dynamic")] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="folder for table.md, cells.json, sim.png")] = Path("sim"),
) -> None:
    """Resolve rate and turns against budget for every strategy and turn-control setting."""
    names = quality or ["weak", "medium"]
    if bad := [n for n in names if n not in QUALITIES]:
        _fail(f"unknown quality {bad[0]!r}; choose from {', '.join(QUALITIES)}")
    strategies = tuple(strategy or STRATEGIES)
    if bad := [s for s in strategies if s not in STRATEGIES]:
        _fail(f"unknown search {bad[0]!r}; choose from {', '.join(STRATEGIES)}")
    controls = tuple(turn_control or ("none", "fixed", "dynamic"))
    if bad := [c for c in controls if c not in ("none", "fixed", "dynamic")]:
        _fail(f"unknown turn control {bad[0]!r}; choose none, fixed or dynamic")
    budgets = tuple(budget or BUDGETS)
    if tasks < 1 or any(b < 1 for b in budgets):
        _fail("--tasks and every --budget must be at least 1")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _fail(f"cannot make {out}: {e.strerror or e}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="treefix-sim-", dir=_fast_tmp()) as scratch:
        cells = sweep([QUALITIES[n] for n in names], strategies, budgets, controls, tasks, seed, Path(scratch),
                      lambda c: print(f"  {c.quality} {c.strategy} budget {c.budget}: done "
                                      f"({time.monotonic() - started:.0f}s)", flush=True))  # fmt: skip
    table = markdown(cells) + "\n" + turn_table(cells)
    if "mcts" in strategies and len(strategies) > 1:
        table += "\nmcts minus each baseline, paired per task (points ± SE):\n\n" + paired_table(cells)
    (out / "table.md").write_text(table)
    (out / "cells.json").write_text(json.dumps([c.row() for c in cells], indent=1))
    plot(cells, out / "sim.png")
    print(table)
    print(f"{len(cells)} cells x {tasks} tasks in {time.monotonic() - started:.0f}s; wrote {out}/table.md, cells.json, sim.png")


def _fast_tmp() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


__all__ = ["Quality", "QUALITIES", "SimModel", "SimPolicy", "SimCritic", "SimWorkspace", "simulate_one", "sweep",
           "sim_config", "replace", "asdict"]

if __name__ == "__main__":
    app()
