"""SWE-bench's own specs, directives, log parsers and rules, as the local harness uses them."""

from __future__ import annotations

from pathlib import Path

from treefix.evals import swebench_specs
from treefix.evals.dataset import Instance

SYMPY_TESTS = """diff --git a/sympy/core/tests/test_numbers.py b/sympy/core/tests/test_numbers.py
--- a/sympy/core/tests/test_numbers.py
+++ b/sympy/core/tests/test_numbers.py
@@ -1 +1 @@
-x
+y
"""
SYMPY_LOG = """============================= test process starts ==============================
sympy/core/tests/test_numbers.py[3]
test_integers ok
test_mod F
test_float E

________________________________________________________________________________
__________________ sympy/core/tests/test_numbers.py:test_mod ___________________
AssertionError
"""
DJANGO_LOG = """test_add (admin_views.tests.AdminViewTests) ... ok
test_delete (admin_views.tests.AdminViewTests) ... FAIL
test_skip (admin_views.tests.AdminViewTests) ... skipped 'no db'
"""


def _inst(repo: str, version: str, test_patch: str, f2p: list[str], p2p: list[str]) -> Instance:
    return Instance(instance_id=f"{repo.replace('/', '__')}-1", repo=repo, problem_statement="x",
                    base_commit="abc", version=version, test_patch=test_patch,
                    FAIL_TO_PASS=f2p, PASS_TO_PASS=p2p)  # fmt: skip


def test_sympy_runs_its_own_runner_and_is_graded_by_its_parser() -> None:
    inst = _inst("sympy/sympy", "1.1", SYMPY_TESTS, ["test_mod"], ["test_integers"])
    spec = swebench_specs.spec_for(inst)
    assert spec.python == "3.9"
    assert spec.test_command(inst).endswith("bin/test -C --verbose sympy/core/tests/test_numbers.py")
    status = swebench_specs.parse_log(inst, SYMPY_LOG)
    assert status == {"sympy/core/tests/test_numbers.py:test_mod": "FAILED", "test_integers": "PASSED",
                      "test_mod": "FAILED", "test_float": "ERROR"}  # fmt: skip
    report, resolved = swebench_specs.grade_status_map(inst, status)
    assert not resolved and report["FAIL_TO_PASS"]["failure"] == ["test_mod"]
    fixed = SYMPY_LOG.replace("test_mod F", "test_mod ok")
    fixed = fixed[: fixed.index("_____")]
    assert swebench_specs.grade_status_map(inst, swebench_specs.parse_log(inst, fixed))[1]


def test_django_directives_and_parser() -> None:
    patch = SYMPY_TESTS.replace("sympy/core/tests/test_numbers.py", "tests/admin_views/tests.py")
    inst = _inst("django/django", "3.0", patch, ["test_delete (admin_views.tests.AdminViewTests)"],
                 ["test_add (admin_views.tests.AdminViewTests)"])  # fmt: skip
    cmd = swebench_specs.spec_for(inst).test_command(inst)
    assert "runtests.py" in cmd and cmd.endswith(" admin_views.tests")
    report, resolved = swebench_specs.grade_status_map(inst, swebench_specs.parse_log(inst, DJANGO_LOG))
    assert not resolved and report["PASS_TO_PASS"]["success"] == ["test_add (admin_views.tests.AdminViewTests)"]
    ok = DJANGO_LOG.replace("... FAIL", "... ok")
    assert swebench_specs.grade_status_map(inst, swebench_specs.parse_log(inst, ok))[1]


def test_environment_yml_and_requirements_are_read_from_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "ci" / "requirements").mkdir(parents=True)
    (tmp_path / "ci/requirements/environment.yml").write_text(
        "name: x\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.10\n  - numpy>=1.21\n"
        "  - pandas\n  - pip\n  - pip:\n      - pytest-timeout==2.1\nother: 1\n"
    )
    assert swebench_specs.environment_yml_packages("pydata/xarray", tmp_path) == [
        "numpy", "pandas", "pytest-timeout==2.1"]  # fmt: skip
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements/dev.txt").write_text("-r tests.txt\n-e .\n# comment\ntypes-pkg_resources==0.1.3\n")
    (tmp_path / "requirements/tests.txt").write_text("pytest\n")
    assert swebench_specs.requirements("pallets/flask", tmp_path).split() == ["pytest", "types-setuptools"]


def test_system_steps_are_left_out_and_repository_edits_kept() -> None:
    inst = _inst("matplotlib/matplotlib", "3.5", "", ["t"], [])
    spec = swebench_specs.spec_for(inst)
    assert spec.repo_steps() == []
    assert any(s.startswith("apt-get") for s in spec.skipped_steps())
    sphinx = swebench_specs.spec_for(_inst("sphinx-doc/sphinx", "3.5", "", ["t"], []))
    assert "sed -i 's/pytest/pytest -rA/' tox.ini" in sphinx.repo_steps()


def test_eval_commands_exports_reach_the_tests_with_a_locale_this_machine_has() -> None:
    django30 = swebench_specs.spec_for(_inst("django/django", "3.0", "", ["t"], []))
    env = django30.test_env()
    assert env["LANGUAGE"] == "en_US:en"
    # en_US.UTF-8 only exists where locale-gen ran as root; UTF-8 is what the tests need
    assert env["LANG"] == env["LC_ALL"] == ("en_US.UTF-8" if swebench_specs._has_locale("en_US.UTF-8") else "C.UTF-8")
    assert swebench_specs.spec_for(_inst("django/django", "4.0", "", ["t"], [])).test_env() == {}


def test_agent_runs_swebench_runner_on_the_files_that_exist_at_base(tmp_path: Path) -> None:
    """The agent's test command is SWE-bench's own runner on the test modules its directives name,
    minus the ones the hidden test patch would add (their names would show the hidden tests)."""
    from treefix.evals.environment import git

    clone = tmp_path / "django__django"
    (clone / "tests/auth_tests").mkdir(parents=True)
    (clone / "tests/auth_tests/test_validators.py").write_text("")
    git(clone, "init", "-q")
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "base")
    sha = git(clone, "rev-parse", "HEAD").stdout.strip()
    patch = "".join(f"diff --git a/{p} b/{p}\n--- a/{p}\n+++ b/{p}\n@@ -0,0 +1 @@\n+x\n"
                    for p in ("tests/auth_tests/test_validators.py", "tests/new_app/tests.py"))  # fmt: skip
    inst = _inst("django/django", "3.0", patch, ["t"], []).model_copy(update={"base_commit": sha})
    cmd = swebench_specs.agent_test_command(inst, tmp_path)
    assert cmd is not None and cmd.startswith("./tests/runtests.py ") and cmd.endswith(" auth_tests.test_validators")
    assert "new_app" not in cmd
    visible = swebench_specs.agent_test_command(inst, tmp_path, visible=True)
    assert visible is not None and visible.endswith(" auth_tests.test_validators new_app.tests")
    own = inst.model_copy(update={"test_cmd": "make test"})  # a task set with its own command
    assert swebench_specs.agent_test_command(own, tmp_path) is None


def test_tox_current_env_runs_the_venv_interpreter(tmp_path: Path) -> None:
    """tox-current-env links `.tox/NAME/bin/python` to the interpreter tox runs on; through that
    link a venv's packages are lost (SWE-bench's conda env has a real binary there). The runner
    gets an interpreter that is the venv's own, and tox keeps one that exists."""
    import os
    import subprocess
    import sys

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3.*")) / "site-packages"
    (site / "only_in_venv.py").write_text("")
    probe = ["-c", "import only_in_venv"]
    linked = tmp_path / "linked" / ".tox/py39/bin"
    linked.mkdir(parents=True)
    os.symlink(venv / "bin/python", linked / "python")  # what tox-current-env makes
    assert subprocess.run([str(linked / "python"), *probe], capture_output=True).returncode != 0

    repo = tmp_path / "repo"
    swebench_specs.prepare_runner("tox --current-env -epy39 -v -- tests/test_x.py", repo, venv / "bin/python")
    assert subprocess.run([str(repo / ".tox/py39/bin/python"), *probe], capture_output=True).returncode == 0
    swebench_specs.prepare_runner("pytest -rA tests/test_x.py", tmp_path / "other", venv / "bin/python")
    assert not (tmp_path / "other").exists()
