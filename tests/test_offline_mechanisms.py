"""The offline policy's generalisation mechanisms, each on a small real repository with real test runs:
file-level visible tests, import-time coverage, traceback weighting, call-site and clause operators,
values from the failing assertion, type-aware mutation, and a test timeout scaled to the base run."""

import time

from conftest import make_repo

from treefix.agent.budget import Budget, Limits
from treefix.agent.evaluate import BASE_SECONDS_KEY, evaluate, run_timeout
from treefix.agent.policies.base import SearchContext
from treefix.agent.policies.localise import assertion_values, frame_weights, gather, ochiai
from treefix.agent.policies.offline import OfflinePolicy
from treefix.agent.policies.operators import mutations
from treefix.agent.run import RunConfig, run_fix
from treefix.agent.select import SearchParams
from treefix.agent.store import RunStore
from treefix.agent.task import Task
from treefix.agent.tree import Node, NodeKind
from treefix.evals.worker import visible_test_cmd
from treefix.tools.sandbox import default_sandbox
from treefix.tools.workspace import Workspace

FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
PYTEST = "python -m pytest -q -p no:cacheprovider"


def context(tmp_path, files, test_cmd=PYTEST, issue="it is broken", timeout=300.0):
    repo = make_repo(tmp_path / "repo", files)
    task = Task(repo=repo, problem_statement=issue, test_cmd=test_cmd, env=FAST, test_timeout=timeout, auto_timeout=True)
    store = RunStore(tmp_path / "run" / "run.sqlite")
    return SearchContext(task, store, Workspace(repo), Budget(Limits(cost_limit=0)), default_sandbox(), SearchParams())


def ranked_sites(tmp_path, files):
    ctx = context(tmp_path, files)
    try:
        return OfflinePolicy().sites(ctx)
    finally:
        ctx.workspace.close()


def offline_fix(tmp_path, files, test_cmd=PYTEST, nodes=20):
    repo = make_repo(tmp_path / "repo", files)
    config = RunConfig(model="offline", limits=Limits(max_nodes=nodes, cost_limit=0))
    return run_fix(Task(repo, "a test fails", test_cmd=test_cmd, env=FAST), config, tmp_path / "run")


# --- visible tests run whole files: passing tests enter the spectrum ---------------------------------

SHARED = {
    "pkg/__init__.py": "",
    "pkg/fmt.py": (
        "def label(n):\n"
        "    text = str(n)\n"
        "    if n > 1000:\n"
        "        text = text[:-3] + 'k'\n"
        "    return text\n"
    ),
    "tests/test_fmt.py": (
        "from pkg.fmt import label\n\n\n"
        "def test_small():\n    assert label(5) == '5'\n\n\n"
        "def test_big():\n    assert label(2000) == '2k'\n\n\n"
        "def test_exact_thousand():\n    assert label(1000) == '1k'\n"
    ),
}


def test_visible_tests_run_their_files_so_passing_tests_rank_the_lines(tmp_path):
    cmd = visible_test_cmd(PYTEST, ["tests/test_fmt.py::test_exact_thousand", "tests/test_fmt.py::test_x[a b]"])
    assert cmd == f"{PYTEST} tests/test_fmt.py"
    ctx = context(tmp_path, SHARED, test_cmd=cmd)
    try:
        spectrum = gather(ctx)
    finally:
        ctx.workspace.close()
    assert spectrum.outcomes["tests/test_fmt.py::test_small"] == "passed"
    assert spectrum.failing == {"tests/test_fmt.py::test_exact_thousand"}
    scores = {s.line: s.score for s in ochiai(spectrum)}
    # With the failing id alone every line it runs would score 1.0; passing tests bring that down.
    assert set(scores) == {1, 2, 3, 5} and max(scores.values()) < 0.6


# --- import-time lines are credited to the tests that use their module -------------------------------

IMPORT_TIME = {
    "bytesutil.py": (
        "import operator\n\n"
        "byte2int = operator.itemgetter(1)\n\n\n"
        "def first(data):\n"
        "    return byte2int(data)\n"
    ),
    "tests/test_bytesutil.py": (
        "from bytesutil import first\n\n\n"
        "def test_first():\n    assert first(b'ab') == 97\n"
    ),
}


def test_a_module_level_slip_is_localised_and_fixed(tmp_path):
    ctx = context(tmp_path / "a", IMPORT_TIME)
    try:
        spectrum = gather(ctx)
    finally:
        ctx.workspace.close()
    assert 3 in spectrum.module_lines["bytesutil.py"]
    assert 3 in {s.line for s in ochiai(spectrum)}
    outcome = offline_fix(tmp_path / "b", IMPORT_TIME)
    assert outcome.exit_status == "verified"
    assert "+byte2int = operator.itemgetter(0)" in outcome.patch


# --- the failing tests' tracebacks point at the function they raised in ------------------------------

TRACEBACK = {
    "stats.py": (
        "def per_item(total, items):\n"
        "    return total / len(items)\n"
        "\n\n"
        "def report(items):\n"
        "    total = sum(items)\n"
        "    if not items:\n"
        "        total = 0\n"
        "    return per_item(total, items)\n"
    ),
    "tests/test_stats.py": (
        "from stats import per_item, report\n\n\n"
        "def test_one():\n    assert report([4]) == 4\n\n\n"
        "def test_two():\n    assert report([1, 3]) == 2\n\n\n"
        "def test_direct():\n    assert per_item(6, [1, 2]) == 3\n\n\n"
        "def test_empty():\n    assert report([]) == 0\n"
    ),
}


def test_traceback_frames_outrank_lines_only_the_failing_test_runs(tmp_path):
    ctx = context(tmp_path, TRACEBACK)
    try:
        spectrum = gather(ctx)
        weights = frame_weights(spectrum)
        assert weights[("stats.py", 2)] == 1.0 and weights[("stats.py", 9)] == 0.5  # innermost first
        assert "division by zero" in spectrum.messages["tests/test_stats.py::test_empty"]
        sites = OfflinePolicy().sites(ctx)
    finally:
        ctx.workspace.close()
    # Line 8 is run by the failing test alone (Ochiai 1.0); line 2 by every test, but it raised.
    assert (sites[0].path, sites[0].line) == ("stats.py", 2)


# --- call-site and clause operators, each fixing a real bug end to end -------------------------------

METHOD = {
    "inventory.py": (
        "def priced(stock):\n"
        "    return sorted(f'{name}={qty}' for name, qty in stock.values())\n"
    ),
    "tests/test_inventory.py": (
        "from inventory import priced\n\n\n"
        "def test_priced():\n    assert priced({'b': 2, 'a': 1}) == ['a=1', 'b=2']\n"
    ),
}


def test_values_for_items_at_a_call_site_is_fixed(tmp_path):
    outcome = offline_fix(tmp_path, METHOD)
    assert outcome.exit_status == "verified"
    assert "for name, qty in stock.items())" in outcome.patch


CLAUSE = {
    "dates.py": (
        "def has_year(fmt):\n"
        "    return '%Y' in fmt\n"
        "\n\n"
        "def needs_default_year(fmt):\n"
        "    if '%Y' not in fmt:\n"
        "        return True\n"
        "    return False\n"
        "\n\n"
        "def short_year(fmt):\n"
        "    return '%y' in fmt\n"
    ),
    "tests/test_dates.py": (
        "from dates import needs_default_year\n\n\n"
        "def test_long():\n    assert needs_default_year('%Y-%m') is False\n\n\n"
        "def test_none():\n    assert needs_default_year('%m-%d') is True\n\n\n"
        "def test_short():\n    assert needs_default_year('%y-%m') is False\n"
    ),
}


def test_a_missing_sibling_clause_is_completed(tmp_path):
    labels = {m.description: m for m in mutations(CLAUSE["dates.py"], 6)}
    assert "add `and '%y' not in fmt`" in labels
    outcome = offline_fix(tmp_path, CLAUSE)
    assert outcome.exit_status == "verified"
    assert "+    if '%Y' not in fmt and '%y' not in fmt:" in outcome.patch


def test_arguments_of_a_three_argument_call_are_permuted():
    text = "def f(a, b, c):\n    return g(a, b, c)\n"
    got = {m.apply(text).splitlines()[1] for m in mutations(text, 2) if m.operator == "swap-args"}
    assert got == {"    return g(b, a, c)", "    return g(a, c, b)", "    return g(c, b, a)"}


# --- constants informed by the failing assertion --------------------------------------------------

ASSERTED = {
    "listing.py": "def shown(items):\n    limit = 10\n    return min(len(items), limit)\n",
    "tests/test_listing.py": (
        "from listing import shown\n\n\n"
        "def test_few():\n    assert shown([1, 2]) == 2\n\n\n"
        "def test_many():\n    assert shown(range(20)) == 12\n"
    ),
}


def test_values_from_the_failing_assertion_inform_constants(tmp_path):
    ctx = context(tmp_path / "a", ASSERTED)
    try:
        spectrum = gather(ctx)
    finally:
        ctx.workspace.close()
    assert assertion_values(spectrum) == (10, 12)  # got, expected
    text = ASSERTED["listing.py"]
    assert "`10` -> `12`" not in str([m.description for m in mutations(text, 2)])  # +-1 and x10 miss it
    assert "`10` -> `12` (from the failing assertion)" in {m.description for m in mutations(text, 2, (10, 12))}
    outcome = offline_fix(tmp_path / "b", ASSERTED)
    assert outcome.exit_status == "verified"
    assert "+    limit = 12" in outcome.patch


# --- type-aware mutation and distinct labels ----------------------------------------------------------


def test_no_arithmetic_on_text_and_occurrences_are_named():
    text = "def f(spec, table):\n    name = spec.strip()\n    return table[name] + table[spec]\n"
    descs = [m.description for m in mutations(text, 3)]
    assert not any("name + 1" in d or "spec + 1" in d or "spec - 1" in d for d in descs)
    masks = "def g(a, b):\n    return (a & 0xFF) | (b & 0xFF)\n"
    labels = [m.description for m in mutations(masks, 2) if m.operator == "off-by-one"]
    assert "`255` -> `256` (1st of 2)" in labels and "`255` -> `256` (2nd of 2)" in labels
    assert len(labels) == len(set(labels))


# --- a looping mutant is stopped after a multiple of the base run -------------------------------------

LOOP = {
    "loop.py": "def spin(n):\n    while n > 0:\n        n -= 1\n    return n\n",
    "tests/test_loop.py": "from loop import spin\n\n\ndef test_spin():\n    assert spin(3) == 0\n",
}


def test_a_looping_mutant_does_not_hold_the_full_timeout(tmp_path):
    ctx = context(tmp_path, LOOP, timeout=300.0)
    try:
        assert run_timeout(ctx) == 300.0  # nothing known about the base run yet
        OfflinePolicy().spectrum(ctx)
        base = ctx.store.get_meta(BASE_SECONDS_KEY)
        assert 0 < base < 6 and run_timeout(ctx) == 30.0  # the floor: 5x a fast base run
        loops = (
            "--- a/loop.py\n+++ b/loop.py\n@@ -1,4 +1,4 @@\n def spin(n):\n     while n > 0:\n"
            "-        n -= 1\n+        n += 1\n     return n\n"
        )
        node = Node(NodeKind.CODE, "root", 1, diff=loops)
        start = time.monotonic()
        result = evaluate(ctx, node)
        assert result is not None and result.timed_out
        assert time.monotonic() - start < 90
    finally:
        ctx.workspace.close()


# --- ranking: the failing test's name, and one long function cannot hold every plan ------------------

NAMED_BY_TEST = {
    "limits.py": (
        "def scale(x):\n"
        "    return x * 10\n"
        "\n\n"
        "def clamp(x):\n"
        "    return min(x, 99)\n"
    ),
    "tests/test_limits.py": (
        "from limits import clamp, scale\n\n\n"
        "def test_clamp_keeps_the_upper_bound():\n    assert clamp(scale(20)) == 100\n"
    ),
}


def test_a_function_the_failing_test_is_named_after_ranks_first(tmp_path):
    sites = ranked_sites(tmp_path, NAMED_BY_TEST)
    # Both functions run only in the failing test and the assertion is in the test: a tie that
    # file order would break towards `scale`; the test's name points at `clamp`.
    assert (sites[0].path, sites[0].line) == ("limits.py", 6)


LONG_FUNCTION = {
    "steps.py": (
        "def walk(n):\n"
        + "".join(f"    n = n + {i}\n" for i in range(1, 25))
        + "    return n\n\n\n"
        "def double(n):\n"
        "    return n * 3\n"
    ),
    "tests/test_steps.py": (
        "from steps import double, walk\n\n\n"
        "def test_double():\n    assert double(0) == 0\n\n\n"
        "def test_walk_then_double():\n    assert double(walk(0)) == 600\n"
    ),
}


def test_one_long_function_does_not_hold_every_plan(tmp_path):
    sites = ranked_sites(tmp_path, LONG_FUNCTION)
    lines = [s.line for s in sites if s.path == "steps.py"]
    walk = [ln for ln in lines if ln <= 26]
    # `walk` scores higher on every line (only the failing test runs it); `double` comes in after a
    # few of its lines rather than after all 25.
    assert len(walk) >= 20 and lines.index(30) < 10


# --- names and arguments: a misused variable, a forgotten parameter ----------------------------------

MISUSE = {
    "grid.py": (
        "def cell_span(n_rows, n_cols, width):\n"
        "    if width <= 0:\n"
        "        raise ValueError(width)\n"
        "    per_col = width // n_rows\n"
        "    return [per_col] * n_cols\n"
    ),
    "test_grid.py": (
        "from grid import cell_span\n\n\n"
        "def test_square():\n    assert cell_span(2, 2, 10) == [5, 5]\n\n\n"
        "def test_wide():\n    assert cell_span(1, 4, 8) == [2, 2, 2, 2]\n\n\n"
        "def test_bad_width():\n"
        "    import pytest\n\n"
        "    with pytest.raises(ValueError):\n        cell_span(1, 1, 0)\n"
    ),
}


def test_a_variable_misused_for_one_spelled_alike_is_fixed_end_to_end(tmp_path):
    outcome = offline_fix(tmp_path, MISUSE)
    assert outcome.exit_status == "verified"
    assert "+    per_col = width // n_cols" in outcome.patch


FORWARD = {
    "pad.py": (
        "def _fill(items, size, filler=None):\n"
        "    return list(items) + [filler] * (size - len(items))\n\n\n"
        "def padded(items, size, filler=None):\n"
        "    return _fill(items, size)\n"
    ),
    "test_pad.py": (
        "from pad import padded\n\n\n"
        "def test_default():\n    assert padded([1], 3) == [1, None, None]\n\n\n"
        "def test_filler():\n    assert padded([1], 3, 0) == [1, 0, 0]\n"
    ),
}


def test_a_parameter_the_function_never_reads_is_passed_on_end_to_end(tmp_path):
    outcome = offline_fix(tmp_path, FORWARD)
    assert outcome.exit_status == "verified"
    assert "_fill(items, size, filler" in outcome.patch
