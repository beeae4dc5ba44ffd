"""A tiny synthetic SWE-bench-style dataset for batch tests: a local source, three bugs, and one
instance whose bug patch does not apply (an error the runner must record and retry).

Every hidden value (test names, hints, gold-patch text) contains `HIDDEN_MARK`, so any output can
be grepped for a leak. Each instance has its own replay cassette: plan, critic, code, critic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HIDDEN_MARK = "zqhidden7731"
TEST_CMD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -q -p no:cacheprovider tests"

PRISTINE = {
    "pyproject.toml": '[project]\nname = "mathx"\nversion = "1.0"\n',
    "mathx/__init__.py": "from mathx.core import clamp, mean, title_case\n",
    "mathx/core.py": (
        "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n\n\n"
        "def mean(xs):\n    if not xs:\n        return 0.0\n    return sum(xs) / len(xs)\n\n\n"
        "def title_case(s):\n    return ' '.join(w[:1].upper() + w[1:] for w in s.split(' '))\n"
    ),
    "tests/test_core.py": (
        "from mathx import clamp, mean, title_case\n\n\n"
        "def test_clamp_inside():\n    assert clamp(5, 0, 10) == 5\n\n\n"
        "def test_mean():\n    assert mean([1, 2, 3]) == 2\n\n\n"
        "def test_title():\n    assert title_case('ab cd') == 'Ab Cd'\n"
    ),
}

# id -> (buggy line, fixed line, issue, hidden test body)
BUGS = {
    "mathx-1": (
        "    return max(lo, min(x, hi - 1))\n",
        "    return max(lo, min(x, hi))\n",
        "clamp(10, 0, 10) returns 9, expected 10: the upper bound is excluded.",
        "from mathx import clamp\n\n\ndef {name}():\n    assert clamp(10, 0, 10) == 10\n",
    ),
    "mathx-2": (
        "    if xs is None:\n",
        "    if not xs:\n",
        "mean([]) raises ZeroDivisionError; expected 0.0 for an empty list.",
        "from mathx import clamp, mean\n\n\ndef {name}():\n    assert mean([]) == 0.0\n",
    ),
    "mathx-3": (
        "    return ' '.join(w[:1].upper() + w[1:] for w in s.split(' ')[:2])\n",
        "    return ' '.join(w[:1].upper() + w[1:] for w in s.split(' '))\n",
        "title_case('a b c') drops the third word: got 'A B', expected 'A B C'.",
        "from mathx import clamp, title_case\n\n\ndef {name}():\n    assert title_case('a b c') == 'A B C'\n",
    ),
}
P2P_TEST = f"\n\ndef test_{HIDDEN_MARK}_p2p():\n    assert clamp(1, 0, 2) == 1\n"
# What the model writes as a reproduction in each cassette: from the issue text, not the hidden tests.
REPRODUCTIONS = {
    "mathx-1": "from mathx import clamp\n\n\ndef test_upper_bound():\n    assert clamp(10, 0, 10) == 10\n",
    "mathx-2": "from mathx import mean\n\n\ndef test_empty():\n    assert mean([]) == 0.0\n",
    "mathx-3": "from mathx import title_case\n\n\ndef test_three_words():\n    assert title_case('a b c') == 'A B C'\n",
}
BROKEN = "mathx-9"  # its bug_patch does not apply


@dataclass(frozen=True)
class BatchData:
    dataset: Path
    cassettes: Path  # replay:<dir> plays <dir>/<instance_id>.jsonl
    cache: Path
    source: Path

    def instances(self) -> list[dict]:
        return [json.loads(line) for line in self.dataset.read_text().splitlines()]

    def run_args(self, out: Path, *extra: str) -> list[str]:
        return [
            "--dataset", str(self.dataset), "-o", str(out), "-m", f"replay:{self.cassettes}",
            "--cache-dir", str(self.cache), "--max-nodes", "6", "-l", "0", *extra,
        ]  # fmt: skip


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def diff_of(root: Path, files: dict[str, str], changes: dict[str, str]) -> str:
    """The git-style diff (a/ b/ prefixes) that turns `files` into `files | changes`."""
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a")
    for name, text in changes.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    return git(root, "diff", "--cached")


def make_batch_data(root: Path) -> BatchData:
    source = root / "mathx-src"
    for name, text in PRISTINE.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    cassettes = root / "cassettes"
    cassettes.mkdir(parents=True)
    core = PRISTINE["mathx/core.py"]
    lines = []
    for n, (iid, (bad, good, issue, hidden)) in enumerate(BUGS.items()):
        buggy = {**PRISTINE, "mathx/core.py": core.replace(good, bad, 1)}
        test_file = f"tests/test_{HIDDEN_MARK}_{n}.py"
        test_name = f"test_{HIDDEN_MARK}_{n}"
        inst = {
            "instance_id": iid,
            "repo": "example/mathx",
            "problem_statement": issue,
            "source": {"path": str(source)},
            "bug_patch": diff_of(root / f"d{n}a", PRISTINE, {"mathx/core.py": buggy["mathx/core.py"]}),
            "test_patch": diff_of(
                root / f"d{n}b", buggy, {test_file: hidden.format(name=test_name) + P2P_TEST}
            ),
            "patch": diff_of(
                root / f"d{n}c",
                buggy,
                {"mathx/core.py": core.replace(good, good.rstrip("\n") + f"  # {HIDDEN_MARK} gold\n", 1)},
            ),
            "FAIL_TO_PASS": json.dumps([f"{test_file}::{test_name}"]),
            "PASS_TO_PASS": [
                "tests/test_core.py::test_clamp_inside",
                "tests/test_core.py::test_mean",
                f"{test_file}::test_{HIDDEN_MARK}_p2p",
            ],
            "hints_text": f"look at core.py {HIDDEN_MARK} hint",
            "setup": [],
            "system_site_packages": True,  # pytest from the host; nothing to download
            "test_cmd": TEST_CMD,
        }
        lines.append(json.dumps(inst))
        _cassette(cassettes / f"{iid}.jsonl", issue, bad, good, REPRODUCTIONS[iid])
    broken = json.loads(lines[0]) | {
        "instance_id": BROKEN,
        "bug_patch": "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-x\n+y\n",
    }
    lines.append(json.dumps(broken))
    dataset = root / "mathx.jsonl"
    dataset.write_text("\n".join(lines) + "\n")
    return BatchData(dataset, cassettes, root / "cache", source)


def _cassette(path: Path, issue: str, bad: str, good: str, repro: str) -> None:
    usage = {"input_tokens": 500, "output_tokens": 50, "cached_tokens": 0, "cache_write_tokens": 0}

    def entry(role: str, text: str) -> str:
        comp = {
            "text": text,
            "tool_calls": [],
            "usage": usage,
            "cost": None,
            "finish_reason": "stop",
            "model": "test",
        }
        return json.dumps({"role": role, "request": "", "completion": comp})

    edit = f"mathx/core.py\n```\n<<<<<<< SEARCH\n{bad}=======\n{good}>>>>>>> REPLACE\n```"
    plan = f"TITLE: fix mathx/core.py\nROOT CAUSE: mathx/core.py: {issue}\nSTRATEGY: fix the line.\nREPRODUCTION: see issue"
    critic = '{"value": 0.9, "rationale": "fixes the symptom", "advice": ""}'
    path.write_text(
        "\n".join(
            # a batch run's test command passes on the base (regression-only): the model first writes a reproduction
            [entry("reproduce", f"```python\n{repro}```"), entry("plan", plan), entry("critic", critic),
             entry("code", edit), entry("critic", critic)]
        )
        + "\n"
    )


def treefix(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    """Run the CLI as users do, in a subprocess."""
    cmd = [sys.executable, "-c", "from treefix.agent.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


_SHARED: dict[str, BatchData] = {}


def shared_batch_data(tmp_path_factory) -> BatchData:  # type: ignore[no-untyped-def]
    """One dataset (and one venv cache) per test session, whichever module asks first."""
    if "data" not in _SHARED:
        _SHARED["data"] = make_batch_data(tmp_path_factory.mktemp("batch"))
    return _SHARED["data"]


def read_preds(out: Path) -> dict:
    return json.loads((out / "preds.json").read_text())
