"""The README, tested as written: every shell command it shows is walked through in order
(benchmarks/readme_walkthrough.py), and those that take seconds run here in a fresh clone and venv."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks/ is not installed: it runs from the checkout

from benchmarks.readme_walkthrough import Failed, plan, readme_commands  # noqa: E402

README = (ROOT / "README.md").read_text()


def test_every_readme_command_is_walked_through_or_says_why_not():
    steps = plan(readme_commands(README))  # Failed: a README command the walkthrough does not know
    assert [c for c, _ in steps][:2] == ["python -m pip install -e . && treefix demo",
                                         'python -m pip install -e ".[dev]" && python -m pytest']  # fmt: skip
    assert all(s.run is not None or s.speed == "not run" for _, s in steps)
    # what is not run here: the README says how long it takes
    assert "some 12 minutes" in README and "under a minute once its venvs are cached" in README


def test_a_new_readme_command_must_be_walked_through():
    try:
        plan(readme_commands("```bash\ntreefix frobnicate --now   # new\n```\n"))
    except Failed as e:
        assert "not covered in the walkthrough: treefix frobnicate --now" in str(e)
    else:
        raise AssertionError("an unknown README command was accepted")


def test_the_fast_readme_commands_work_in_a_fresh_clone():
    res = subprocess.run([sys.executable, "-m", "benchmarks.readme_walkthrough", "--fast"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    assert "README walkthrough passed" in res.stdout
    for cmd in ("treefix demo", "treefix runs", "treefix inspect RUN --node", "treefix inspect RUN --html"):
        assert any(line.startswith("ok ") and cmd in line for line in res.stdout.splitlines()), res.stdout
