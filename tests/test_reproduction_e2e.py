"""No test command: the run makes its own execution signal (a reproduction, regression checks).

A whole `treefix fix` through the real OpenAI SDK against the fake server. The scripted model
writes an unusable reproduction, then a good one; its first fix is wrong, its second passes the
reproduction but breaks an existing test, its third is right. Only the right one may be chosen.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_repo
from fakeserver import FakeServer, Reply, Request, role_of

pytestmark = pytest.mark.slow

FILES = {
    "calc/__init__.py": "",
    "calc/stats.py": (
        "def mean(xs):\n"
        "    return sum(xs) / (len(xs) + 1)\n"
        "\n\n"
        "def clamp(x, lo, hi):\n"
        "    return max(lo, min(x, hi))\n"
    ),
    "tests/__init__.py": "",
    "tests/test_stats.py": (
        "from calc.stats import clamp, mean\n\n\n"
        "def test_mean_is_a_float():\n"
        "    assert isinstance(mean([1, 2]), float)\n\n\n"
        "def test_clamp():\n"
        "    assert clamp(5, 0, 3) == 3\n"
    ),
}
ISSUE = "`calc.stats.mean([1, 2, 3])` returns 1.5; the mean of 1, 2 and 3 is 2.0.\n"

BROKEN_REPRO = "```python\nfrom calc.statistics import mean\n\n\ndef test_mean():\n    assert mean([1, 2, 3]) == 2\n```"
GOOD_REPRO = "```python\nfrom calc.stats import mean\n\n\ndef test_mean_of_three():\n    assert mean([1, 2, 3]) == 2\n```"
PLAN = "TITLE: mean divides by the wrong count\nROOT CAUSE: calc/stats.py mean adds 1 to len(xs)\nSTRATEGY: fix it"
ATTEMPTS = [
    "return (sum(xs) + 1) / (len(xs) + 1)",  # wrong: the reproduction keeps failing
    "return sum(xs) // len(xs)",  # passes the reproduction, breaks test_mean_is_a_float
    "return sum(xs) / len(xs)",  # right
]
CRITIC = {ATTEMPTS[0]: 0.9, ATTEMPTS[1]: 0.95, ATTEMPTS[2]: 0.5}  # the critic alone would choose wrong


def brain(seen: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def answer(req: Request) -> Reply:
        role = role_of(req)
        last = req.texts[-1]
        seen.setdefault(role, []).append(last)
        if role == "reproduce":
            return Reply(text=BROKEN_REPRO if len(seen[role]) == 1 else GOOD_REPRO)
        if role == "plan":
            return Reply(text=PLAN)
        if role in ("code", "repair"):
            current = re.search(r"def mean\(xs\):\n    (return .*)\n", last)
            assert current, "the prompt shows the file to edit"
            nxt = ATTEMPTS[min(len(seen["code"]) + len(seen.get("repair", [])) - 1, 2)]
            edit = f"calc/stats.py\n```\n<<<<<<< SEARCH\n    {current[1]}\n=======\n    {nxt}\n>>>>>>> REPLACE\n```"
            return Reply(text=edit)
        if role == "critic":
            value = next((v for a, v in CRITIC.items() if f"+    {a}" in last), 0.1)
            return Reply(text=json.dumps({"value": value, "rationale": "scripted", "advice": "check the mean"}))
        return Reply(text="1")

    return answer


def fix(repo: Path, out: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "treefix.agent.cli", "fix", str(repo), "--issue", ISSUE, "-m", "openai/gpt-4o-mini"]
    cmd += ["--base-url", url, "-o", str(out), "--json", "--max-nodes", "12", *args]
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    clean["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the runs' pytest needs no plugin; starting them all is slow
    return subprocess.run(cmd, capture_output=True, text=True, timeout=480, env=clean, cwd=repo)


def test_reproduction_and_regressions_choose_the_right_fix(tmp_path):
    repo = make_repo(tmp_path / "repo", FILES)
    seen: dict[str, list[str]] = {}
    with FakeServer(brain=brain(seen)) as server:
        proc = fix(repo, tmp_path / "run", server.url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["exit_status"] == "verified" and summary["verified_by"] == "reproduction"
    assert summary["choice"]["rule"] == "verified"
    assert summary["reproductions"] == {"accepted": 1, "unusable": 1}

    # The unusable reproduction's reason reached the next one's prompt.
    assert len(seen["reproduce"]) == 2 and "ModuleNotFoundError" in seen["reproduce"][1]
    # The plan saw the accepted reproduction and its failure on the base.
    assert "test_mean_of_three" in seen["plan"][0] and "assert 1.5 == 2" in seen["plan"][0]

    tree = json.loads((tmp_path / "run" / "tree.json").read_text())
    nodes = {n["id"]: n for n in tree["nodes"]}
    repros = [n for n in nodes.values() if n["kind"] == "reproduce"]
    assert [r["evidence"]["accepted"] for r in repros] == [False, True]
    assert "failed" in repros[1]["evidence"]["base"].values()
    attempts = sorted((n for n in nodes.values() if n["kind"] in ("code", "repair")), key=lambda n: n["seq"])
    assert len(attempts) == 3
    wrong, breaking, right = (a["evidence"] for a in attempts)
    assert wrong["reproduced"] == 0 and wrong["regression_count"] == 0 and not wrong["verified_by"]
    assert breaking["reproduced"] == 1 and breaking["regressions"] == ["tests/test_stats.py::test_mean_is_a_float"]
    assert not breaking["verified_by"] and breaking["selection"] == "imports+names"
    assert right["verified_by"] == "reproduction" and right["strong"]
    assert right["regression_tests"] == 1  # of the related file, the test that names the changed function
    assert tree["best"] == attempts[2]["id"]
    # The critic's value sits beside the execution outcome of every attempt.
    assert [r["critic"] for r in summary["critic_calibration"]] == [0.9, 0.95, 0.5]

    patch = (tmp_path / "run" / "patch.diff").read_text()
    assert "+    return sum(xs) / len(xs)" in patch
    assert "test_treefix_repro" not in patch and patch.count("diff --git") == 1


def test_keep_tests_puts_the_reproduction_in_the_patch(tmp_path):
    repo = make_repo(tmp_path / "repo", FILES)
    with FakeServer(brain=brain({})) as server:
        proc = fix(repo, tmp_path / "run", server.url, "--keep-tests")
    assert proc.returncode == 0, proc.stderr[-3000:]
    patch = (tmp_path / "run" / "patch.diff").read_text()
    assert "+    return sum(xs) / len(xs)" in patch
    assert re.search(r"\+\+\+ b/test_treefix_repro_\w+\.py", patch) and "test_mean_of_three" in patch
