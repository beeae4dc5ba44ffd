"""SWE-bench's own per-repository/per-version specifications, log parsers and grading rules.

Everything here comes from the pinned `swebench` package (the `swebench` extra): the Python
version, pip packages, pre-install and install steps, the test command, the log parser and the
FAIL_TO_PASS / PASS_TO_PASS rules. What this module adds is the translation from SWE-bench's
Docker/conda recipe to a local venv: the interpreter is found on this machine, conda package lists
are installed with pip, and steps that need root (apt-get, downloads) are left out and logged.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from treefix.evals.dataset import Instance

# Steps of SWE-bench's Dockerfiles that install system packages or download files: they need root
# and the network, which a local venv build has neither of.
_SYSTEM_STEP = re.compile(r"^\s*(apt-get|apt |wget|curl|[A-Z_]+=|mkdir -p \"\$QHULL|tar -xvzf)")


class SpecError(RuntimeError):
    """The instance cannot be graded with SWE-bench's specs; the message says why."""


@cache
def _swebench() -> SimpleNamespace | None:
    try:
        from swebench.harness import constants, grading
        from swebench.harness.log_parsers import MAP_REPO_TO_PARSER
        from swebench.harness.test_spec.python import get_test_directives
    except ImportError:
        return None
    return SimpleNamespace(constants=constants, grading=grading, parsers=MAP_REPO_TO_PARSER,
                           directives=get_test_directives)  # fmt: skip


def available() -> bool:
    return _swebench() is not None


def applies(inst: Instance) -> bool:
    """A repository clone without our own test command: SWE-bench's recipe decides everything."""
    return inst.source is None and not inst.test_cmd and not inst.setup


@dataclass(frozen=True)
class SweSpec:
    repo: str
    version: str
    raw: dict[str, Any]

    @property
    def python(self) -> str:
        return str(self.raw.get("python", "3.9"))

    @property
    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def repo_steps(self) -> list[str]:
        """Pre-install steps that edit the repository (SWE-bench runs them in the testbed, so the
        tests run against their result); system steps are left out."""
        return [s for s in self.raw.get("pre_install", []) if not _SYSTEM_STEP.match(s)]

    def skipped_steps(self) -> list[str]:
        return [s for s in self.raw.get("pre_install", []) if _SYSTEM_STEP.match(s)]

    def setup_steps(self, src: Path, scratch: Path) -> list[str]:
        """Shell steps that build the venv from `src` (a checkout at environment_setup_commit)."""
        steps = ["python -m pip install -q --upgrade 'pip<24.1' || true"]  # old pips mis-resolve
        pkgs = self.raw.get("packages", "")
        if pkgs == "requirements.txt":
            reqs = requirements(self.repo, src)
            if reqs is not None:
                f = scratch / "requirements.txt"
                f.write_text(reqs)
                steps.append(f"python -m pip install -r {shlex.quote(str(f))}")
        elif pkgs == "environment.yml":
            names = environment_yml_packages(self.repo, src)
            if names:
                steps.append("python -m pip install " + " ".join(map(shlex.quote, names)))
        elif pkgs:
            steps.append(f"python -m pip install {pkgs}")  # conda names; the ones used are pip names too
        if pip := self.raw.get("pip_packages"):
            steps.append("python -m pip install " + " ".join(map(shlex.quote, pip)))
        steps += self.repo_steps()
        if install := self.raw.get("install"):
            steps.append(install)
        return steps

    def test_env(self) -> dict[str, str]:
        """Variables the spec's eval commands export before the tests (Django's LANG/LC_ALL). A
        locale this machine has not generated (SWE-bench's image runs locale-gen as root) becomes
        C.UTF-8: same UTF-8 encoding, so Python 3.6 does not fall back to ASCII file names."""
        env: dict[str, str] = {}
        for cmd in self.raw.get("eval_commands", []):
            if m := re.fullmatch(r"\s*export\s+([A-Za-z_]\w*)=(.*?)\s*", cmd):
                value = " ".join(shlex.split(m.group(2))) if m.group(2) else ""
                if m.group(1) in ("LANG", "LC_ALL") and not _has_locale(value):
                    value = "C.UTF-8"
                env[m.group(1)] = value
        return env

    def test_command(self, inst: Instance) -> str:
        cmd = self.raw["test_cmd"]
        cmd = cmd[-1] if isinstance(cmd, list) else cmd
        sw = _swebench()
        assert sw is not None
        return " ".join([cmd, *sw.directives(inst.model_dump(mode="json"))])


def agent_test_command(inst: Instance, repos_dir: Path | None, *, visible: bool = False) -> str | None:
    """The agent's test command for a SWE-bench instance: SWE-bench's own test command and runner
    (Django's runtests.py, SymPy's bin/test, pytest -rA, ...) on the test files its directives
    name, as they are at the base commit (a file the hidden test patch would add is left out, so
    nothing of the hidden tests shows). With `visible` (the --visible-tests opt-in) the test
    patch is in the agent's base and every directive is kept. None when there is no spec or clone."""
    if not (applies(inst) and available()):
        return None
    try:
        spec = spec_for(inst)
    except SpecError:
        return None
    paths = re.findall(r"diff --git a/.* b/(.*)", inst.test_patch or "")
    if not visible:
        clone = _clone(inst.repo, repos_dir)
        paths = [p for p in paths if clone and _exists_at(clone, inst.base_commit, p)]
    sw = _swebench()
    assert sw is not None
    fake = {"repo": inst.repo, "test_patch": "".join(f"diff --git a/{p} b/{p}\n" for p in paths)}
    cmd = spec.raw["test_cmd"]
    cmd = cmd[-1] if isinstance(cmd, list) else cmd
    return " ".join([cmd, *sw.directives(fake)])


def prepare_runner(cmd: str, repo: Path, python: Path) -> None:
    """`tox --current-env -eNAME` runs the tests with `.tox/NAME/bin/python`, a symlink it makes to
    the interpreter tox runs on. In SWE-bench's conda env that is a real binary; a venv's python is
    a symlink whose venv is found from the path it is started by, so through tox's link it loses
    the venv's packages ("No module named pytest"). tox keeps a `bin/python` that exists, so one
    that starts the venv's own interpreter is put there first."""
    m = re.search(r"\btox\b.*--current-env.*?-e\s*([\w.-]+)", cmd)
    if not m:
        return
    bindir = Path(repo) / ".tox" / m.group(1) / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        exe = bindir / name
        exe.write_text(f'#!/bin/sh\nexec {shlex.quote(str(python))} "$@"\n')
        exe.chmod(0o755)


def test_env(inst: Instance) -> dict[str, str]:
    """The spec's exported variables for this instance's test runs ({} without a spec)."""
    if not (applies(inst) and available()):
        return {}
    try:
        return spec_for(inst).test_env()
    except SpecError:
        return {}


def _clone(repo: str, repos_dir: Path | None) -> Path | None:
    if repos_dir is None:
        return None
    for cand in (Path(repos_dir) / repo.replace("/", "__"), Path(repos_dir) / repo):
        if cand.exists():
            return cand.resolve()
    return None


def _exists_at(clone: Path, commit: str | None, path: str) -> bool:
    proc = subprocess.run(["git", "cat-file", "-e", f"{commit or 'HEAD'}:{path}"], cwd=clone,
                          capture_output=True)  # fmt: skip
    return proc.returncode == 0


def spec_for(inst: Instance) -> SweSpec:
    sw = _swebench()
    if sw is None:
        raise SpecError(
            f"{inst.repo}: grading SWE-bench repositories needs the pinned SWE-bench specs; "
            "install them with `pip install 'treefix[swebench]'`"
        )
    by_version = sw.constants.MAP_REPO_VERSION_TO_SPECS.get(inst.repo)
    if by_version is None:
        raise SpecError(f"{inst.repo}: SWE-bench has no specification for this repository")
    raw = by_version.get(str(inst.version))
    if raw is None:
        raise SpecError(f"{inst.repo}: SWE-bench has no specification for version {inst.version!r}")
    if inst.repo not in sw.parsers:
        raise SpecError(f"{inst.repo}: SWE-bench has no log parser for this repository")
    return SweSpec(inst.repo, str(inst.version), dict(raw))


def requirements(repo: str, src: Path) -> str | None:
    """The repository's requirements file as SWE-bench reads it (nested `-r` expanded; `-e .`,
    comments and `.[test]` dropped), from the local checkout instead of the network."""
    sw = _swebench()
    assert sw is not None
    for rel in sw.constants.MAP_REPO_TO_REQS_PATHS.get(repo, []):
        path = src / rel
        if path.is_file():
            break
    else:
        return None

    def keep(line: str) -> bool:
        return not any(line.strip().startswith(x) for x in ("-e .", "#", ".[test"))

    extra, own = [], []
    for line in path.read_text().splitlines():
        if line.strip().startswith("-r"):
            nested = path.parent / line.strip()[2:].strip()
            if nested.is_file():
                extra += [x for x in nested.read_text().splitlines() if keep(x)]
        elif keep(line):
            own.append(line)
    text = "\n".join([*extra, "\n".join(own)])
    # yanked from the index; SWE-bench swaps it for types-setuptools, version specifier dropped
    return re.sub(r"(?m)^types-pkg_resources([<>=!~]=?.*|$)", "types-setuptools", text)


def environment_yml_packages(repo: str, src: Path) -> list[str]:
    """pip-installable names from a conda environment.yml: conda entries by name (their version
    syntax differs), pip entries as written; python and pip themselves are skipped."""
    sw = _swebench()
    assert sw is not None
    for rel in sw.constants.MAP_REPO_TO_ENV_YML_PATHS.get(repo, []):
        if (src / rel).is_file():
            text = (src / rel).read_text()
            break
    else:
        return []
    names: list[str] = []
    in_deps, in_pip, pip_indent = False, False, 0
    for line in text.splitlines():
        if re.match(r"^dependencies\s*:", line):
            in_deps = True
            continue
        if in_deps and re.match(r"^\S", line):
            in_deps = False
        m = re.match(r"^(\s*)-\s*([^#]*?)\s*(?:#.*)?$", line) if in_deps else None
        if not m or not m.group(2):
            continue
        item, indent = m.group(2), len(m.group(1))
        if item.rstrip(":").strip() == "pip" and item.endswith(":"):
            in_pip, pip_indent = True, indent
            continue
        if in_pip and indent > pip_indent:
            names.append(item)  # pip syntax already
            continue
        in_pip = False
        name = re.split(r"[=<>! ]", item, maxsplit=1)[0]
        if name.lower() not in ("python", "pip") and "::" not in item:
            names.append(name)
    return list(dict.fromkeys(names))


def find_python(version: str) -> Path:
    """An interpreter for `version` ("3.9") on this machine: pyenv, `uv python find`, PATH."""
    home = Path.home()
    cands = sorted((home / ".pyenv" / "versions").glob(f"{version}.*"), key=_natural, reverse=True)
    for d in cands:
        if (p := d / "bin" / f"python{version}").is_file() or (p := d / "bin" / "python").is_file():
            return p
    if shutil.which("uv"):
        proc = subprocess.run(["uv", "python", "find", version], capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip():
            return Path(proc.stdout.strip())
    if found := shutil.which(f"python{version}"):
        return Path(found)
    raise SpecError(
        f"Python {version} is not on this machine (looked in ~/.pyenv/versions, `uv python find`, "
        f"PATH); install it, e.g. `pyenv install {version}`"
    )


@cache
def _locales() -> frozenset[str]:
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout
    except OSError:
        return frozenset()
    return frozenset(x.strip().lower().replace("-", "") for x in out.splitlines())


def _has_locale(name: str) -> bool:
    return name.lower().replace("-", "") in _locales()


def _natural(p: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", p.name))


def parse_log(inst: Instance, output: str) -> dict[str, str]:
    """Per-test statuses, read by the repository's own SWE-bench log parser."""
    sw = _swebench()
    assert sw is not None
    spec = SimpleNamespace(repo=inst.repo, version=inst.version, instance_id=inst.instance_id)
    return sw.parsers[inst.repo](output, spec)


def grade_status_map(inst: Instance, status: dict[str, str]) -> tuple[dict[str, dict[str, list[str]]], bool]:
    """SWE-bench's FAIL_TO_PASS / PASS_TO_PASS report and whether it counts as resolved."""
    sw = _swebench()
    assert sw is not None
    c, g = sw.constants, sw.grading
    eval_type = c.EvalType.FAIL_ONLY if inst.repo in c.FAIL_ONLY_REPOS else c.EvalType.PASS_AND_FAIL
    gold = {c.FAIL_TO_PASS: inst.FAIL_TO_PASS, c.PASS_TO_PASS: inst.PASS_TO_PASS}
    report = g.get_eval_tests_report(status, gold, eval_type=eval_type)
    return report, g.get_resolution_status(report) == c.ResolvedStatus.FULL.value


def test_passed(test: str, status: dict[str, str]) -> bool:
    sw = _swebench()
    assert sw is not None
    return bool(sw.grading.test_passed(test, status))
