import shlex
import sys
from pathlib import Path

import pytest

from treefix.tools.sandbox import SubprocessSandbox, default_sandbox
from treefix.tools.testing import TestReport, parse_junit, parse_pytest_output, pytest_command, run_tests

XUNIT1 = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest"
errors="1" failures="1" skipped="1" tests="6">
<testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py" line="1" time="0.000" />
<testcase classname="tests.test_a" name="test_bad" file="tests/test_a.py" line="2">
  <failure message="assert 0">E   assert 0</failure></testcase>
<testcase classname="tests.test_a" name="test_skip" file="tests/test_a.py" line="3">
  <skipped type="pytest.skip" message="unconditional skip">skip</skipped></testcase>
<testcase classname="tests.test_a" name="test_err" file="tests/test_a.py" line="7">
  <error message="failed on setup with &quot;RuntimeError&quot;">E   RuntimeError</error></testcase>
<testcase classname="tests.test_a.TestK" name="test_b" file="tests/test_a.py" line="9" />
<testcase classname="tests.test_a.TestK" name="test_p[a.b]" file="tests/test_a.py" line="10" />
</testsuite></testsuites>"""

EXPECTED = {
    "tests/test_a.py::test_ok": "passed",
    "tests/test_a.py::test_bad": "failed",
    "tests/test_a.py::test_skip": "skipped",
    "tests/test_a.py::test_err": "error",
    "tests/test_a.py::TestK::test_b": "passed",
    "tests/test_a.py::TestK::test_p[a.b]": "passed",
}

PYTEST_RA_OUTPUT = """\
tests/test_a.py:3: AssertionError
=========================== short test summary info ============================
PASSED tests/test_a.py::test_ok
PASSED tests/test_a.py::TestK::test_b
PASSED tests/test_a.py::TestK::test_p[a.b]
SKIPPED [1] tests/test_a.py:4: unconditional skip
ERROR tests/test_a.py::test_err - RuntimeError
FAILED tests/test_a.py::test_bad - assert 0
\x1b[31m====== 1 failed, 3 passed, 1 skipped, 1 error in 0.83s ======\x1b[0m
"""


def test_parse_junit_outcomes_and_class_tests():
    report = parse_junit(XUNIT1)
    assert report.tests == EXPECTED
    assert (report.passed, report.failed, report.errors, report.skipped) == (3, 1, 1, 1)
    assert report.collected and not report.ok


def test_parse_junit_without_file_attribute():
    xml = """<testsuites><testsuite>
    <testcase classname="pkg.tests.test_m.TestK.TestInner" name="test_b" />
    <testcase classname="pkg.tests.test_m" name="test_x"><failure message="no" /></testcase>
    </testsuite></testsuites>"""
    assert parse_junit(xml).tests == {
        "pkg/tests/test_m.py::TestK::TestInner::test_b": "passed",
        "pkg/tests/test_m.py::test_x": "failed",
    }


def test_parse_junit_collection_error():
    xml = """<testsuites><testsuite errors="1"><testcase classname="" name="tests.test_broken">
    <error message="collection failure">ModuleNotFoundError</error></testcase></testsuite></testsuites>"""
    report = parse_junit(xml)
    assert report.tests == {"tests/test_broken.py": "error"}
    assert report.errors == 1 and not report.collected


@pytest.mark.parametrize("text", ["", "not xml", "<testsuites><testsuite>", "<html/>"])
def test_parse_junit_malformed(text):
    assert parse_junit(text) == TestReport()


def test_parse_pytest_output_short_summary():
    report = parse_pytest_output(PYTEST_RA_OUTPUT)
    assert report.tests == {k: v for k, v in EXPECTED.items() if k != "tests/test_a.py::test_skip"}
    assert (report.passed, report.failed, report.errors, report.skipped) == (3, 1, 1, 1)
    assert report.collected


def test_parse_pytest_output_verbose_and_collection_error():
    verbose = "tests/t.py::test_a PASSED   [ 50%]\ntests/t.py::test_b FAILED   [100%]\n"
    assert parse_pytest_output(verbose).tests == {
        "tests/t.py::test_a": "passed",
        "tests/t.py::test_b": "failed",
    }
    broken = "ERROR tests/test_broken.py\n!!! Interrupted: 1 error during collection !!!\n1 error in 0.87s\n"
    report = parse_pytest_output(broken)
    assert report.tests == {"tests/test_broken.py": "error"} and not report.collected
    assert parse_pytest_output("make: *** No rule to make target\n") == TestReport()


J = Path("/tmp/j dir/r.xml")
OPTS = f"--junitxml={shlex.quote(str(J))} -o junit_family=xunit1"


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("pytest", f"pytest {OPTS}"),
        ("python -m pytest -x tests/", f"python -m pytest -x tests/ {OPTS}"),
        ("FOO=1 py.test -k 'a or b'", f"FOO=1 py.test -k 'a or b' {OPTS}"),
        ("cd sub && .venv/bin/pytest -q | tee log", f"cd sub && .venv/bin/pytest -q {OPTS} | tee log"),
        ("uv run pytest", f"uv run pytest {OPTS}"),
        ("pip install pytest && make test", "pip install pytest && make test"),
        ("tox -e py311", "tox -e py311"),
    ],
)
def test_pytest_command(cmd, expected):
    assert pytest_command(cmd, J) == expected


FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # third-party plugins cost seconds per run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_calc.py").write_text(
        "def test_good():\n    assert 1 + 1 == 2\n\n\nclass TestCalc:\n    def test_bad(self):\n        assert 1 + 1 == 3\n"
    )
    return tmp_path


def test_run_tests_real_pytest(project):
    result, report = run_tests(
        default_sandbox(), f"{sys.executable} -m pytest -q", project, timeout=60, env=FAST
    )
    assert result.exit_code == 1
    assert report.tests == {"test_calc.py::test_good": "passed", "test_calc.py::TestCalc::test_bad": "failed"}
    assert (report.passed, report.failed, report.collected) == (1, 1, True)
    assert not list(project.glob("*.xml"))  # the junit file lives outside the project


def test_run_tests_falls_back_to_output(project):
    # `sh -c` hides pytest from pytest_command, so only the terminal output is there to read.
    cmd = f"sh -c '{sys.executable} -m pytest -rA -p no:cacheprovider'"
    _, report = run_tests(SubprocessSandbox(), cmd, project, timeout=60, env=FAST)
    assert report.tests == {"test_calc.py::test_good": "passed", "test_calc.py::TestCalc::test_bad": "failed"}


def test_run_tests_collection_error(project):
    (project / "test_broken.py").write_text("import no_such_module_xyz\n")
    result, report = run_tests(
        SubprocessSandbox(), f"{sys.executable} -m pytest", project, timeout=60, env=FAST
    )
    assert result.exit_code == 2 and not report.collected and not report.ok


@pytest.mark.parametrize(("cmd", "outcome"), [("true", "passed"), ("echo nope; exit 4", "failed")])
def test_run_tests_plain_command_uses_exit_code(tmp_path, cmd, outcome):
    _, report = run_tests(SubprocessSandbox(), cmd, tmp_path, timeout=10)
    assert report.tests == {cmd: outcome} and report.total == 1 and report.collected


def test_run_tests_reads_unittest_verbose_output(tmp_path):
    """A runner built on unittest (`python -m unittest -v`, Django's runtests.py) is read per test,
    with ids as unittest prints them: docstrings, skips and a subtest failure included."""
    pkg = tmp_path / "tests"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "test_m.py").write_text(
        "import unittest\n\n"
        "class K(unittest.TestCase):\n"
        "    def test_ok(self):\n        pass\n\n"
        "    def test_doc(self):\n        '''Has a docstring.'''\n\n"
        "    def test_bad(self):\n        self.assertEqual(1, 2)\n\n"
        "    def test_err(self):\n        raise RuntimeError('x')\n\n"
        "    @unittest.skip('no')\n    def test_skip(self):\n        pass\n\n"
        "    def test_sub(self):\n"
        "        for i in (1, 2):\n"
        "            with self.subTest(i=i):\n                self.assertEqual(i, 1)\n"
    )
    cmd = f"{shlex.quote(sys.executable)} -m unittest -v tests.test_m"
    _, report = run_tests(SubprocessSandbox(), cmd, tmp_path, 60)
    names = {k.split(" ")[0]: v for k, v in report.tests.items()}
    assert names == {"test_ok": "passed", "test_doc": "passed", "test_bad": "failed", "test_err": "error",
                     "test_skip": "skipped", "test_sub": "failed"}  # fmt: skip
    assert all(k.endswith(")") and "tests.test_m.K" in k for k in report.tests)
    assert report.collected and not report.ok and (report.passed, report.failed, report.errors) == (2, 2, 1)
