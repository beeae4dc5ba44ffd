"""Each cause of a wrong verdict seen on real SWE-bench instances, in a small real repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_repo
from test_environment import GOLD
from typer.testing import CliRunner

from treefix.evals.cli import app
from treefix.evals.dataset import Instance
from treefix.evals.environment import EnvError, ensure_venv
from treefix.evals.harness import evaluate, grade
from treefix.evals.worker import agent_repo
from treefix.tools.sandbox import SubprocessSandbox
from treefix.tools.testing import run_tests

PYTEST = f"{sys.executable} -m pytest -rA -p no:cacheprovider"


def _run(repo: Path, cmd: str = PYTEST):  # type: ignore[no-untyped-def]
    return run_tests(SubprocessSandbox(), cmd, repo, 120, None)


# --- inherited tests and same-named classes (junit path) ---------------------------------------

BASE = "class Base:\n    value = 0\n\n    def test_value(self):\n        assert self.value == 1\n"


def test_inherited_tests_keep_their_own_file_and_a_failure_is_never_hidden(tmp_path: Path) -> None:
    """pytest's junit `file` is where the method is defined (the base module): both TestK::test_value
    ids used to become tests/base.py::TestK::test_value, and the later pass hid the failure."""
    repo = make_repo(tmp_path / "r", {
        "tests/base.py": BASE,
        "tests/test_a.py": "from base import Base\n\n\nclass TestK(Base):\n    value = 1\n",
        "tests/test_b.py": "from base import Base\n\n\nclass TestK(Base):\n    value = 2\n",
    })  # fmt: skip
    _, report = _run(repo)
    assert report.tests == {"tests/test_a.py::TestK::test_value": "passed",
                            "tests/test_b.py::TestK::test_value": "failed"}  # fmt: skip
    assert report.failed == 1 and not report.ok  # a run with a failure is never "verified"


def test_mixin_in_package_init_is_recorded_under_the_test_module(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {
        "tests/__init__.py": BASE.replace("value = 0", "value = 1"),
        "tests/test_m.py": "from tests import Base\n\n\nclass TestM(Base):\n    pass\n",
    })  # fmt: skip
    _, report = _run(repo)
    assert report.tests == {"tests/test_m.py::TestM::test_value": "passed"}
    assert grade("i", ["tests/test_m.py::TestM::test_value"], [], report.tests).resolved


# --- truncated parametrized ids ----------------------------------------------------------------

PARAM = """import pytest


@pytest.mark.parametrize("s", ["a b", "c"])
def test_x(s):
    assert s.replace(" ", "") == s.replace(" ", "")  # FLIP
"""


def test_ids_cut_at_a_space_match_like_swebench_records_them(tmp_path: Path) -> None:
    """SWE-bench's log parser splits on whitespace: `test_x[a b]` is stored as `test_x[a`."""
    repo = make_repo(tmp_path / "r", {"tests/test_p.py": PARAM})
    _, report = _run(repo)
    assert report.tests["tests/test_p.py::test_x[a b]"] == "passed"
    f2p = ["tests/test_p.py::test_x[a", "tests/test_p.py::test_x[c]"]
    assert grade("i", f2p, [], report.tests).resolved
    (repo / "tests/test_p.py").write_text(PARAM.replace("== s.replace", "!= s.replace"))
    _, report = _run(repo)
    result = grade("i", f2p, [], report.tests)
    assert not result.resolved and result.fail_to_pass["failure"] == f2p


# --- relative -o and a foreign pytest config above the work folder -----------------------------

COMMENT_ONLY = """diff --git a/src/tinypkg/__init__.py b/src/tinypkg/__init__.py
--- a/src/tinypkg/__init__.py
+++ b/src/tinypkg/__init__.py
@@ -1,2 +1,3 @@
+# looks like a fix, changes nothing
 def add(a, b):
     return a - b
"""


def test_relative_output_inside_a_project_with_its_own_pytest_config(
    tiny: tuple[Instance, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from a checkout that has a pyproject.toml with pytest options (the README's commands),
    with the default relative `-o`: the gold patch resolves, a comment-only patch does not (the
    venv's installed copy of the package holds correct code, so tests must import the checkout)."""
    inst, cache = tiny
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-p no:doctest"\n')
    monkeypatch.chdir(proj)
    gold = evaluate([inst], {inst.instance_id: GOLD}, Path("evaluation"), cache, run_id="g")
    assert gold.resolved_ids == ["tiny-1"], gold.results["tiny-1"]
    assert "tests/test_add.py::test_add" in gold.results["tiny-1"].tests  # no path prefix
    fake = evaluate([inst], {inst.instance_id: COMMENT_ONLY}, Path("evaluation"), cache, run_id="c")
    assert fake.resolved_ids == [] and fake.results["tiny-1"].status == "unresolved"


# --- setuptools_scm versions without tags ------------------------------------------------------

# Stands in for setuptools_scm's `write_to`: the version file is generated at install time from
# the tags, or from SETUPTOOLS_SCM_PRETEND_VERSION, and git-ignored.
SCM_SETUP = ("python -c \"import os; open('pkg/_version.py', 'w').write("
             "'version = %r\\n' % os.environ.get('SETUPTOOLS_SCM_PRETEND_VERSION', 'unknown'))\"")  # fmt: skip
SCM_FILES = {
    ".gitignore": "pkg/_version.py\n",
    "pkg/__init__.py": "try:\n    from ._version import version\nexcept ImportError:\n    version = 'unknown'\n",
    "pkg/calc.py": "def add(a, b):\n    return a - b\n",
    # The project's own config refuses to run under an unknown version, like pytest's minversion.
    "conftest.py": "import pkg\n\nif pkg.version == 'unknown':\n"
    "    raise RuntimeError('requires pkg-2.0, actual pkg-unknown')\n",
    "tests/test_calc.py": "from pkg.calc import add\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n",
}
SCM_GOLD = """diff --git a/pkg/calc.py b/pkg/calc.py
--- a/pkg/calc.py
+++ b/pkg/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
"""
SCM_TESTS = """diff --git a/tests/test_add.py b/tests/test_add.py
new file mode 100644
--- /dev/null
+++ b/tests/test_add.py
@@ -0,0 +1,5 @@
+from pkg.calc import add
+
+
+def test_add():
+    assert add(2, 3) == 5
"""


def _scm_instance(tmp_path: Path) -> tuple[Instance, Path]:
    repos = tmp_path / "repos"
    origin = make_repo(repos / "acme__scm", SCM_FILES)
    later = origin / "pkg" / "calc.py"
    later.write_text("def add(a, b):\n    return a + b  # fixed upstream\n")
    subprocess.run(["git", "commit", "-qam", "the fix, later in history"], cwd=origin, check=True)
    base = subprocess.run(["git", "rev-parse", "HEAD~1"], cwd=origin, capture_output=True, text=True).stdout
    inst = Instance(instance_id="acme__scm-1", repo="acme/scm", problem_statement="add subtracts",
                    base_commit=base.strip(), version="2.0", patch=SCM_GOLD, test_patch=SCM_TESTS,
                    FAIL_TO_PASS=["tests/test_add.py::test_add"], PASS_TO_PASS=["tests/test_calc.py::test_zero"],
                    setup=[SCM_SETUP], system_site_packages=True, test_cmd=PYTEST + " tests")  # fmt: skip
    return inst, repos


def test_untagged_checkouts_get_the_instance_version(tmp_path: Path) -> None:
    inst, repos = _scm_instance(tmp_path)
    cache = tmp_path / "cache"
    gold = evaluate([inst], {inst.instance_id: SCM_GOLD}, tmp_path / "ev", cache, repos, run_id="g")
    assert gold.resolved_ids == ["acme__scm-1"], gold.results["acme__scm-1"]
    empty = evaluate([inst], {inst.instance_id: ""}, tmp_path / "ev", cache, repos, run_id="e")
    assert empty.results["acme__scm-1"].pass_to_pass["success"] == ["tests/test_calc.py::test_zero"]
    assert empty.resolved_ids == []

    venv = ensure_venv(inst, cache, repos)
    assert venv.env()["SETUPTOOLS_SCM_PRETEND_VERSION"] == "2.0.0"
    repo = agent_repo(inst, tmp_path / "agent", cache, repos, venv=venv)
    run, report = run_tests(SubprocessSandbox(), PYTEST + " tests", repo, 120, venv.env())
    assert report.tests == {"tests/test_calc.py::test_zero": "passed"}, run.output  # the agent's tests run
    log = subprocess.run(["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True).stdout
    assert log.splitlines() == ["base"]  # one commit: nothing of the later fix
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    assert status == ""  # the generated version file is ignored, never part of a patch


# --- bad input: one message per instance, the batch goes on ------------------------------------


def test_validate_judges_every_instance_and_explains_the_bad_ones(
    tiny: tuple[Instance, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS
    from swebench.harness.log_parsers import MAP_REPO_TO_PARSER

    inst, cache = tiny
    scm, repos = _scm_instance(tmp_path)
    # a spec (SWE-bench's data, not our code) whose Python this machine does not have
    monkeypatch.setitem(MAP_REPO_VERSION_TO_SPECS, "acme/scm", {"9.9": {"python": "2.1", "test_cmd": "pytest"}})
    monkeypatch.setitem(MAP_REPO_TO_PARSER, "acme/scm", MAP_REPO_TO_PARSER["pytest-dev/pytest"])
    old_py = scm.model_copy(update={"instance_id": "acme__scm-2", "version": "9.9", "setup": None, "test_cmd": None})
    missing = scm.model_copy(update={"instance_id": "acme__gone-1", "repo": "acme/gone"})
    nospec = scm.model_copy(update={"instance_id": "acme__nospec-1", "repo": "acme/nospec", "setup": None, "test_cmd": None})
    badver = Instance(instance_id="pytest-dev__pytest-1", repo="pytest-dev/pytest", problem_statement="x",
                      base_commit=scm.base_commit, version="0.0.1", FAIL_TO_PASS=["t.py::t"])  # fmt: skip
    dataset = tmp_path / "d.jsonl"
    dataset.write_text("".join(json.dumps(i.to_json()) + "\n" for i in (inst, missing, nospec, badver, old_py, scm)))
    res = CliRunner().invoke(app, ["validate", "--dataset", str(dataset), "--repos-dir", str(repos),
                                   "--cache-dir", str(cache), "-o", str(tmp_path / "v"), "--run-id", "r"])  # fmt: skip
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    verdicts = {v["instance_id"]: v for v in map(json.loads, (tmp_path / "v/r/verdicts.jsonl").open())}
    assert {k for k, v in verdicts.items() if v["valid"]} == {"tiny-1", "acme__scm-1"}
    assert "no clone in" in verdicts["acme__gone-1"]["reason"]
    assert "SWE-bench has no specification for this repository" in verdicts["acme__nospec-1"]["reason"]
    assert "no specification for version '0.0.1'" in verdicts["pytest-dev__pytest-1"]["reason"]
    assert "Python 2.1 is not on this machine" in verdicts["acme__scm-2"]["reason"]
    valid = [json.loads(line)["instance_id"] for line in (tmp_path / "v/r/valid.jsonl").open()]
    assert sorted(valid) == ["acme__scm-1", "tiny-1"]
    assert "2 of 6 valid" in " ".join(res.output.split())


def test_a_missing_interpreter_is_named() -> None:
    from treefix.evals.swebench_specs import SpecError, find_python

    with pytest.raises(SpecError, match=r"Python 2\.1 is not on this machine"):
        find_python("2.1")
    assert find_python(f"{sys.version_info[0]}.{sys.version_info[1]}").is_file()


def test_a_missing_interpreter_fails_one_instance_with_a_clear_message(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from treefix.evals import swebench_specs

    inst = Instance(instance_id="psf__requests-1", repo="psf/requests", problem_statement="x",
                    base_commit="abc", version="2.3", FAIL_TO_PASS=["t.py::t"])  # fmt: skip
    monkeypatch.setattr(swebench_specs.Path, "home", lambda: tmp_path)  # no pyenv here
    monkeypatch.setenv("PATH", str(tmp_path))  # nor on PATH
    with pytest.raises(EnvError, match=r"psf__requests-1: Python 3\.9 is not on this machine"):
        ensure_venv(inst, tmp_path / "cache", tmp_path)


def test_an_invalid_reason_names_a_missing_module(tmp_path: Path) -> None:
    from treefix.evals.validate import _hint

    log = tmp_path / "before/logs/acme__x-1"
    log.mkdir(parents=True)
    (log / "test_output.txt").write_text("E   ModuleNotFoundError: No module named 'docutils.utils.roman'\n")
    assert _hint(tmp_path, "acme__x-1") == "an import fails in this environment: No module named 'docutils.utils.roman'"
    (log / "test_output.txt").write_text("1 passed\n")
    assert _hint(tmp_path, "acme__x-1") is None


# --- long test output (SWE-bench log parsers) ---------------------------------------------------


def test_a_long_django_run_is_parsed_whole(tmp_path: Path) -> None:
    """Django's verbose runner prints a line per test; a module of a few hundred tests passes the
    sandbox's head + tail capture, and tests in the cut middle counted as failed (a PASS_TO_PASS
    'failing' before the gold patch). Grading reads the whole output."""
    pytest.importorskip("swebench")
    from treefix.evals import swebench_specs
    from treefix.tools.sandbox import default_sandbox, whole_output

    n = 2000
    script = (
        "import sys\n"
        f"for i in range({n}):\n"
        "    sys.stderr.write(f'test_case_{i:04d} (app.tests.LongTests.test_case_{i:04d}) ... ok\\n')\n"
    )
    repo = make_repo(tmp_path / "repo", {"runtests.py": script})
    inst = Instance(instance_id="django__django-1", repo="django/django", version="4.2", problem_statement="x",
                    base_commit="HEAD", patch="", test_patch="")  # fmt: skip
    cmd = f"{sys.executable} runtests.py"
    box = default_sandbox()
    cut = swebench_specs.parse_log(inst, box.run(cmd, repo, 120).output)
    assert len(cut) < n  # the default capture keeps head and tail only
    whole = swebench_specs.parse_log(inst, whole_output(box).run(cmd, repo, 120).output)
    assert len(whole) == n and set(whole.values()) == {"PASSED"}
    assert box.head < whole_output(box).head  # the caller's sandbox is left as it was
    # the agent's side: the same runner read per test, while the output it keeps stays short
    run, report = run_tests(box, cmd, repo, 120)
    assert len(report.tests) == n and report.failed == 0
    assert "bytes cut" in run.output and len(run.output) < box.head + box.tail + 100
