"""The pieces of the execution evidence that need no test run: acceptance of a reproduction's base
run, the choice of regression test files, and the repository-import check."""

from conftest import make_repo

from treefix.agent.evidence import (
    changed_names,
    extract_code,
    imports_repository,
    judge_reproduction,
    select_regression_files,
)
from treefix.tools.sandbox import RunResult
from treefix.tools.testing import TestReport

DIFF = (
    "diff --git a/calc/stats.py b/calc/stats.py\n--- a/calc/stats.py\n+++ b/calc/stats.py\n"
    "@@ -1,2 +1,2 @@ def mean(xs):\n-    return 1\n+    return 2\n"
)


def run(output: str, timed_out: bool = False) -> RunResult:
    return RunResult(None if timed_out else 1, output, timed_out, 0.1)


def report(**tests: str) -> TestReport:
    values = list(tests.values())
    return TestReport(values.count("passed"), values.count("failed"), values.count("error"), 0, tests, True)


def test_a_reproduction_is_accepted_only_on_a_related_failure():
    ok, why = judge_reproduction(run("FAILED t.py::test_a - assert 1.5 == 2"), report(**{"t.py::test_a": "failed"}))
    assert ok and "assert 1.5 == 2" in why
    ok, why = judge_reproduction(run(""), report(**{"t.py::test_a": "passed"}))
    assert not ok and "passes on the base" in why
    ok, why = judge_reproduction(run("FAILED t.py::test_a - NameError: name 'x' is not defined"),
                                 report(**{"t.py::test_a": "failed"}))  # fmt: skip
    assert not ok and "unrelated reason" in why
    ok, why = judge_reproduction(run("E   ModuleNotFoundError: No module named 'nope'"), TestReport(collected=False))
    assert not ok and "ModuleNotFoundError" in why
    ok, why = judge_reproduction(run("", timed_out=True), report(**{"t.py::test_a": "failed"}))
    assert not ok and "timed out" in why


def test_regression_files_are_those_that_import_or_name_the_changed_code(tmp_path):
    root = make_repo(tmp_path / "r", {
        "calc/__init__.py": "", "calc/stats.py": "def mean(xs):\n    return 1\n",
        "tests/test_stats.py": "from calc.stats import mean\n",  # named after it and imports it
        "tests/test_other.py": "from calc import stats\n\ndef test_x():\n    stats.mean([1])\n",  # calls mean
        "tests/test_unrelated.py": "import json\n",
        "test_treefix_repro_abc.py": "from calc.stats import mean\n",  # a reproduction is never a regression test
    })  # fmt: skip
    assert select_regression_files(root, DIFF) == ["tests/test_stats.py", "tests/test_other.py"]
    assert changed_names(DIFF) == ["mean"]
    assert select_regression_files(root, DIFF.replace("calc/stats.py", "tests/test_stats.py")) == []


def test_a_reproduction_must_import_the_repositorys_code(tmp_path):
    root = make_repo(tmp_path / "r", {"calc/__init__.py": "", "src/other/__init__.py": "", "tool.py": ""})
    assert imports_repository("from calc.stats import mean\n", root)
    assert imports_repository("import other\n", root) and imports_repository("import tool\n", root)
    assert not imports_repository("import json\n\ndef test():\n    assert sorted([2, 1]) == [2, 1]\n", root)
    assert extract_code("Here:\n```python\nimport calc\n```\nthanks") == "import calc\n"


def test_changed_lines_are_base_side_replacements_and_the_neighbours_of_insertions():
    from treefix.agent.evidence import changed_lines

    diff = (
        "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -3,3 +3,3 @@ def f():\n"
        "     a = 1\n-    b = 2\n+    b = 3\n     c = 4\n"
        "@@ -20,2 +20,3 @@ def g():\n     x = 1\n+    y = 2\n     z = 3\n"
    )
    # line 4 replaced (not its neighbour 5); an insertion after line 20 touches lines 20 and 21
    assert changed_lines(diff) == {"m.py": {4, 20, 21}}


def test_extract_files_reads_each_fenced_block_as_a_file():
    from treefix.agent.evidence import extract_files

    reply = "One:\n```python\nimport a\n```\nTwo:\n```\nimport b\n```\n```python\nimport c\n```\n```py\nimport d\n```"
    assert extract_files(reply) == ["import a\n", "import b\n", "import c\n"]  # at most three
    assert extract_files("import calc\n") == ["import calc\n"]
