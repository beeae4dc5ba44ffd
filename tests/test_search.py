import subprocess
import textwrap

import pytest
from test_repo_map import make_repo  # noqa: E402

from treefix.tools.index import RepoIndex
from treefix.tools.search import SearchError, find_definitions, find_references, search_files, search_text


@pytest.fixture
def repo(tmp_path):
    root = make_repo(tmp_path / "repo")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".gitignore").write_text("build/\n")
    (root / "build").mkdir()
    (root / "build/copy.py").write_text("def sum_prices():\n    pass\n")
    return root


@pytest.fixture
def index(repo, tmp_path):
    idx = RepoIndex(repo, tmp_path / "cache")
    idx.refresh()
    return idx


def test_text_search_respects_gitignore(repo):
    text = search_text(repo, "sum_prices")
    assert text.splitlines()[:3] == [
        "2 matches in 1 file for text 'sum_prices':",
        "shop/models.py",
        "  11: return sum_prices(items)",
    ]
    assert "build/" not in text


def test_regex_glob_case_and_no_match(repo):
    assert "1 match in 1 file for regex" in search_text(repo, r"def \w+_view", regex=True)
    assert "in *.go" in search_text(repo, "func", glob="*.go") and "main.go" in search_text(
        repo, "func", glob="*.go"
    )
    assert "shop/models.py" in search_text(repo, "MONEY", ignore_case=True)
    assert search_text(repo, "no such text anywhere") == "No matches for text 'no such text anywhere'."
    with pytest.raises(SearchError):
        search_text(repo, "(unclosed", regex=True)


def test_text_search_outside_git(tmp_path):
    root = make_repo(tmp_path / "plain")
    assert "shop/views.py" in search_text(root, "checkout_view")


def test_results_are_capped_with_advice(tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    for i in range(30):
        (root / f"m{i:02}.py").write_text("".join(f"value = {j}\n" for j in range(10)))
    text = search_text(root, "value")
    assert text.splitlines()[0] == "300 matches in 30 files for text 'value':"
    assert "[2 more in this file]" in text
    assert text.splitlines()[-1].startswith("[260 more matches not shown: narrow the query")


def test_file_name_search(repo):
    assert search_files(repo, "views").splitlines() == ["1 file matches 'views':", "shop/views.py"]
    assert "web/app.ts" in search_files(repo, "*.ts") and "No files match" in search_files(repo, "zzz")


def test_definitions_and_references(index):
    defs = find_definitions(index, "Money")
    assert defs.splitlines() == ["1 definition of 'Money':", "shop/models.py:1│class Money:"]
    assert find_definitions(index, "Basket.total_price").splitlines()[1] == (
        "shop/models.py:10│def total_price(self, items) -> Money:"
    )
    assert "No definition" in find_definitions(index, "Nope")
    refs = find_references(index, "Money")
    assert refs.splitlines()[0] == "7 references to 'Money' in 3 files:"
    assert "shop/cli.py\n  1: from shop.models import Money\n  5: print(Money(5).add(Money(6)))" in refs
    assert "build/copy.py" not in find_definitions(index, "sum_prices")


def test_search_edits_are_seen_without_a_cache(repo, tmp_path):
    (repo / "shop/new.py").write_text(textwrap.dedent("def fresh():\n    return 1\n"))
    assert "shop/new.py" in search_text(repo, "fresh")
