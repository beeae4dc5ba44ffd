"""What the chat does with each message: a request (a search, or a follow-up of the open tree) or a
slash command. Every user mistake is one line of help; nothing here raises into the REPL."""

from __future__ import annotations

import os
import select
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.syntax import Syntax
from rich.text import Text

from treefix.agent.budget import BudgetExceeded
from treefix.agent.chat import gitops, session
from treefix.agent.chat.view import LiveView, Snapshot, tree_lines
from treefix.agent.config import RunConfig, build_config
from treefix.agent.errors import ConfigError
from treefix.agent.run import Agents, AgentsFactory, RunOutcome, model_agents
from treefix.agent.task import Task
from treefix.tools.workspace import Workspace, WorkspaceError

COMMANDS: dict[str, str] = {
    "/ask": "QUESTION   answer from the code (search, view, map), no search",
    "/new": "TEXT       start a new tree for TEXT (a plain message continues the open one)",
    "/tree": "[all]      the open tree (all: unfolded)",
    "/node": "ID         a node's plan, diff, tests and critique; chooses a candidate",
    "/expand": "ID         grow the tree from node ID",
    "/prune": "ID         stop growing node ID and everything below it",
    "/hint": "ID TEXT    guidance the next expansion under ID sees",
    "/budget": "[KEY N]    show limits, or set one: cost, turns, tokens, nodes, time",
    "/model": "[NAME]     show or set the model",
    "/search": "[NAME]     show or set the search: mcts, best-of-n, linear, greedy",
    "/test": "[CMD]      show or set the test command",
    "/add": "FILE...    files the model must see",
    "/drop": "[FILE...]  stop showing files (all without arguments)",
    "/diff": "          the chosen candidate's diff",
    "/apply": "          commit the chosen candidate (asks first; -y skips)",
    "/undo": "          revert treefix's last commit (never yours)",
    "/runs": "          the runs in this repository",
    "/resume": "ID         open (and finish) run ID",
    "/tokens": "          tokens and $ per request and for the session",
    "/help": "          this list",
    "/quit": "          leave (Ctrl-D too)",
}
LIMIT_KEYS = {"cost": "cost_limit", "turns": "max_turns", "tokens": "max_tokens", "nodes": "max_nodes", "time": "time_limit"}


class Usage(Exception):
    """A bad argument: its message is the one line of help."""


@dataclass
class Chat:
    repo: Path
    console: Console
    config: RunConfig
    state: session.SessionState
    yes: bool = False
    ask_line: Callable[[str], str] = input  # a confirmation or a one-off answer
    agents: AgentsFactory | None = None  # tests and embedders may hand in their own model
    _workspace: Workspace | None = None
    _running: threading.Event | None = None  # set when the last search's thread has ended

    # ---- dispatch -----------------------------------------------------------------------------
    def handle(self, text: str) -> bool:
        """One message; False when the user asked to leave."""
        text = text.strip()
        if not text:
            return True
        if not text.startswith("/"):
            self.request(text)
            return True
        name, _, arg = text.partition(" ")
        if name in ("/quit", "/exit", "/q"):
            return False
        handler = getattr(self, "cmd_" + name[1:].replace("-", "_"), None)
        if name not in COMMANDS or handler is None:
            self.say(f"[red]unknown command {escape(name)}[/]: /help lists the commands")
            return True
        try:
            handler(arg.strip())
        except Usage as e:
            self.say(f"[red]{escape(str(e))}[/]  usage: {name} {escape(COMMANDS[name].split('   ')[0].strip())}")
        except (ConfigError, WorkspaceError, gitops.GitError) as e:
            self.say(f"[red]error:[/] {escape(str(e))}")
        self.save()
        return True

    def say(self, markup: str) -> None:
        self.console.print(markup, highlight=False)

    def save(self) -> None:
        session.save(self.repo, self.state)

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()
            self._workspace = None

    # ---- requests -----------------------------------------------------------------------------
    def request(self, text: str) -> None:
        """A plain message: a follow-up of the open tree from the chosen node, else a new tree."""
        if self.state.current and not self.state.applied and self.run_dir(self.state.current).is_dir():
            snap = self.snapshot()
            node = snap.find(snap.best) if snap.best else None
            if node is not None:
                if self.config.model == "offline" and node.verified and snap.meta["task"]["test_cmd"] == self.state.test_cmd:
                    self.say(
                        "[yellow]the offline policy reads no text[/]: its tests already pass. Set a /test command "
                        "whose tests show what is still wrong, then send the follow-up (or /new TEXT)"
                    )
                    return None
                return self._continue(node.id, text)
        self.cmd_new(text)

    def cmd_new(self, arg: str) -> None:
        if not arg:
            raise Usage("what should treefix fix?")
        test_cmd = self.test_cmd()
        if test_cmd is None:
            return
        statement = arg + (f"\n\nFiles to look at: {', '.join(self.state.files)}" if self.state.files else "")
        task = Task(repo=self.repo, problem_statement=statement, test_cmd=test_cmd)
        workspace = self.workspace()
        from treefix.agent.run import run_fix

        self._search(arg, lambda sink, agents: run_fix(task, self.config, on_event=sink, agents=agents, workspace=workspace))

    def _continue(self, node: str, guidance: str) -> None:
        from treefix.agent.followup import continue_run

        assert self.state.current
        test_cmd = self.state.test_cmd
        nodes = self.config.limits.max_nodes
        self.say(f"[dim]continuing tree {self.state.current} from {node[:8]}[/]")
        self._search(
            guidance,
            lambda sink, agents: continue_run(
                self.run_dir(self.state.current or ""), node, guidance, test_cmd, nodes, sink, agents
            ),
        )

    def _search(self, text: str, start: Callable[..., RunOutcome]) -> None:
        """Run a search in a thread under the live view. Ctrl-C asks it to stop after the node under
        way (the best candidate is kept); a second Ctrl-C returns to the prompt at once."""
        if self._running is not None and not self._running.is_set():
            self.say("[yellow]the stopped search is still finishing its node[/]: try again in a moment")
            return
        view = LiveView(text, self.config.limits)
        stop, done = threading.Event(), threading.Event()
        self._running = done
        result: dict[str, object] = {}
        factory = self.agents or model_agents()

        def stoppable(config, budget, store, emit) -> Agents:  # type: ignore[no-untyped-def]
            made = factory(config, budget, store, emit)
            made.policy = _Stoppable(made.policy, stop)
            return made

        def work() -> None:
            try:
                result["outcome"] = start(view.sink, stoppable)
            except (ConfigError, WorkspaceError) as e:
                result["error"] = str(e)
            except Exception as e:  # a bug must not kill the session: show it in one line
                result["error"] = f"{type(e).__name__}: {e}"
            finally:
                done.set()

        before = self._spent(self.state.current)
        abandon = threading.Event()

        def on_sigint(signum, frame) -> None:  # type: ignore[no-untyped-def]
            # a flag, not KeyboardInterrupt: an exception could land anywhere, even in Thread.start
            if stop.is_set():
                abandon.set()
            stop.set()
            view.status = "stopping (Ctrl-C again: back to the prompt)"

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            with _ctrl_c_as_key() as keys, Live(view, console=self.console, refresh_per_second=4, vertical_overflow="crop"):
                threading.Thread(target=work, daemon=True).start()
                while not done.is_set() and not abandon.is_set():
                    if keys is None:
                        done.wait(0.2)
                    elif select.select([keys], [], [], 0.2)[0] and b"\x03" in os.read(keys, 1024):
                        on_sigint(signal.SIGINT, None)
        finally:
            signal.signal(signal.SIGINT, previous)
        if view.run_dir is not None:
            run_id = view.run_dir.name
            if run_id != self.state.current:
                before = (0, 0, 0.0)
            self.state.current, self.state.chosen, self.state.applied = run_id, None, False
            after = self._spent(run_id)
            req = session.Request(text, run_id, after[0] - before[0], after[1] - before[1], after[2] - before[2])
            self.state.requests.append(req)
        if "error" in result:
            self.say(f"[red]error:[/] {escape(str(result['error']))}")
        elif not done.is_set():
            self.say("[yellow]stopped[/]: the search ends after the node under way; /tree shows it")
        elif isinstance(outcome := result.get("outcome"), RunOutcome):
            self._outcome(outcome, stop.is_set())
        if view.run_dir is not None:
            self.say(self._tokens_line(self.state.requests[-1]))
        self.save()

    def _outcome(self, outcome: RunOutcome, stopped: bool) -> None:
        snap = Snapshot.read(outcome.run_dir)
        best = snap.find(outcome.best_node) if outcome.best_node else None
        status = "stopped" if stopped else outcome.exit_status
        if best is None:
            self.say(f"[yellow]{status}[/]: no candidate. {escape(outcome.reason)}")
            return
        colour = "green" if best.verified else "yellow"
        tests = f" tests {best.exec.passed}✓ {best.exec.failed + best.exec.errors}✗" if best.exec else ""
        self.say(
            f"[{colour}]{status}[/]: best {best.id[:8]} ({best.kind.value}){tests} {escape(best.title[:50])}\n"
            "/diff shows it, /apply commits it, a message continues from it"
        )

    def _tokens_line(self, req: session.Request) -> str:
        s = self.state
        return (
            f"[dim]Tokens: {req.tokens_in:,} sent, {req.tokens_out:,} received. "
            f"Cost: ${req.cost:.4f} request, ${s.cost:.4f} session.[/]"
        )

    def _spent(self, run_id: str | None) -> tuple[int, int, float]:
        if not run_id:
            return (0, 0, 0.0)
        snap = Snapshot.read(self.run_dir(run_id))
        return snap.tokens_in, snap.tokens_out, snap.cost

    def test_cmd(self) -> str | None:
        """The session's test command; the offline policy needs one, asked for once."""
        if self.state.test_cmd or self.config.model != "offline":
            return self.state.test_cmd
        answer = self.ask_line("The offline policy needs a test command that shows the bug (kept; /test changes it): ")
        if not answer.strip():
            self.say("[yellow]no test command[/]: set one with /test CMD")
            return None
        self.state.test_cmd = answer.strip()
        return self.state.test_cmd

    # ---- the open tree ------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.repo / ".treefix" / "runs" / run_id

    def snapshot(self) -> Snapshot:
        if not self.state.current:
            raise Usage("no tree yet: send a request first")
        snap = Snapshot.read(self.run_dir(self.state.current))
        if self.state.chosen:
            snap.meta["chat/chosen"] = self.state.chosen
        return snap

    def node(self, arg: str) -> tuple[Snapshot, str]:
        if not arg:
            raise Usage("which node?")
        snap = self.snapshot()
        found = [n for n in snap.nodes if n.id.startswith(arg.split()[0])]
        if len(found) != 1:
            raise Usage(f"no node {arg.split()[0]!r}" if not found else f"{arg.split()[0]!r} names {len(found)} nodes")
        return snap, found[0].id

    def cmd_tree(self, arg: str) -> None:
        snap = self.snapshot()
        for line in tree_lines(snap, max(len(snap.nodes) * 2, 10) if arg == "all" else self.console.height - 3):
            self.console.print(line, no_wrap=True, overflow="ellipsis", crop=True)

    def cmd_node(self, arg: str) -> None:
        snap, node_id = self.node(arg)
        n = next(x for x in snap.nodes if x.id == node_id)
        self.say(f"[bold]{n.kind.value} {n.id}[/]  {escape(n.title)}")
        self.say(f"status {n.status.value}  value {n.value if n.value is not None else '-'}  visits {n.visits}  origin {n.origin}")
        if hint := snap.meta.get(f"hint/{n.id}"):
            self.say(f"[bold]hint[/] {escape(hint)}")
        plan = n if n.kind.value == "plan" else next((p for p in snap.nodes if p.id == n.parent and p.kind.value == "plan"), None)
        if plan is not None and plan.content:
            self.say(f"[bold]plan[/] {escape(plan.content[:600])}")
        if n.diff:
            self.console.print(Syntax(_head(n.diff, 40), "diff", theme="ansi_dark", background_color="default"))
        if n.exec is not None:
            e = n.exec
            self.say(f"[bold]tests[/] {e.passed} passed, {e.failed + e.errors} failed{' — ' + escape(e.message) if e.message else ''}")
            if e.output.strip():
                self.console.print(Text(_tail(e.output, 12), style="dim"))
        if n.judgement is not None:
            self.say(f"[bold]critic[/] {n.judgement.value:.2f}: {escape(n.judgement.rationale[:400])}")
        if n.diff and n.kind.value in ("code", "repair"):
            self.state.chosen = n.id
            self.say(f"[green]chosen[/] {n.id[:8]}: /apply commits it, a message continues from it")

    def cmd_hint(self, arg: str) -> None:
        parts = arg.split(maxsplit=1)
        if len(parts) < 2:
            raise Usage("give a node and the hint")
        _, node_id = self.node(parts[0])
        store = self._store()
        try:
            store.set_meta(f"hint/{node_id}", parts[1])
        finally:
            store.close()
        note = " (the offline policy reads no text: it shows in /node)" if self.config.model == "offline" else ""
        self.say(f"hint kept for {node_id[:8]}; the next expansion under it sees it{note}")

    def cmd_prune(self, arg: str) -> None:
        _, node_id = self.node(arg)
        store = self._store()
        try:
            if store.get(node_id).parent is None:
                raise Usage("the root cannot be pruned; /new starts another tree")
            below = store.subtree(node_id)
            for n in below:
                n.closed = True
            store.update_many(below)
            store.event("prune", node=node_id)
        finally:
            store.close()
        if self.state.chosen in {n.id for n in below}:
            self.state.chosen = None
        self.say(f"pruned {node_id[:8]} and {len(below) - 1} nodes below it")

    def cmd_expand(self, arg: str) -> None:
        _, node_id = self.node(arg)
        self._continue(node_id, "")

    def cmd_diff(self, arg: str) -> None:
        snap = self.snapshot()
        best = snap.find(snap.best) if snap.best else None
        if best is None:
            raise Usage("no candidate in the open tree")
        self.say(f"[bold]{best.kind.value} {best.id[:8]}[/] {escape(best.title)}")
        self.console.print(Syntax(best.diff, "diff", theme="ansi_dark", background_color="default"))

    def _store(self):  # type: ignore[no-untyped-def]
        from treefix.agent.run import open_store

        return open_store(self.run_dir(self.snapshot().meta.get("run_id") or self.state.current or ""))

    # ---- git ----------------------------------------------------------------------------------
    def cmd_apply(self, arg: str) -> None:
        snap = self.snapshot()
        best = snap.find(snap.best) if snap.best else None
        if best is None or not best.diff:
            raise Usage("no candidate to apply")
        from treefix.tools.diffs import patch_paths

        paths = patch_paths(best.diff)
        if not best.verified:
            self.say(f"[yellow]note[/]: {best.id[:8]} is not verified by the tests")
        if busy := gitops.conflicts(self.repo, best.diff):
            self.say(f"[yellow]uncommitted changes[/] in {escape(', '.join(busy))}: the patch touches them too")
            if not self._confirm("Commit your changes to them first (your commit, then treefix's)?", ask_always=True):
                self.say("not applied: commit or stash your changes, then /apply")
                return
            sha = gitops.commit_paths(self.repo, busy, "Work in progress before applying a treefix patch")
            self.say(f"committed your changes as {sha[:10]}")
        if not self._confirm(f"Apply {best.id[:8]} to {', '.join(paths)} and commit it?"):
            self.say("not applied")
            return
        asked = [r.text.strip() for r in self.state.requests if r.run_id == self.state.current and r.text.strip()]
        first = asked[0].splitlines()[0][:60] if asked else "issue"
        followups = "".join(f"\nFollow-up: {a.splitlines()[0][:70]}" for a in asked[1:])
        message = f"treefix: {first}\n{followups}\nRun {self.state.current}, node {best.id}."
        sha = gitops.apply_patch(self.repo, best.diff, message)
        self.state.commits.append(sha)
        self.state.applied = True  # the next message starts a new tree
        self.say(f"[green]applied[/] as {sha[:10]} \"{escape(message.splitlines()[0])}\"; /undo reverts it")

    def cmd_undo(self, arg: str) -> None:
        sha, subject = gitops.undo(self.repo)
        self.say(f"[green]undone[/] {sha[:10]} \"{escape(subject)}\"")

    def _confirm(self, question: str, ask_always: bool = False) -> bool:
        if self.yes and not ask_always:
            return True
        return self.ask_line(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    # ---- settings -----------------------------------------------------------------------------
    def cmd_test(self, arg: str) -> None:
        if arg:
            self.state.test_cmd = arg
        self.say(f"test command: {escape(self.state.test_cmd or '(none)')}")

    def cmd_model(self, arg: str) -> None:
        if arg:
            self._set({"model": arg})
        self.say(f"model: {escape(self.config.model)}")

    def cmd_search(self, arg: str) -> None:
        if arg:
            self._set({"search": arg})
        self.say(f"search: {self.config.search}")

    def cmd_budget(self, arg: str) -> None:
        if arg:
            parts = arg.split()
            if len(parts) != 2 or parts[0] not in LIMIT_KEYS:
                raise Usage(f"give one of {', '.join(LIMIT_KEYS)} and a number")
            try:
                value = float(parts[1])
            except ValueError:
                raise Usage(f"{parts[1]!r} is not a number") from None
            self._set({f"limits.{LIMIT_KEYS[parts[0]]}": value})
        lim = self.config.limits
        shown = {k: getattr(lim, v) for k, v in LIMIT_KEYS.items()}
        self.say("limits per request (0 = none): " + "  ".join(f"{k} {v:g}" for k, v in shown.items()))

    def _set(self, changes: dict[str, object]) -> None:
        data = self.config.to_dict()
        flat = {f"limits.{k}": v for k, v in data.pop("limits").items()} | data
        try:
            config = build_config([], {**flat, **changes}, use_settings=False)
            config.validate()
        except ConfigError as e:
            raise Usage(str(e)) from None
        self.config = config

    def cmd_add(self, arg: str) -> None:
        if not arg:
            raise Usage("which files?")
        for name in shlex.split(arg):
            if not (self.repo / name).is_file():
                raise Usage(f"no file {name} in the repository")
            if name not in self.state.files:
                self.state.files.append(name)
        self.say(f"files: {', '.join(self.state.files)}")

    def cmd_drop(self, arg: str) -> None:
        names = shlex.split(arg) if arg else list(self.state.files)
        self.state.files = [f for f in self.state.files if f not in names]
        self.say(f"files: {', '.join(self.state.files) or '(none)'}")

    # ---- runs and spend -----------------------------------------------------------------------
    def cmd_runs(self, arg: str) -> None:
        from treefix.agent.inspect import runs_table

        self.console.print(runs_table(self.repo / ".treefix" / "runs"))

    def cmd_resume(self, arg: str) -> None:
        if not arg:
            raise Usage("which run? /runs lists them")
        run_dir = self.run_dir(arg)
        if not (run_dir / "run.sqlite").is_file():
            raise Usage(f"no run {arg!r}; /runs lists them")
        self.state.current, self.state.chosen, self.state.applied = arg, None, False
        if not (run_dir / "summary.json").is_file():
            from treefix.agent.run import resume_run

            self._search(f"resume {arg}", lambda sink, agents: resume_run(run_dir, on_event=sink, agents=agents))
        else:
            self.cmd_tree("")

    def cmd_tokens(self, arg: str) -> None:
        for r in self.state.requests:
            self.say(f"{escape(r.text[:40]):<40} {r.tokens_in:>8,} sent {r.tokens_out:>7,} received  ${r.cost:.4f}")
        self.say(f"session: {self.state.tokens_in:,} sent, {self.state.tokens_out:,} received, ${self.state.cost:.4f}")

    def cmd_ask(self, arg: str) -> None:
        if not arg:
            raise Usage("what is the question?")
        from treefix.agent.chat.ask import ask_model, ask_offline
        from treefix.agent.models.registry import load_model

        model = load_model(self.config.model, base_url=self.config.base_url)
        answer = ask_offline(self.repo, arg) if model is None else ask_model(self.repo, arg, model)
        self.console.print(Text(answer.text))
        self.state.requests.append(session.Request("/ask " + arg, "", answer.tokens_in, answer.tokens_out, answer.cost))
        self.say(self._tokens_line(self.state.requests[-1]))

    def cmd_help(self, arg: str) -> None:
        self.say("A message is a request: treefix searches for a fix, or continues the open tree from its best node.")
        for name, text in COMMANDS.items():
            args, _, what = text.partition("   ")
            self.say(f"  [bold]{name}[/] {escape(args.strip()):<10} {escape(what.strip())}")
        self.say("Enter sends; Esc then Enter adds a line. Ctrl-C stops a search, Ctrl-D quits.")

    # ---- the checkout ------------------------------------------------------------------------
    def workspace(self) -> Workspace:
        """One workspace for the session, opened again when HEAD moved (an /apply, your commits)."""
        if self._workspace is not None and self._workspace.base_sha != gitops.head(self.repo):
            self.close()
        if self._workspace is None:
            self._workspace = Workspace(self.repo)
        return self._workspace


@contextmanager
def _ctrl_c_as_key() -> Iterator[int | None]:
    """While a search runs, Ctrl-C is read as a key instead of the terminal sending SIGINT to the
    whole foreground process group: the git and test processes of the search must not die of it."""
    if not sys.stdin.isatty():
        yield None
        return
    import termios

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    raw = termios.tcgetattr(fd)
    raw[3] &= ~(termios.ISIG | termios.ICANON | termios.ECHO)
    termios.tcsetattr(fd, termios.TCSANOW, raw)
    try:
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class _Stoppable:
    """The run's policy, refusing new work once the user pressed Ctrl-C: the search then ends as
    at any limit, with the best candidate chosen and the run's files written."""

    def __init__(self, inner, stop: threading.Event):  # type: ignore[no-untyped-def]
        self.inner, self.stop, self.name = inner, stop, inner.name

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def _check(self) -> None:
        if self.stop.is_set():
            raise BudgetExceeded("interrupted", "stopped from the chat")

    def plan(self, ctx, root):  # type: ignore[no-untyped-def]
        self._check()
        return self.inner.plan(ctx, root)

    def code(self, ctx, plan):  # type: ignore[no-untyped-def]
        self._check()
        return self.inner.code(ctx, plan)

    def repair(self, ctx, node):  # type: ignore[no-untyped-def]
        self._check()
        return self.inner.repair(ctx, node)


def _head(text: str, lines: int) -> str:
    rows = text.splitlines()
    return "\n".join(rows[:lines] + ([f"... {len(rows) - lines} more lines"] if len(rows) > lines else []))


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
