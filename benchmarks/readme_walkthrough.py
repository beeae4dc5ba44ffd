"""The README, followed literally: its shell commands, in order, in a fresh clone and a fresh venv.

    python -m benchmarks.readme_walkthrough          # every command that runs offline (a few minutes)
    python -m benchmarks.readme_walkthrough --fast   # those that take seconds (what tests/test_readme.py runs)

Each command of a ```bash block of README.md must match one step below, so a new README command
fails here until it is walked through (or listed with the reason it is not run). Placeholders
(`RUN`, `[REPO]`, a node id) are filled from the results of earlier commands. The clone is of the
committed HEAD; its install runs offline (no index, no build isolation), with the dependencies this
Python already has (the venv sees its site-packages).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands(text: str) -> list[str]:
    """Every command of the ```bash blocks, in order: continuations joined, comments dropped."""
    out: list[str] = []
    block = False
    pending = ""
    for line in text.splitlines():
        if line.startswith("```"):
            block = line[3:].strip() == "bash" and not block
            continue
        if not block:
            continue
        line = re.sub(r"\s+#\s.*$", "", line).rstrip()
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        if cmd := (pending + line.strip()).strip():
            out.append(cmd)
        pending = ""
    return out


@dataclass
class State:
    clone: Path
    env: dict[str, str]
    log: list[str] = field(default_factory=list)
    demo_repo: Path | None = None
    run_id: str = ""
    run_dir: Path | None = None


@dataclass
class Step:
    pattern: str  # the README command, as a regular expression
    speed: str  # fast | slow | not run
    why: str  # what is checked, or why it is not run
    run: Callable[[State, str], None] | None = None


class Failed(AssertionError):
    pass


# Only for installing the clone: offline, with the setuptools this Python has. Not for the commands
# after it: the task venvs `swebench run` builds must install their packages the usual way.
PIP_OFFLINE = {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def sh(
    state: State, cmd: str, cwd: Path | None = None, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    start = time.monotonic()
    res = subprocess.run(["bash", "-c", cmd], cwd=cwd or state.clone, env={**state.env, **(env or {})},
                         capture_output=True, text=True, timeout=timeout)  # fmt: skip
    state.log.append(f"$ {cmd}   [{time.monotonic() - start:.1f}s, exit {res.returncode}]")
    return res


def expect(ok: bool, what: str, res: subprocess.CompletedProcess) -> None:
    if not ok:
        raise Failed(f"{what}\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}")


def install_and_demo(state: State, cmd: str) -> None:
    res = sh(state, cmd, env=PIP_OFFLINE)
    expect(res.returncode == 0, "the demo must exit 0 (a verified patch)", res)
    out = res.stdout + res.stderr
    expect("verified" in out and "patch" in out, "the demo prints the tree and the patch", res)
    found = re.search(r"run (\d{8}-\d{6}-[0-9a-f]+)(?: started)?: (\S+)", out)
    expect(found is not None, "the demo names its run and folder", res)
    assert found
    state.run_id, state.run_dir = found[1], Path(found[2])
    state.demo_repo = state.run_dir.parent.parent.parent  # REPO/.treefix/runs/ID
    expect((state.run_dir / "patch.diff").read_text().strip() != "", "the demo writes its patch", res)


def runs(state: State, cmd: str) -> None:
    res = sh(state, cmd, cwd=state.demo_repo)
    expect(res.returncode == 0 and state.run_id in res.stdout, "`treefix runs` lists the demo's run", res)


def inspect(state: State, cmd: str) -> None:
    res = sh(state, cmd.replace("RUN", state.run_id), cwd=state.demo_repo)
    expect(res.returncode == 0 and "★" in res.stdout and "visits" in res.stdout, "the tree, best marked", res)


def resume(state: State, cmd: str) -> None:
    res = sh(state, cmd.replace("RUN", state.run_id), cwd=state.demo_repo)
    expect(res.returncode == 0 and f"run {state.run_id} resumed" in res.stderr, "resume of a finished run", res)


def repo_map(state: State, cmd: str) -> None:
    res = sh(state, cmd.replace("[REPO]", str(state.demo_repo)))
    expect(res.returncode == 0 and "textstats/core.py" in res.stdout, "the map names the example's files", res)


def inspect_node(state: State, cmd: str) -> None:
    assert state.run_dir
    best = json.loads((state.run_dir / "tree.json").read_text())["best"]
    cmd = re.sub(r"--node \S+", f"--node {best[:8]}", cmd).replace("RUN", state.run_id)
    res = sh(state, cmd, cwd=state.demo_repo)
    expect(res.returncode == 0 and "★ chosen" in res.stdout and "diff --git" in res.stdout, "one node in full", res)


def inspect_html(state: State, cmd: str) -> None:
    assert state.demo_repo
    page = state.demo_repo / "tree.html"
    page.unlink(missing_ok=True)
    res = sh(state, cmd.replace("RUN", state.run_id), cwd=state.demo_repo)
    expect(res.returncode == 0 and page.is_file() and state.run_id in page.read_text(), "tree.html is written", res)


def task_set(state: State, cmd: str) -> None:
    res = sh(state, cmd)
    expect(res.returncode == 0, "the task-set command exits 0", res)
    runs_dir = state.clone / "runs" / "smoke"
    if " run " in cmd:
        preds = json.loads((runs_dir / "preds.json").read_text())
        expect(len(preds) > 0, "run writes predictions", res)
    elif " eval " in cmd:
        expect(bool(list((runs_dir / "eval").glob("*/report.json"))), "eval grades into runs/smoke/eval", res)
    else:
        md = (runs_dir / "report.md").read_text()
        expect("| resolved |" in md and "not graded" not in md, "report finds the grades", res)


def lint(state: State, cmd: str) -> None:
    res = sh(state, cmd)
    expect(res.returncode == 0, "exit 0 in the clone", res)


STEPS = [
    Step(r"python -m pip install -e \. && treefix demo", "fast", "exit 0, verified, a patch", install_and_demo),
    Step(r'python -m pip install -e "\.\[dev\]" && python -m pytest', "not run",
         "the whole suite: the README says some 12 minutes; CI (.ci/run) runs it"),
    Step(r"treefix fix path/to/repo .*-m openai/.*", "not run", "needs an OpenAI key and the network"),
    Step(r"treefix runs", "fast", "lists the demo's run", runs),
    Step(r"treefix inspect RUN", "fast", "the demo's tree", inspect),
    Step(r"treefix resume RUN", "fast", "a finished run resumes and ends again", resume),
    Step(r"treefix map \[REPO\]", "fast", "the demo repository's map", repo_map),
    Step(r"treefix inspect RUN --node \S+", "fast", "the chosen node in full", inspect_node),
    Step(r"treefix inspect RUN --html tree\.html", "fast", "the page is written", inspect_html),
    Step(r"treefix chat.*", "not run", "interactive: tests/test_chat.py drives it in a pseudo-terminal"),
    Step(r"treefix swebench (run|eval|report) .*smoke.*", "slow",
         "README: under a minute with cached venvs, a few minutes the first time", task_set),
    Step(r'pip install -e "\.\[swebench\]"', "not run", "downloads SWE-bench (network)"),
    Step(r"treefix swebench (validate|eval) --dataset swe-bench-lite\.json.*", "not run",
         "needs SWE-bench Lite and clones of its repositories"),
    Step(r"python -m benchmarks\.offline_generalise .*--mirrors DIR.*", "not run",
         "needs the mirrors benchmarks/generalise/README.md describes"),
    Step(r"python -m benchmarks\.operator_recall --mirrors DIR.*", "not run",
         "needs the mirrors benchmarks/generalise/README.md describes"),
    Step(r"make test", "not run", "the whole suite, as above"),
    Step(r"make lint", "fast", "ruff on the clone", lint),
    Step(r"python -m benchmarks\.readme_walkthrough", "not run", "this walkthrough itself"),
    Step(r"python -m benchmarks\.engine", "slow", "a benchmark: exits 0 and prints its figures", lambda st, c: lint(st, c)),
]


def plan(commands: list[str]) -> list[tuple[str, Step]]:
    """Each README command with its step; Failed names a command no step covers."""
    out = []
    for cmd in commands:
        matching = [s for s in STEPS if re.fullmatch(s.pattern, cmd)]
        if len(matching) != 1:
            raise Failed(f"README command {'not covered' if not matching else 'ambiguous'} in the walkthrough: {cmd}")
        out.append((cmd, matching[0]))
    return out


def fresh(work: Path) -> State:
    clone = work / "treefix"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    venv = work / "venv"
    # without its own pip and setuptools: this Python's (dev: setuptools>=68) build the clone offline
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "COLUMNS")}
    env |= {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "TREEFIX_CONFIG_DIR": str(work / "config"),  # no user settings leak in
    }
    return State(clone, env)


def walk(fast: bool, keep: Path | None = None) -> list[str]:
    plan(readme_commands((ROOT / "README.md").read_text()))  # before any work: every command is known
    work = keep or Path(tempfile.mkdtemp(prefix="readme-walk-"))
    report: list[str] = []
    try:
        state = fresh(work)
        steps = plan(readme_commands((state.clone / "README.md").read_text()))  # the README as committed
        for cmd, step in steps:
            if step.run is None or step.speed == "not run" or (fast and step.speed == "slow"):
                reason = step.why if step.speed == "not run" or step.run is None else f"slow ({step.why})"
                report.append(f"skip  {cmd}\n      {reason}")
                continue
            start = time.monotonic()
            step.run(state, cmd)
            report.append(f"ok    {cmd}   [{time.monotonic() - start:.1f}s]\n      {step.why}")
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="only the commands that take seconds")
    p.add_argument("--keep", type=Path, help="work in this (new) folder and keep it")
    args = p.parse_args()
    start = time.monotonic()
    try:
        report = walk(args.fast, args.keep)
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    print("\n".join(report))
    print(f"README walkthrough passed in {time.monotonic() - start:.0f}s")


if __name__ == "__main__":
    main()
