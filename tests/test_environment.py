"""Bases and venvs built from a tiny local sdist (no network: pip runs with --no-index)."""

from __future__ import annotations

import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from treefix.evals.dataset import Instance
from treefix.evals.environment import EnvError, Venv, apply_patch, ensure_venv, git, prepare_base

PYPROJECT = """[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "tinypkg"
version = "0.1"

[tool.setuptools.packages.find]
where = ["src"]
"""
BUG = """diff --git a/src/tinypkg/__init__.py b/src/tinypkg/__init__.py
--- a/src/tinypkg/__init__.py
+++ b/src/tinypkg/__init__.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a + b
+    return a - b
"""
GOLD = BUG.replace("-    return a + b\n+    return a - b", "-    return a - b\n+    return a + b")
TEST_PATCH = """diff --git a/tests/test_add.py b/tests/test_add.py
new file mode 100644
--- /dev/null
+++ b/tests/test_add.py
@@ -0,0 +1,6 @@
+from tinypkg import add
+
+
+def test_add():
+    assert add(2, 3) == 5
+
"""
# Offline stand-in for `pip install .`: copy the package into the venv's site-packages (so a
# checkout must shadow it); the host's pytest is visible through system site-packages.
SETUP = [
    "python -c \"import shutil, sysconfig; shutil.copytree('src/tinypkg', sysconfig.get_paths()['purelib'] + '/tinypkg')\""
]


def tiny_sdist(dest: Path) -> Path:
    """tinypkg-0.1.tar.gz: a src-layout package whose tests live in tests/."""
    root = dest / "tinypkg-0.1"
    (root / "src" / "tinypkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "src" / "tinypkg" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "tests" / "test_smoke.py").write_text(
        "from tinypkg import add\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n"
    )
    archive = dest / "tinypkg-0.1.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(root, arcname=root.name)
    return archive


def tiny_instance(archive: Path, **extra) -> Instance:
    fields = dict(instance_id="tiny-1", repo="acme/tinypkg", problem_statement="add(2, 3) returns -1",
                  source={"path": str(archive)}, bug_patch=BUG, patch=GOLD, test_patch=TEST_PATCH,
                  FAIL_TO_PASS=["tests/test_add.py::test_add"], PASS_TO_PASS=["tests/test_smoke.py::test_zero"],
                  setup=SETUP, system_site_packages=True,
                  test_cmd="python -m pytest -rA -p no:cacheprovider tests")  # fmt: skip
    return Instance(**{**fields, **extra})


def run_py(venv: Venv, cwd: Path, code: str, env: dict[str, str]) -> str:
    proc = subprocess.run([str(venv.python), "-c", code], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, check=True)  # fmt: skip
    return proc.stdout.strip()


def test_prepare_base_commits_pristine_then_bug(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    inst, cache = tiny
    repo = prepare_base(inst, tmp_path / "a", cache)
    assert git(repo, "log", "--format=%s").stdout.split() == ["base", "pristine"]
    assert "return a - b" in (repo / "src/tinypkg/__init__.py").read_text()
    assert git(repo, "status", "--porcelain").stdout == ""
    assert git(repo, "diff", "HEAD~1", "HEAD").stdout.count("return a - b") == 1
    # Same inputs, same commit: bases are reproducible.
    again = prepare_base(inst, tmp_path / "b", cache)
    assert git(again, "rev-parse", "HEAD").stdout == git(repo, "rev-parse", "HEAD").stdout
    with pytest.raises(EnvError, match="not empty"):
        prepare_base(inst, repo, cache)


def test_pypi_source_uses_cached_sdist(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    inst, _ = tiny
    cache = tmp_path / "cache"
    (cache / "sdists" / "tinypkg_0.1").mkdir(parents=True)
    archive = Path(inst.source.path)
    (cache / "sdists" / "tinypkg_0.1" / archive.name).write_bytes(archive.read_bytes())
    pypi = inst.model_copy(
        update={"source": inst.source.model_copy(update={"path": None, "pypi": "tinypkg==0.1"})}
    )
    repo = prepare_base(pypi, tmp_path / "repo", cache)
    assert (repo / "pyproject.toml").exists() and (repo / "tests/test_smoke.py").exists()


def test_bad_bug_patch_is_a_clear_error(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    inst, cache = tiny
    broken = inst.model_copy(update={"bug_patch": BUG.replace("return a + b", "return a * b")})
    with pytest.raises(EnvError, match="tiny-1: bug_patch does not apply"):
        prepare_base(broken, tmp_path / "repo", cache)


def test_apply_patch_failure_changes_nothing(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    inst, cache = tiny
    repo = prepare_base(inst, tmp_path / "repo", cache)
    assert apply_patch(repo, BUG, name="model_patch").startswith("model_patch does not apply")
    assert git(repo, "status", "--porcelain").stdout == ""
    assert apply_patch(repo, GOLD) is None
    assert "return a + b" in (repo / "src/tinypkg/__init__.py").read_text()


def test_venv_is_cached_and_reused(tiny: tuple[Instance, Path]) -> None:
    inst, cache = tiny
    start = time.monotonic()
    venv = ensure_venv(inst, cache)
    assert time.monotonic() - start < 0.5
    assert venv.import_dirs == ("src",)
    env = venv.env()
    assert env["VIRTUAL_ENV"] == str(venv.path) and env["PATH"].startswith(str(venv.bin))
    assert run_py(venv, venv.path, "import sys; print(sys.prefix)", env) == str(venv.path)


def test_each_checkout_imports_its_own_code(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    """The venv has tinypkg installed; a worktree must still test the code in the worktree."""
    inst, cache = tiny
    venv = ensure_venv(inst, cache)
    buggy = prepare_base(inst, tmp_path / "buggy", cache)
    fixed = prepare_base(inst, tmp_path / "fixed", cache)
    assert apply_patch(fixed, GOLD) is None
    code = "import tinypkg; print(tinypkg.add(2, 3), tinypkg.__file__)"
    for repo, expected in ((buggy, "-1"), (fixed, "5")):
        for env in (venv.env(repo), venv.env()):  # absolute, and relative to the cwd
            out = run_py(venv, repo, code, env)
            assert out.split()[0] == expected and out.split()[1].startswith(str(repo))
    # The same holds through pytest, the way the harness runs tests.
    proc = subprocess.run(["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=fixed,
                          env={**os.environ, **venv.env()}, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout


def test_failed_setup_leaves_no_ready_venv(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    inst, _ = tiny
    bad = inst.model_copy(update={"setup": ["exit 3"]})
    cache = tmp_path / "cache"
    with pytest.raises(EnvError, match="setup step failed"):
        ensure_venv(bad, cache)
    assert not list((cache / "venvs").glob("*/ready.json"))
    assert list((cache / "venvs").glob("*.log"))  # the log survives for diagnosis


def test_clone_from_repos_dir(tmp_path: Path) -> None:
    src = tmp_path / "repos" / "acme__widget"
    src.mkdir(parents=True)
    git(src, "init", "-q")
    (src / "a.txt").write_text("one\n")
    git(src, "add", "a.txt")
    git(src, "commit", "-q", "-m", "one")
    first = git(src, "rev-parse", "HEAD").stdout.strip()
    (src / "a.txt").write_text("two\n")
    git(src, "commit", "-q", "-am", "two")
    inst = Instance(
        instance_id="acme__widget-1", repo="acme/widget", problem_statement="x", base_commit=first
    )
    repo = prepare_base(inst, tmp_path / "work", tmp_path / "cache", tmp_path / "repos")
    assert (repo / "a.txt").read_text() == "one\n"
    with pytest.raises(EnvError, match="no clone"):
        prepare_base(inst.model_copy(update={"repo": "acme/other"}), tmp_path / "w2", tmp_path / "cache",
                     tmp_path / "repos")  # fmt: skip


def test_install_in_the_checkout_is_skipped_only_when_it_would_change_nothing(tmp_path: Path) -> None:
    """SWE-bench's install runs before every grading; with the same packaging files as the last
    install, and no extension modules built into the checkout, it is skipped."""
    from treefix.evals.environment import installed_checkout

    venv = Venv(tmp_path / "env" / "venv")
    venv.bin.mkdir(parents=True)
    count = tmp_path / "count"
    install = f"echo x >> {count}; test ! -f BUILD_EXT || touch pkg/_speedups.so"

    def checkout(name: str, setup: str, ext: bool = False) -> Path:
        repo = tmp_path / name
        (repo / "pkg").mkdir(parents=True)
        (repo / "setup.py").write_text(setup)
        if ext:
            (repo / "BUILD_EXT").write_text("")
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "base")
        with installed_checkout(repo, venv, install, tmp_path / f"{name}.log"):
            pass
        return repo

    def runs() -> int:
        return len(count.read_text().split())

    checkout("a", "setup(name='p')\n")
    checkout("b", "setup(name='p')\n")
    assert runs() == 1 and "skipped" in (tmp_path / "b.log").read_text()
    checkout("c", "setup(name='p', entry_points={})\n")  # a patch touched setup.py
    assert runs() == 2
    checkout("d", "setup(name='q')\n", ext=True)
    checkout("e", "setup(name='q')\n", ext=True)  # an in-place build is never skipped
    assert runs() == 4


def test_graders_share_a_venv_unless_one_must_install(tmp_path: Path) -> None:
    """Two checkouts whose install would change nothing grade side by side in one venv; one that
    must install first waits until the venv is free (it would swap the others' entry points)."""
    import threading

    from treefix.evals.environment import installed_checkout

    venv = Venv(tmp_path / "env" / "venv")
    venv.bin.mkdir(parents=True)
    install = f"echo x >> {tmp_path / 'count'}"

    def checkout(name: str, setup: str) -> Path:
        repo = tmp_path / name
        repo.mkdir()
        (repo / "setup.py").write_text(setup)
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "base")
        return repo

    a, b, c = checkout("a", "setup(name='p')\n"), checkout("b", "setup(name='p')\n"), checkout("c", "setup()\n")
    entered: dict[str, threading.Event] = {n: threading.Event() for n in "bc"}

    def grade(name: str, repo: Path) -> None:
        with installed_checkout(repo, venv, install, tmp_path / f"{name}.log"):
            entered[name].set()

    with installed_checkout(a, venv, install, tmp_path / "a.log"):
        tb = threading.Thread(target=grade, args=("b", b))
        tc = threading.Thread(target=grade, args=("c", c))
        tb.start()
        assert entered["b"].wait(10), "same packaging files: b must not wait for a"
        tc.start()
        assert not entered["c"].wait(1), "c must install, which waits until a is done"
    assert entered["c"].wait(10)
    tb.join()
    tc.join()
    assert len((tmp_path / "count").read_text().split()) == 2
    assert "skipped" in (tmp_path / "b.log").read_text()
