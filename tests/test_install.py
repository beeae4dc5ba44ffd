"""treefix installs under one name, `treefix`: its folders (agent/, tools/, evals/, prompts/) never
become top-level packages that would collide with another distribution's or a user's modules."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP = ["-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--disable-pip-version-check"]


def _run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _source_copy(dest: Path) -> Path:
    """The checkout's files as git sees them (a build writes into its source folder)."""
    listed = _run(["git", "ls-files", "-co", "--exclude-standard"], ROOT).stdout.splitlines()
    for rel in listed:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def _other_tools(dest: Path) -> Path:
    """Another distribution that ships a top-level package called `tools`."""
    (dest / "tools").mkdir(parents=True)
    (dest / "tools" / "__init__.py").write_text('OWNER = "othertools"\n')
    (dest / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "othertools"\nversion = "1.0"\n[tool.setuptools]\npackages = ["tools"]\n'
    )
    return dest


@pytest.mark.slow
def test_the_wheel_holds_only_the_treefix_package(tmp_path):
    source = _source_copy(tmp_path / "src")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", "dist", "."], source)
    (wheel,) = (source / "dist").glob("treefix-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"treefix", wheel.name.split("-py")[0] + ".dist-info"}, tops
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("treefix/agent/cli.py", "treefix/tools/sandbox.py", "treefix/evals/cli.py",
                   "treefix/prompts/plan.j2", "treefix/agent/data/prices.json"):  # fmt: skip
        assert needed in names


@pytest.mark.slow
def test_editable_install_beside_a_top_level_tools_distribution(tmp_path):
    venv = tmp_path / "venv"
    # without its own pip and setuptools: the ones this environment has (dev: setuptools>=68) build offline
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], tmp_path)
    python = str(venv / "bin" / "python")
    _run([python, *PIP, str(_other_tools(tmp_path / "othertools"))], tmp_path)
    _run([python, *PIP, "-e", str(ROOT)], tmp_path)
    probe = (
        "import importlib.util, tools, treefix.tools.sandbox, treefix.agent.cli;"
        "print(tools.OWNER);"
        "print(treefix.tools.sandbox.__file__);"
        "print([n for n in ('agent', 'evals', 'prompts') if importlib.util.find_spec(n)])"
    )
    owner, sandbox, bare = _run([python, "-c", probe], tmp_path).stdout.splitlines()
    assert owner == "othertools"  # theirs, not ours
    assert Path(sandbox).is_relative_to(ROOT / "tools")  # ours, from the checkout (editable)
    assert bare == "[]"  # nothing of ours at the top level
    demo = subprocess.run(
        [str(venv / "bin" / "treefix"), "demo", "--dir", str(tmp_path / "demo")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "diff --git" in demo.stdout
