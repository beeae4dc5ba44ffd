"""Run a test command and read per-test outcomes (pytest junit XML, else pytest's terminal output)."""

from __future__ import annotations

import re
import shlex
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path

from treefix.tools.sandbox import (
    HEAD_LIMIT,
    TAIL_LIMIT,
    RunResult,
    Sandbox,
    scratch_root,
    shorten,
    whole_output,
)

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"


@dataclass
class TestReport:
    __test__ = False  # not a pytest test class, despite the name

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    tests: dict[str, str] = field(default_factory=dict)  # node id -> passed|failed|error|skipped
    collected: bool = False  # False when pytest could not collect (import error, bad usage, ...)

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped

    @property
    def ok(self) -> bool:
        return self.collected and self.failed == 0 and self.errors == 0


def _counted(tests: dict[str, str], collected: bool) -> TestReport:
    values = list(tests.values())
    counts = (values.count(outcome) for outcome in (PASSED, FAILED, ERROR, SKIPPED))
    return TestReport(*counts, tests=tests, collected=collected)


# --- junit XML ---------------------------------------------------------------------------------


def _node_id(classname: str, name: str, file: str | None, root: Path | None = None) -> str:
    """pytest writes classname "pkg.test_x.TestK" + name "test_b"; rebuild "pkg/test_x.py::TestK::test_b".

    The classname comes from the node id; `file` is where the function is defined, which for a
    test inherited from a base class in another module is that module, not the test's own file."""
    if not classname:  # a collection error names the module itself
        return file or name.replace(".", "/") + ".py"
    parts = classname.split(".")
    module = file.removesuffix(".py").replace("/", ".") if file else None
    if module and (classname == module or classname.startswith(module + ".")):
        classes = parts[len(module.split(".")) :]
    else:
        split = None
        if root is not None:  # the longest dotted prefix that is a module file in the checkout
            split = next((k for k in range(len(parts), 0, -1)
                          if (root / ("/".join(parts[:k]) + ".py")).is_file()), None)  # fmt: skip
        if split is None:
            # Trailing capitalised parts are classes ("Test*").
            split = len(parts)
            while split > 1 and parts[split - 1][:1].isupper():
                split -= 1
        classes = parts[split:]
        file = "/".join(parts[:split]) + ".py"
    return "::".join([file, *classes, name])


_RANK = {PASSED: 0, SKIPPED: 1, FAILED: 2, ERROR: 3}


def _outcome(case: ET.Element) -> str:
    tags = {child.tag for child in case}
    if "failure" in tags:
        return FAILED
    if "error" in tags:
        return ERROR
    if "skipped" in tags:
        return SKIPPED
    return PASSED


def parse_junit(xml_text: str, checkout: Path | None = None) -> TestReport:
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return TestReport()
    tests: dict[str, str] = {}
    collected = root.tag in ("testsuites", "testsuite")
    for case in root.iter("testcase"):
        node = _node_id(case.get("classname", ""), case.get("name", ""), case.get("file"), checkout)
        outcome = _outcome(case)
        # Two cases that still map to one id must not let a pass hide a failure.
        if _RANK.get(outcome, 0) >= _RANK.get(tests.get(node, PASSED), 0):
            tests[node] = outcome
        if any(e.get("message") == "collection failure" for e in case.iter("error")):
            collected = False  # pytest stops the session on collection errors
    return _counted(tests, collected)


# --- terminal output (fallback) ----------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WORDS = {"PASSED": PASSED, "FAILED": FAILED, "ERROR": ERROR, "XPASS": PASSED, "XFAIL": SKIPPED}
_SHORT = re.compile(r"^(PASSED|FAILED|ERROR|XPASS|XFAIL) (.+?)(?: - .*)?$")  # -rA summary
_VERBOSE = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XPASS|XFAIL)\b")  # -v lines
_FINAL = re.compile(r"^=*\s*(?:\d+ \w+(?:, )?)+.* in [\d.]+s")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)\b")
_COUNT_FIELDS = {"passed": "passed", "xpassed": "passed", "failed": "failed", "error": "errors",
                 "errors": "errors", "skipped": "skipped", "xfailed": "skipped"}  # fmt: skip


def parse_pytest_output(text: str) -> TestReport:
    tests: dict[str, str] = {}
    final: str | None = None
    text = _ANSI.sub("", text)
    for line in text.splitlines():
        line = line.rstrip()
        if m := _SHORT.match(line):
            tests[m[2]] = _WORDS[m[1]]
        elif m := _VERBOSE.match(line):
            tests.setdefault(m[1], _WORDS.get(m[2], SKIPPED))
        elif _FINAL.match(line):
            final = line
    collected = bool(tests or final) and "during collection" not in text
    report = _counted(tests, collected)
    if final:  # the final line also counts tests the summary does not name (skips)
        counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
        for number, word in _COUNT.findall(final):
            counts[_COUNT_FIELDS[word]] += int(number)
        for key, value in counts.items():
            setattr(report, key, value)
    return report


# unittest's verbose lines ("test_x (pkg.mod.Class) ... ok"), as `python -m unittest -v` and test
# runners built on it (Django's runtests.py) print them; a docstring puts "doc ... ok" on the next line.
_UNIT_LINE = re.compile(r"(\w+) \(([\w.]+)\)(?: [^\n]*?)? \.\.\. ?(ok|FAIL|ERROR|skipped|expected failure|unexpected success)?")
_UNIT_NAME = re.compile(r"^(\w+) \(([\w.]+)\)$")
_UNIT_DOC = re.compile(r" \.\.\. (ok|FAIL|ERROR|skipped|expected failure|unexpected success)\b")
_UNIT_SUMMARY = re.compile(r"^(FAIL|ERROR): (\w+) \(([\w.]+)\)")
_UNIT_WORDS = {"ok": PASSED, "FAIL": FAILED, "ERROR": ERROR, "skipped": SKIPPED, "expected failure": PASSED,
               "unexpected success": FAILED}  # fmt: skip


def parse_unittest_output(text: str) -> TestReport:
    """Per-test outcomes from unittest's verbose output; ids are written as unittest prints them
    ("test_x (pkg.mod.Class)"), which is also how SWE-bench names Django's tests. The failure
    summary ("FAIL: test_x (...)") overrides a line whose status was cut by subtest output."""
    tests: dict[str, str] = {}
    pending: str | None = None
    for line in _ANSI.sub("", text).splitlines():
        line = line.rstrip()
        if m := _UNIT_SUMMARY.match(line):
            tests[f"{m[2]} ({m[3]})"] = _WORDS[m[1] + "ED" if m[1] == "FAIL" else m[1]]
            continue
        if pending and (m := _UNIT_DOC.search(line)) and not _UNIT_LINE.match(line):
            tests.setdefault(pending, _UNIT_WORDS[m[1]])
            pending = None
            continue
        pending = None
        if m := _UNIT_NAME.match(line):
            pending = f"{m[1]} ({m[2]})"
            continue
        for m in _UNIT_LINE.finditer(line):
            if m[3]:
                tests.setdefault(f"{m[1]} ({m[2]})", _UNIT_WORDS[m[3]])
    ran = re.search(r"(?m)^Ran \d+ tests? in ", text) is not None
    return _counted(tests, bool(tests) or ran)


# --- running -----------------------------------------------------------------------------------

_SEPARATOR = re.compile(r"(&&|\|\||;|\||\n)")
_PYTEST = {"pytest", "py.test"}


def _invokes_pytest(segment: str) -> bool:
    try:
        words = shlex.split(segment)
    except ValueError:
        return False
    while words and re.match(r"^\w+=", words[0]):  # FOO=bar pytest
        words.pop(0)
    for i, word in enumerate(words):
        if Path(word).name in _PYTEST and (i == 0 or words[i - 1] in ("-m", "run", "exec")):
            return True
    return False


_CONFIGS = {"pytest.ini": None, ".pytest.ini": None, "pyproject.toml": "[tool.pytest.ini_options]",
            "tox.ini": "[pytest]", "setup.cfg": "[tool:pytest]"}  # fmt: skip


def has_pytest_config(folder: Path) -> bool:
    for name, section in _CONFIGS.items():
        f = folder / name
        if f.is_file() and (section is None or section in f.read_text(errors="replace")):
            return True
    return False


def isolation_options(root: Path) -> str:
    """pytest options that make `root` the rootdir whatever folder holds it: without them a
    pytest.ini or pyproject.toml above the checkout becomes the rootdir (every id gets a prefix)
    and its addopts apply. A foreign config is shut out only when `root` has none of its own."""
    root = Path(root).resolve()
    opts = f" --rootdir={shlex.quote(str(root))}"
    if not has_pytest_config(root) and any(has_pytest_config(p) for p in root.parents):
        opts += " -c /dev/null"
    return opts


def _insert(test_cmd: str, extra: str) -> str | None:
    parts = _SEPARATOR.split(test_cmd)
    for i in range(0, len(parts), 2):  # even indexes are commands, odd ones separators
        if _invokes_pytest(parts[i]):
            stripped = parts[i].rstrip()
            parts[i] = stripped + extra + parts[i][len(stripped) :]
            return "".join(parts)
    return None


def isolate_pytest(test_cmd: str, root: Path) -> str:
    """`test_cmd` with `isolation_options` on its first pytest invocation (unless it sets its own)."""
    if "--rootdir" in test_cmd:
        return test_cmd
    return _insert(test_cmd, isolation_options(root)) or test_cmd


def pytest_command(test_cmd: str, junit_path: Path, root: Path | None = None) -> str:
    """Add junit options to the first pytest invocation of a shell command, else return it as is.

    The options go at the end of that simple command, so `cd x && pytest -q | tee log` still works.
    """
    extra = f" --junitxml={shlex.quote(str(junit_path))} -o junit_family=xunit1"
    if root is not None and "--rootdir" not in test_cmd:
        extra += isolation_options(root)
    return _insert(test_cmd, extra) or test_cmd


def run_tests(
    sandbox: Sandbox, test_cmd: str, cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> tuple[RunResult, TestReport]:
    cwd = Path(cwd).resolve()
    junit_dir = Path(tempfile.mkdtemp(prefix="junit-", dir=scratch_root()))  # outside cwd: no diff noise
    try:
        junit = junit_dir / "report.xml"
        cmd = pytest_command(test_cmd, junit, cwd)
        # Without junit the statuses come from the output, which must then be read whole
        result = (sandbox if cmd != test_cmd else whole_output(sandbox)).run(cmd, cwd, timeout, env)
        report = parse_junit(junit.read_text(errors="replace"), Path(cwd)) if junit.exists() else TestReport()
    finally:
        shutil.rmtree(junit_dir, ignore_errors=True)
    if not report.tests and not report.collected:  # no junit file, or a broken one
        report = parse_pytest_output(result.output)
    if cmd == test_cmd:  # not pytest: maybe unittest's verbose output
        if (unit := parse_unittest_output(result.output)).tests:
            report = unit
        # what callers show (and keep) is head and tail, as for any other command
        head, tail = getattr(sandbox, "head", HEAD_LIMIT), getattr(sandbox, "tail", TAIL_LIMIT)
        if len(result.output) > head + tail:
            result = replace(result, output=shorten(result.output, head, tail))
    if cmd == test_cmd and not report.tests and not report.total:
        # Not pytest and nothing to read: the exit code is the only verdict.
        ok = result.exit_code == 0
        report = TestReport(int(ok), int(not ok), 0, 0, {test_cmd: PASSED if ok else FAILED}, True)
    return result, report
