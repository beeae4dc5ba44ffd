"""Fault localisation: a real coverage run of a real repository's tests, ranked by Ochiai."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import coverage
import pytest
from conftest import make_repo

from treefix.agent.budget import Budget, Limits
from treefix.agent.policies.base import SearchContext
from treefix.agent.policies.localise import (
    PLUGIN_MODULE,
    Spectrum,
    align,
    coverage_env,
    gather,
    is_test_file,
    ochiai,
    plugin_dir,
)
from treefix.agent.select import SearchParams
from treefix.agent.store import RunStore
from treefix.agent.task import Task
from treefix.tools.sandbox import default_sandbox
from treefix.tools.workspace import Workspace

FILES = {
    "shop/__init__.py": "",
    "shop/cart.py": (
        "def total(prices, discount=0):\n"
        "    s = sum(prices)\n"
        "    if s >= 100:\n"
        "        s = s - discount\n"
        "    return s\n"
        "\n"
        "\n"
        "def count(prices):\n"
        "    return len(prices)\n"
    ),
    "tests/test_cart.py": (
        "from shop.cart import count, total\n\n\n"
        "def test_small():\n    assert total([10, 20], 5) == 30\n\n\n"
        "def test_large():\n    assert total([60, 50], 10) == 100\n\n\n"
        "def test_boundary():\n    assert total([100], 10) == 100\n\n\n"
        "def test_count():\n    assert count([1, 2]) == 2\n"
    ),
}
TEST_CMD = "python -m pytest -q -p no:cacheprovider"
ROOT = Path(__file__).resolve().parents[1]


def context(tmp_path, test_cmd=TEST_CMD, env=None):
    repo = make_repo(tmp_path / "repo", FILES)
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})}  # this interpreter's plugins cost seconds
    task = Task(repo=repo, problem_statement="total() discounts a 100 order", test_cmd=test_cmd, env=env)
    store = RunStore(tmp_path / "run" / "run.sqlite")
    return SearchContext(
        task, store, Workspace(repo), Budget(Limits(cost_limit=0)), default_sandbox(), SearchParams()
    )


def test_the_boundary_line_ranks_first_and_tests_are_left_out(tmp_path):
    ctx = context(tmp_path)
    try:
        spectrum = gather(ctx)
    finally:
        ctx.workspace.close()
    assert not spectrum.error
    assert spectrum.outcomes["tests/test_cart.py::test_boundary"] == "failed"
    assert spectrum.failing == {"tests/test_cart.py::test_boundary"}
    assert spectrum.baseline == 0.75
    sites = ochiai(spectrum)
    assert (sites[0].path, sites[0].line) == ("shop/cart.py", 4)  # only the failing test runs it
    assert sites[0].score > sites[1].score
    assert all(s.path == "shop/cart.py" for s in sites)  # no test file, no line the failing test skips
    assert 9 not in {s.line for s in sites}
    assert (
        ctx.budget.spent.test_runs == 1 and len(ctx.store.events("test")) == 1
    )  # charged, and counted on resume


def test_reranking_with_other_failing_tests_and_a_round_trip():
    spectrum = Spectrum(
        tests=["t::a", "t::b", "t::c"],
        outcomes={"t::a": "failed", "t::b": "passed", "t::c": "failed"},
        lines={"m.py": {1: [0, 1, 2], 2: [0], 3: [2]}, "tests/test_m.py": {1: [0]}},
    )
    assert [s.line for s in ochiai(spectrum)] == [1, 2, 3]  # ef=2 beats ef=1
    assert [s.line for s in ochiai(spectrum, {"t::c"})][0] == 3
    assert ochiai(spectrum, set()) == []
    assert Spectrum.from_dict(spectrum.to_dict()) == spectrum


def test_the_plugin_goes_on_the_path_without_losing_the_tasks_own(tmp_path):
    env = coverage_env({"PYTHONPATH": "src", "PYTEST_PLUGINS": "other"}, tmp_path / "data")
    first, rest = env["PYTHONPATH"].split(os.pathsep, 1)
    assert rest == "src" and (
        os.path.isdir(first) and os.path.isfile(os.path.join(first, f"{PLUGIN_MODULE}.py"))
    )
    assert env["PYTEST_PLUGINS"] == f"other,{PLUGIN_MODULE}"


def test_test_paths():
    assert is_test_file("tests/test_x.py") and is_test_file("pkg/x_test.py") and is_test_file("conftest.py")
    assert not is_test_file("pkg/testing_utils.py") and not is_test_file("src/contest.py")


def test_a_command_that_is_not_pytest_gives_an_empty_spectrum_with_a_reason(tmp_path):
    ctx = context(tmp_path, test_cmd="true")
    try:
        spectrum = gather(ctx)
    finally:
        ctx.workspace.close()
    assert spectrum.lines == {} and "no coverage" in spectrum.error


def test_outcomes_are_keyed_by_node_id_even_when_junit_paths_differ():
    outcomes = {
        "pkg/tests/test_a.py::T::test_x[1]": "failed",
        "test_b.py::test_y": "passed",
        "a::test_z": "passed",
    }
    tests = ["tests/test_a.py::T::test_x[1]", "test_b.py::test_y", "b::test_w"]
    assert align(outcomes, tests) == {
        "tests/test_a.py::T::test_x[1]": "failed",
        "test_b.py::test_y": "passed",
    }


def test_the_plugin_folder_is_self_contained_inside_the_sandbox(tmp_path):
    # A copy, not a link into treefix's environment, which the sandbox may hide (a venv under /tmp).
    folder = plugin_dir()
    assert (folder / "coverage").is_dir() and not (folder / "coverage").is_symlink()
    # -S: no site-packages at all, so coverage can only come from the plugin folder.
    code = f"import sys; sys.path.insert(0, {str(folder)!r}); import coverage; print(coverage.__file__)"
    result = default_sandbox().run([sys.executable, "-S", "-c", code], tmp_path, timeout=30)
    assert result.output.strip() == str(folder / "coverage" / "__init__.py"), result.output


@pytest.mark.slow
def test_offline_demo_with_treefix_installed_in_a_venv_under_tmp(tmp_path):
    """The bundled example, fixed by a treefix whose own environment (and coverage) lives under /tmp,
    which bubblewrap replaces with a private one."""
    where = Path(tempfile.mkdtemp(prefix="treefix-venv-", dir="/tmp"))
    try:
        venv = where / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
        pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps"]
        subprocess.run([*pip, "-e", str(ROOT)], check=True, capture_output=True)
        site = subprocess.run(
            [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        dist = metadata.distribution("coverage")
        for part in (Path(coverage.__file__).parent, Path(dist._path)):  # type: ignore[attr-defined]
            shutil.copytree(part, Path(site) / part.name)  # treefix's own coverage, under /tmp
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # run by path, not activated
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # this interpreter's plugins cost seconds per test run
        demo = tmp_path / "demo"
        result = subprocess.run(
            [venv / "bin" / "treefix", "demo", "--dir", str(demo), "-m", "offline"],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "verified" in result.stdout
        (run_db,) = demo.glob(".treefix/runs/*/run.sqlite")
        localised = [json.loads(d) for (d,) in sqlite3.connect(run_db).execute("SELECT data FROM events WHERE kind='localise'")]
        assert localised and localised[0]["error"] == "" and localised[0]["tests"] > 0
    finally:
        shutil.rmtree(where, ignore_errors=True)
