import subprocess
import textwrap
from pathlib import Path

import pytest

from treefix.tools.files import list_files
from treefix.tools.index import RepoIndex
from treefix.tools.pagerank import HubGraph, pagerank
from treefix.tools.repo_map import RepoMap
from treefix.tools.tags import extract
from treefix.tools.tokens import count_tokens

SOURCES = {
    "shop/models.py": """\
        class Money:
            def __init__(self, cents: int) -> None:
                self.cents = cents

            def add(self, other: "Money") -> "Money":
                return Money(self.cents + other.cents)


        class Basket:
            def total_price(self, items) -> Money:
                return sum_prices(items)


        def sum_prices(items):
            total = Money(0)
            for item in items:
                total = total.add(item.price)
            return total
        """,
    "shop/views.py": """\
        from shop.models import Basket, Money


        def checkout_view(request):
            basket = Basket()
            return basket.total_price(request.items)
        """,
    "shop/cli.py": """\
        from shop.models import Money


        def main():
            print(Money(5).add(Money(6)))
        """,
    "web/app.ts": """\
        export interface Price { cents: number }
        export class Cart {
          items: Price[] = [];
          total(): number { return this.items.reduce((a, p) => a + p.cents, 0); }
        }
        export const makeCart = (): Cart => new Cart();
        """,
    "svc/main.go": """\
        package main

        type Server struct { port int }

        func (s *Server) Start(addr string) error {
            return nil
        }

        func main() { s := &Server{}; s.Start(":80") }
        """,
    "core/src/lib.rs": """\
        pub struct Ledger { entries: Vec<i64> }

        impl Ledger {
            pub fn balance(&self) -> i64 { self.entries.iter().sum() }
        }
        """,
    "java/Account.java": """\
        public class Account {
            private long cents;
            public long deposit(long amount) { cents += amount; return cents; }
        }
        """,
    "web/util.js": "function slugify(text) {\n  return text.toLowerCase();\n}\nmodule.exports = { slugify };\n",
}


def make_repo(root: Path) -> Path:
    for rel, text in SOURCES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


# ---------------------------------------------------------------- tags


def test_tags_for_every_language(repo):
    def names(rel):
        return {(d.name, d.kind) for d in extract(rel, (repo / rel).read_bytes()).definitions}

    assert {("Money", "class"), ("add", "method"), ("sum_prices", "function")} <= names("shop/models.py")
    assert {
        ("Price", "interface"),
        ("Cart", "class"),
        ("total", "method"),
        ("makeCart", "function"),
    } <= names("web/app.ts")
    assert {("Server", "type"), ("Start", "method"), ("main", "function")} <= names("svc/main.go")
    assert {("Ledger", "class"), ("Ledger", "impl"), ("balance", "method")} <= names("core/src/lib.rs")
    assert {("Account", "class"), ("deposit", "method")} <= names("java/Account.java")
    assert {("slugify", "function")} <= names("web/util.js")


def test_signatures_nesting_and_references(repo):
    tags = extract("shop/models.py", (repo / "shop/models.py").read_bytes())
    add = next(d for d in tags.definitions if d.name == "add")
    assert add.signature == 'def add(self, other: "Money") -> "Money":'
    assert add.depth == 1 and tags.definitions[add.parent].name == "Money"
    assert tags.references["Money"] == [6, 10, 15]  # uses, not the definition's own name
    go = extract("svc/main.go", (repo / "svc/main.go").read_bytes())
    assert (
        next(d for d in go.definitions if d.name == "Start").signature
        == "func (s *Server) Start(addr string) error"
    )


# ---------------------------------------------------------------- index and cache


def test_index_reparses_only_changed_files(repo, tmp_path):
    cache = tmp_path / "cache"
    first = RepoIndex(repo, cache).refresh()
    assert first.parsed == len(SOURCES)
    assert RepoIndex(repo, cache).refresh().parsed == 0  # a new process reuses the disk cache
    (repo / "shop/cli.py").touch()
    touched = RepoIndex(repo, cache).refresh()
    assert (touched.parsed, touched.hashed) == (0, 1)
    (repo / "shop/views.py").write_text("def other():\n    pass\n")
    index = RepoIndex(repo, cache)
    edited = index.refresh()
    assert edited.parsed == 1
    assert [d.name for d in index.definitions("shop/views.py")] == ["other"]


def test_git_repositories_respect_gitignore(repo):
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / ".gitignore").write_text("generated/\n")
    (repo / "generated").mkdir()
    (repo / "generated/big.py").write_text("x = 1\n")
    files = list_files(repo)
    assert "shop/models.py" in files and "generated/big.py" not in files


# ---------------------------------------------------------------- pagerank


def test_pagerank_matches_the_expanded_graph():
    nx = pytest.importorskip("networkx")
    # files 0..3; identifiers 0..2 with their definers; uses with weights
    definers = [[1], [2, 3], [0], [0, 1]]
    uses = [[(0, 1.0), (1, 2.0), (3, 1.0)], [(1, 1.0), (3, 2.0)], [(2, 3.0)], [(3, 1.0)]]
    person = [0.5, 0.1, 0.1, 0.3]
    ours = pagerank(HubGraph(4, definers, uses), person, iterations=200, tolerance=1e-12).files
    g = nx.DiGraph()
    g.add_nodes_from(range(4))
    for src, items in enumerate(uses):
        for h, w in items:
            for dst in definers[h]:
                if dst == src:
                    continue
                weight = g[src][dst]["weight"] + w if g.has_edge(src, dst) else w
                g.add_edge(src, dst, weight=weight)
    theirs = nx.pagerank(g, personalization=dict(enumerate(person)), tol=1e-12, max_iter=500)
    assert ours == pytest.approx([theirs[i] for i in range(4)], abs=1e-6)


# ---------------------------------------------------------------- ranking and rendering


def test_rank_prefers_the_defining_file_and_the_focus(repo, tmp_path):
    rm = RepoMap(repo, tmp_path / "cache")
    ranked = [f for f, _ in rm.rank_files()]
    assert ranked[0] == "shop/models.py"  # everything in shop/ uses Money and Basket
    focused = [f for f, _ in rm.rank_files(focus_files=["svc/main.go"])]
    assert focused[0] == "svc/main.go"
    assert rm.rank_files(focus_idents=["Ledger"])[0][0] == "core/src/lib.rs"


def test_render_shows_signatures_under_their_class(repo, tmp_path):
    text = RepoMap(repo, tmp_path / "cache").render(2000)
    assert text.startswith("shop/models.py:\n")
    assert '5│    def add(self, other: "Money") -> "Money":' in text
    assert "4│    total(): number" in text and "svc/main.go:" in text


@pytest.mark.parametrize("budget", [30, 60, 100, 150])
def test_render_never_exceeds_and_nearly_fills_the_budget(repo, tmp_path, budget):
    rm = RepoMap(repo, tmp_path / "cache")
    whole = count_tokens(rm.render(100_000))
    used = count_tokens(rm.render(budget))
    assert used <= budget
    assert used >= min(whole, 0.95 * budget) - 12  # tiny budgets leave at most one line unused


def test_focus_helpers(repo, tmp_path):
    rm = RepoMap(repo, tmp_path / "cache")
    assert rm.split_focus(["views.py", "total_price", "shop/cli.py"]) == (
        ["shop/views.py", "shop/cli.py"],
        ["total_price"],
    )
    files, idents = rm.focus_from_text("Basket.total_price() is wrong in shop/views.py; see `Money`")
    assert files == ["shop/views.py"] and idents == ["total_price", "Money"]


def test_render_follows_edits_after_refresh(repo, tmp_path):
    rm = RepoMap(repo, tmp_path / "cache")
    assert "def brand_new" not in rm.render(5000)
    (repo / "shop/extra.py").write_text("def brand_new():\n    pass\n")
    rm.refresh()
    assert "def brand_new():" in rm.render(5000)


def test_map_command_prints_the_map_and_its_tokens(repo, tmp_path, monkeypatch):
    from rich.console import Console

    from treefix.agent.commands.map import map_command

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    console = Console(record=True, width=200)
    assert map_command(repo, 120, ["svc/main.go", "Server"], console) == 0
    out = console.export_text()
    assert out.startswith("svc/main.go:\n") and "focus: svc/main.go, Server" in out
    used = int(out.rsplit("\n", 2)[-2].split()[0])
    assert 0 < used <= 120
    assert map_command(tmp_path / "missing", 100, [], console) == 2
    assert map_command(repo, 0, [], console) == 2


def test_worktrees_of_one_repository_share_the_cache(repo, tmp_path):
    def git(*args, cwd=repo):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=cwd,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    git("worktree", "add", "-q", str(tmp_path / "wt"))
    cache = tmp_path / "cache"
    assert RepoIndex(repo, cache).refresh().parsed == len(SOURCES)
    other = RepoIndex(tmp_path / "wt", cache)
    stats = other.refresh()
    assert (stats.parsed, stats.hashed) == (0, len(SOURCES))  # same content: hashed, never parsed
    assert other.cache_file == RepoIndex(repo, cache).cache_file


def test_token_counts_are_offline_and_exact():
    from treefix.tools.tokens import approx_tokens, exact

    assert exact() and count_tokens("hello world") == 2
    assert approx_tokens("def f(x):\n    return x\n") == approx_tokens("def f(x):\n    return x\n") > 0
