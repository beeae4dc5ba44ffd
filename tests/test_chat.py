"""The chat terminal, driven through a pseudo-terminal on real git repositories and real test runs.

Each test reads the 80x24 screen the user sees (tests/chatterm.py). The offline policy makes the
searches real and model-free; one test puts a scripted model behind the fake server.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from chatterm import Term
from conftest import git, make_repo

pytestmark = pytest.mark.slow

FILES = {
    "stats/__init__.py": "",
    "stats/core.py": (
        'def total(xs):\n    """Sum of the values."""\n    s = 0\n    for i in range(len(xs) - 1):\n'
        "        s += xs[i]\n    return s\n\n\ndef is_negative(x):\n    return x <= 0\n"
    ),
    "tests/test_total.py": "from stats.core import total\n\n\ndef test_total():\n    assert total([1, 2, 3]) == 6\n",
    "tests/test_sign.py": (
        "from stats.core import is_negative\n\n\ndef test_negative():\n    assert is_negative(-2)\n\n\n"
        "def test_zero():\n    assert not is_negative(0)\n"
    ),
}
FIRST_TESTS = "python -m pytest -q tests/test_total.py"
ALL_TESTS = "python -m pytest -q"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "stats", FILES)


@pytest.fixture
def term():  # type: ignore[no-untyped-def]
    made: list[Term] = []

    def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Term:
        made.append(Term(list(args), cwd, env=env))
        return made[-1]

    yield start
    for t in made:
        t.close()


def node_id(screen: str, kind: str) -> str:
    """The id of the first `kind` node on the screen."""
    for line in screen.splitlines():
        words = line.replace("★", " ").split()
        if len(words) > 1 and words[0] == kind:
            return words[1]
    raise AssertionError(f"no {kind} node on screen:\n{screen}")


def test_request_live_view_node_hint_followup_apply_undo_resume(repo: Path, term) -> None:  # type: ignore[no-untyped-def]
    t = term("chat", cwd=repo)
    t.prompt()
    t.send("total drops the last value")
    t.wait_for("needs a test command")
    t.send(FIRST_TESTS)
    # the live view: status, budget against its limits, the best so far, and the tree
    shown = t.wait_for("treefix · verified", "budget nodes", "$0.0000/3.00", "★ code", timeout=240)
    assert "1✓0✗" in shown and "best   " in shown
    shown = t.prompt()
    assert "Tokens: 0 sent, 0 received. Cost: $0.0000 request, $0.0000 session." in shown
    code = node_id(shown, "code")

    t.clear()
    t.send(f"/node {code}")
    shown = t.wait_for("tests 1 passed, 0 failed", "chosen")
    assert "-    for i in range(len(xs) - 1):" in shown and "+    for i in range(len(xs)):" in shown

    t.clear()
    t.send(f"/hint {code} keep the loop simple")
    t.wait_for(f"hint kept for {code}")
    t.send(f"/node {code}")
    t.wait_for("hint keep the loop simple")

    # a follow-up continues the same tree from the chosen candidate, with the new tests
    t.clear()
    t.send(f"/test {ALL_TESTS}")
    t.send("zero is not negative")
    shown = t.wait_for("continuing tree", "treefix · verified", "★ repair", timeout=300)
    assert code in shown, "the repair grows under the candidate the follow-up continued from"
    assert "3✓0✗" in shown
    t.prompt()

    # dirty file: refused unless the user agrees to commit it first
    core = repo / "stats" / "core.py"
    core.write_text(core.read_text() + "# my own note\n")
    head = git(repo, "rev-parse", "HEAD")
    t.clear()
    t.send("/apply")
    t.wait_for("uncommitted changes in stats/core.py", "Commit your changes")
    t.send("n")
    t.wait_for("not applied")
    assert git(repo, "rev-parse", "HEAD") == head and "# my own note" in core.read_text()
    git(repo, "checkout", "stats/core.py")

    t.clear()
    t.send("/apply")
    t.wait_for("and commit it? [y/N]")
    t.send("y")
    t.wait_for("applied as")
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith("treefix: total drops the last value")
    assert "Co-authored-by: treefix <treefix@localhost>" in message
    diff = git(repo, "show", "--format=", "HEAD")
    assert "+    for i in range(len(xs)):" in diff and "+    return x < 0" in diff
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""

    # /undo: treefix's commit goes, the user's stay; then it refuses to touch the user's commit
    t.clear()
    t.send("/undo")
    t.wait_for("undone")
    assert git(repo, "rev-parse", "HEAD") == head
    assert "x <= 0" in core.read_text()
    t.send("/undo")
    t.wait_for("is not treefix's")
    assert git(repo, "rev-parse", "HEAD") == head

    t.child.sendeof()  # Ctrl-D quits
    t.wait_for("treefix chat --resume")
    t.child.expect(__import__("pexpect").EOF, timeout=30)

    # --resume: the session's requests, spend and tree come back
    t2 = term("chat", "--resume", cwd=repo)
    shown = t2.wait_for("resumed session", "2 requests", "repair")
    t2.prompt()
    t2.send("/tokens")
    t2.wait_for("zero is not negative", "session: 0 sent, 0 received, $0.0000")


def test_ctrl_c_stops_the_search_and_a_second_returns_to_the_prompt(repo: Path, term) -> None:  # type: ignore[no-untyped-def]
    # a slow test keeps the first expansion (localisation runs the tests) busy for a few seconds
    (repo / "tests" / "test_slow.py").write_text("import time\n\n\ndef test_slow():\n    time.sleep(4)\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a slow test")
    t = term("chat", "--test-cmd", ALL_TESTS, cwd=repo)
    t.prompt()
    t.send("total drops the last value and zero counts as negative")
    t.wait_for("treefix · searching", "root")
    t.child.sendintr()
    # "stopping (Ctrl-C again ...)" may show for less than a refresh when the stop lands between
    # nodes, so the end state is what this part checks; the second part checks the message
    shown = t.wait_for("stopped", timeout=120)
    assert "treefix · limit:interrupted" in shown and "stopped: no candidate" in shown
    t.prompt(timeout=120)
    runs = list((repo / ".treefix" / "runs").iterdir())
    assert len(runs) == 1 and '"limit:interrupted"' in (runs[0] / "summary.json").read_text()

    t.clear()
    t.send("/new the total is wrong")
    t.wait_for("treefix · searching", "root")
    time.sleep(1)  # the first expansion is under way: a stop waits for it
    t.child.sendintr()
    t.wait_for("stopping (Ctrl-C again")
    t.child.sendintr()
    shown = t.prompt(timeout=30)
    assert "the search ends after the node under way" in shown
    t.send("/help")
    t.wait_for("/undo")


def test_bad_input_gets_one_line_of_help(repo: Path, term) -> None:  # type: ignore[no-untyped-def]
    t = term(cwd=repo)  # `treefix` alone in a repository is the chat
    t.prompt()
    t.send("/frobnicate")
    t.wait_for("unknown command /frobnicate: /help lists the commands")
    t.send("/node")
    t.wait_for("which node?  usage: /node ID")
    t.send("/node abc")
    t.wait_for("no tree yet")
    t.send("/budget cost lots")
    t.wait_for("'lots' is not a number  usage: /budget [KEY N]")
    t.send("/budget nodes 12")
    t.wait_for("nodes 12")
    t.send("/add no/such.py")
    t.wait_for("no file no/such.py in the repository")
    t.send("/undo")
    t.wait_for("is not treefix's")
    t.send("/quit")
    t.child.expect(__import__("pexpect").EOF, timeout=30)
    assert "Traceback" not in t.log


def test_treefix_alone_outside_a_repository_prints_help(tmp_path: Path) -> None:
    import sys

    proc = subprocess.run([sys.executable, "-m", "treefix.agent.cli"], cwd=tmp_path, capture_output=True, text=True)
    assert "chat" in proc.stdout + proc.stderr and "Usage" in proc.stdout + proc.stderr


def test_scripted_model_ask_request_followup_hint_expand(tmp_path: Path, term) -> None:  # type: ignore[no-untyped-def]
    """A model behind the fake server: /ask runs the tool loop; a follow-up and a /hint reach the
    prompts of the expansions they steer; tokens and $ are shown."""
    import shutil

    from fakeserver import FakeServer, Reply, role_of, textstats_brain

    repo = tmp_path / "textstats"
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / "textstats", repo)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "initial"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True)
    fix = textstats_brain()
    asked = {"n": 0}

    def brain(req):  # type: ignore[no-untyped-def]
        if role_of(req) == "other" and "developer's question" in req.texts[0]:
            asked["n"] += 1
            if asked["n"] == 1:
                return Reply(tool_calls=[("search", {"query": "def top_words"})])
            return Reply(text="top_words is defined in textstats/core.py")
        return fix(req)

    env = {"OPENAI_API_KEY": "sk-test"}
    with FakeServer(brain=brain) as server:
        t = term("chat", "-m", "openai/gpt-4o-mini", "--base-url", server.url, "--test-cmd",
                 "python -m pytest -q tests", cwd=repo, env=env)  # fmt: skip
        t.prompt()
        t.send("/ask where is top_words defined?")
        shown = t.wait_for("top_words is defined in textstats/core.py", "Tokens:")
        assert "Tokens: 0 sent" not in shown
        assert any("def top_words" in " ".join(r.texts) for r in server.requests[1:2]), "the tool ran"
        t.prompt()

        t.clear()
        t.send("top_words returns too few words and average_word_length crashes on empty text")
        shown = t.wait_for("treefix · verified", "★ code", timeout=240)
        shown = t.prompt()
        assert "Tokens: 0 sent" not in shown and "Cost: $0.0000 request" not in shown
        code, root = node_id(shown, "code"), node_id(shown, "root")

        t.send("/budget nodes 1")
        t.wait_for("nodes 1")
        t.clear()
        t.send("also keep the guard for empty text")
        t.wait_for("continuing tree", "repair", timeout=240)
        t.prompt(timeout=240)
        repairs = [r for r in server.requests if role_of(r) == "repair"]
        assert repairs and "Guidance for this attempt: also keep the guard for empty text" in repairs[-1].texts[-1]

        t.send(f"/hint {root} look at core.py first")
        t.wait_for(f"hint kept for {root}")
        t.clear()
        t.send(f"/expand {root}")
        t.wait_for("continuing tree", timeout=240)
        t.prompt(timeout=240)
        plans = [r for r in server.requests if role_of(r) == "plan"]
        assert len(plans) >= 2 and "From the user: look at core.py first" in plans[-1].texts[-1]
        assert code
