"""Spectrum-based fault localisation: per-test line coverage of the task's tests, ranked by Ochiai.

The task's test command runs once under coverage.py in a clean worktree at base. A small pytest
plugin (covplugin.py), loaded through PYTEST_PLUGINS from a scratch folder that also holds a copy
of the coverage package, records each test in its own coverage context, so the task's environment
needs neither treefix nor coverage installed. A copy, not a link: the sandbox hides homes and
/tmp, where treefix's own environment may live. Outcomes come from the same run's JUnit report.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shlex
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import coverage

from treefix.agent.policies.base import SearchContext
from treefix.agent.policies.operators import Clues
from treefix.tools.sandbox import scratch_root
from treefix.tools.testing import PASSED, run_tests

PLUGIN_MODULE = "treefix_covplugin"
TEST_PATH = re.compile(r"(^|/)(tests?|testing)/|(^|/)(test_[^/]*|[^/]*_test|conftest)\.py$")
COVERAGE_SLOWDOWN = 3.0  # tracing every line makes a test run this much slower, at worst


@dataclass
class Spectrum:
    """Which tests ran which lines, and how each test ended, at the task's base."""

    tests: list[str] = field(default_factory=list)  # pytest node ids
    outcomes: dict[str, str] = field(default_factory=dict)  # node id -> passed|failed|error|skipped
    lines: dict[str, dict[int, list[int]]] = field(default_factory=dict)  # path -> line -> test indexes
    error: str = ""  # why no spectrum could be gathered
    # Lines run at import time (module level), credited to the tests that use their module.
    module_lines: dict[str, list[int]] = field(default_factory=dict)
    # Failing test -> its traceback frames inside the project ([path, line], outermost first).
    frames: dict[str, list[list]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)  # failing test -> its exception message
    seconds: float = 0.0  # how long the run took

    @property
    def failing(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o not in (PASSED, "skipped")}

    @property
    def baseline(self) -> float:
        """Pass fraction at base, counted the way ExecResult.score counts it."""
        ran = [o for o in self.outcomes.values() if o != "skipped"]
        return sum(o == PASSED for o in ran) / len(ran) if ran else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lines"] = {p: {str(k): v for k, v in ls.items()} for p, ls in self.lines.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Spectrum:
        lines = {p: {int(k): v for k, v in ls.items()} for p, ls in d.get("lines", {}).items()}
        return cls(
            d.get("tests", []), d.get("outcomes", {}), lines, d.get("error", ""), d.get("module_lines", {}),
            d.get("frames", {}), d.get("messages", {}), d.get("seconds", 0.0),
        )  # fmt: skip


@dataclass(frozen=True)
class Site:
    path: str
    line: int
    score: float  # Ochiai suspiciousness in [0, 1]


def is_test_file(path: str) -> bool:
    return bool(TEST_PATH.search(path))


MODULE_LEVEL = 0.9  # an import-time line ties with the function lines every test runs: those first
FRAME_LINE = 1.0  # weight of a line in a failing test's innermost project frame


def frame_weights(spectrum: Spectrum, failing: set[str] | None = None) -> dict[tuple[str, int], float]:
    """(path, line) -> how strongly the failing tests' tracebacks point there, in [0, 1]: the
    innermost frame in the project's (non-test) code counts 1, the one that called it 1/2, ..."""
    failing = spectrum.failing if failing is None else failing
    tests = [t for t in failing if spectrum.frames.get(t)]
    weights: dict[tuple[str, int], float] = {}
    for t in tests:
        own = [(p, ln) for p, ln in spectrum.frames[t] if not is_test_file(p)]
        for depth, key in enumerate(reversed(own)):
            weights[key] = weights.get(key, 0.0) + 0.5**depth / len(failing)
    return weights


def assertion_values(spectrum: Spectrum, failing: set[str] | None = None) -> tuple[int, ...]:
    """(got, expected) integer pairs from the failing tests' assertion messages, flattened:
    pytest's `assert 3 == 4` and unittest's `3 != 4` put the actual value first by convention."""
    failing = spectrum.failing if failing is None else failing
    pairs: list[int] = []
    for t in sorted(failing):
        m = re.search(r"assert (-?\d+) == (-?\d+)\b|^(-?\d+) != (-?\d+)$", spectrum.messages.get(t, ""), re.M)
        if m:
            got, expected = (int(g) for g in m.groups() if g is not None)
            pairs += [got, expected]
    return tuple(pairs[:8])


QUOTED = re.compile(r"'((?:[^'\\\n]|\\.){1,60})'|\"((?:[^\"\\\n]|\\.){1,60})\"")
COMPARED = re.compile(r"^\s*(?:assert\s+)?(?P<got>.+?) (?:!=|==) (?P<expected>.+)$", re.M)


def failure_clues(spectrum: Spectrum, failing: set[str] | None = None) -> Clues:
    """Text the failing assertions expected and did not get (quoted strings on the expected side of
    `got != expected` or `assert got == expected` that the got side lacks), the text and None only
    the got side shows, and whether a failing test hit a None where a value was needed."""
    failing = spectrum.failing if failing is None else failing
    texts: list[str] = []
    wrong: list[str] = []
    none_error = got_none = False
    for t in sorted(failing):
        message = spectrum.messages.get(t, "")
        none_error = none_error or "NoneType" in message
        for m in COMPARED.finditer(message):
            if "..." in m.group(0):
                continue  # pytest's shortened summary: the detail lines say the same in full
            got = [a or b for a, b in QUOTED.findall(m.group("got"))]
            expected = [a or b for a, b in QUOTED.findall(m.group("expected"))]
            texts += [e for e in expected if e not in got]
            wrong += [g for g in got if g not in expected]
            none = re.compile(r"\bNone\b")
            got_none = got_none or bool(none.search(m.group("got")) and not none.search(m.group("expected")))
    return Clues(tuple(dict.fromkeys(texts))[:4], none_error, tuple(dict.fromkeys(wrong))[:8], got_none)


def ochiai(spectrum: Spectrum, failing: set[str] | None = None) -> list[Site]:
    """Lines of non-test files, most suspicious first. `failing` overrides which tests count as
    failing (a repair re-ranks with the tests its parent still fails); ties keep file order.
    A line the failing tests' tracebacks pass through scores higher (frame_weights)."""
    failing = spectrum.failing if failing is None else failing
    fail_idx = {i for i, t in enumerate(spectrum.tests) if t in failing}
    known = {i for i, t in enumerate(spectrum.tests) if spectrum.outcomes.get(t) not in (None, "skipped")}
    total_failed = len(fail_idx)
    if not total_failed:
        return []
    frames = frame_weights(spectrum, failing)
    sites = []
    for path, lines in spectrum.lines.items():
        if is_test_file(path):
            continue
        module = set(spectrum.module_lines.get(path, ()))
        for line, tests in lines.items():
            ran = set(tests) & known
            ef = len(ran & fail_idx)
            if ef:
                ep = len(ran) - ef
                score = ef / math.sqrt(total_failed * (ef + ep))
                score *= (MODULE_LEVEL if line in module else 1.0) * (1 + FRAME_LINE * frames.get((path, line), 0.0))
                sites.append(Site(path, line, score))
    return sorted(sites, key=lambda s: -s.score)


# --- gathering the spectrum -------------------------------------------------------------------


def plugin_dir() -> Path:
    """A scratch folder holding the plugin and a copy of coverage, importable by any Python."""
    source = Path(__file__).with_name("covplugin.py")
    package = Path(coverage.__file__).parent
    tag = hashlib.sha256(source.read_bytes() + f"{package}{coverage.__version__}".encode()).hexdigest()[:12]
    d = scratch_root() / f"covplugin-{tag}"
    if not (d / f"{PLUGIN_MODULE}.py").exists():
        tmp = d.with_name(d.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        shutil.copytree(package, tmp / "coverage", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(source, tmp / f"{PLUGIN_MODULE}.py")
        try:
            tmp.rename(d)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return d


def coverage_env(base: dict[str, str], data_file: Path) -> dict[str, str]:
    env = dict(base)
    path = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plugin_dir()), path) if p)
    plugins = env.get("PYTEST_PLUGINS", os.environ.get("PYTEST_PLUGINS", ""))
    env["PYTEST_PLUGINS"] = ",".join(p for p in (plugins, PLUGIN_MODULE) if p)
    env["TREEFIX_COVERAGE_FILE"] = str(data_file)
    return env


_ASSIGNED = re.compile(r"(?<![\w-])(PYTHONPATH|PYTEST_PLUGINS)=")


def keep_plugin(test_cmd: str) -> str:
    """The test command with our plugin kept in any PYTHONPATH / PYTEST_PLUGINS it sets itself
    (`PYTHONPATH=src python -m pytest`, usual for src layouts): its own value would replace the
    environment's, which carries the coverage plugin. Ours goes first; the shell joins the rest."""

    def add(m: re.Match[str]) -> str:
        mine = shlex.quote(str(plugin_dir()) + os.pathsep) if m.group(1) == "PYTHONPATH" else PLUGIN_MODULE + ","
        return m.group(0) + mine

    return _ASSIGNED.sub(add, test_cmd)


def gather(ctx: SearchContext) -> Spectrum:
    """Run the task's tests once at base under coverage. Charged as one test run."""
    if not ctx.task.test_cmd:
        return Spectrum(error="no test command: nothing to localise with")
    ctx.budget.charge_test_run()
    out = Path(scratch_root()) / f"coverage-{os.getpid()}-{id(ctx):x}"
    out.mkdir(exist_ok=True)
    data_file = out / "data"
    try:
        with ctx.workspace.worktree() as wt:
            timeout = min(ctx.task.test_timeout * COVERAGE_SLOWDOWN, ctx.budget.time_left())
            run, report = run_tests(
                ctx.sandbox, keep_plugin(ctx.task.test_cmd), wt, timeout, coverage_env(ctx.task.env, data_file)
            )
            spectrum = read_spectrum(data_file, wt, report.tests)
            spectrum.seconds = round(run.duration, 3)
        ctx.store.event(
            "test",
            node="",
            purpose="coverage",
            passed=report.passed,
            failed=report.failed,
            exit=run.exit_code,
            seconds=round(run.duration, 3),  # the base's test time: what an automatic timeout scales
        )
        if not spectrum.lines and not spectrum.error:
            spectrum.error = (
                "the test run recorded no coverage per test: the offline policy needs a pytest run "
                f"(exit code {run.exit_code}; output: {_last_line(run.output)})"
            )
        return spectrum
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _last_line(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "none"


def read_spectrum(data_file: Path, root: Path, outcomes: dict[str, str]) -> Spectrum:
    if not data_file.exists():
        return Spectrum(outcomes=outcomes)
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    tests = sorted(c for c in data.measured_contexts() if c)
    index = {t: i for i, t in enumerate(tests)}
    lines: dict[str, dict[int, list[int]]] = {}
    module_lines: dict[str, list[int]] = {}
    base = root.resolve()
    for f in data.measured_files():
        try:
            rel = Path(f).resolve().relative_to(base).as_posix()
        except ValueError:
            continue
        by_line = {
            ln: sorted(index[c] for c in cs if c in index) for ln, cs in data.contexts_by_lineno(f).items()
        }
        kept = {ln: ts for ln, ts in by_line.items() if ts}
        # Import-time lines ran in no test's context, yet every test that runs the module's code
        # needs them (`byte2int = operator.itemgetter(1)`): credit them to those tests.
        users = sorted({t for ts in kept.values() for t in ts})
        imported = [ln for ln, ts in by_line.items() if not ts]
        if users and imported:
            kept.update({ln: users for ln in imported})
            module_lines[rel] = sorted(imported)
        if kept:
            lines[rel] = kept
    spectrum = Spectrum(tests, align(outcomes, tests), lines, module_lines=module_lines)
    failures = Path(str(data_file) + ".failures.json")
    if failures.exists():
        try:
            found = json.loads(failures.read_text())
        except ValueError:
            found = {}
        keys = align({k: k for k in found}, tests)  # the same node ids as the coverage contexts
        for t, k in keys.items():
            spectrum.frames[t] = found[k].get("frames", [])
            spectrum.messages[t] = found[k].get("message", "")
    return spectrum


def align(outcomes: dict[str, str], tests: list[str]) -> dict[str, str]:
    """Outcomes keyed by the coverage contexts' node ids. JUnit ids are rebuilt from class and
    file names and may differ in their path part (rootdir, xunit2): match those by their tail."""
    out = {t: outcomes[t] for t in tests if t in outcomes}
    by_tail: dict[str, list[str]] = {}
    for key in outcomes:
        by_tail.setdefault(key.split("::", 1)[-1], []).append(key)
    for t in tests:
        if t not in out and len(keys := by_tail.get(t.split("::", 1)[-1], [])) == 1:
            out[t] = outcomes[keys[0]]
    return out
