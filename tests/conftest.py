"""Shared fixtures: small real git repositories."""

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

DEFAULT_FILES = {
    "README.md": "# demo\n",
    "pkg/__init__.py": "",
    "pkg/calc.py": "def add(a, b):\n    return a + b\n",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path, files: dict[str, str]) -> Path:
    """A git repository at `path` with `files` committed on branch main; returns the path."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for key, value in {
        "user.name": "Test",
        "user.email": "test@example.com",
        "commit.gpgsign": "false",
    }.items():
        git(path, "config", key, value)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", DEFAULT_FILES)


def node_ids(db: Path) -> list[str]:
    """The node ids in a run store, read with plain sqlite3 while another process may be writing."""
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT id FROM nodes ORDER BY seq")]
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        con.close()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A tiny evaluation instance and a cache dir whose venv is already built (building takes seconds)."""
    from test_environment import tiny_instance, tiny_sdist

    from treefix.evals.environment import ensure_venv

    base = tmp_path_factory.mktemp("tiny")
    inst = tiny_instance(tiny_sdist(base))
    cache = base / "cache"
    ensure_venv(inst, cache)
    return inst, cache


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    """Our fake OpenAI/Anthropic server on 127.0.0.1, stopped after the test."""
    from fakeserver import FakeServer

    with FakeServer() as s:
        yield s


def kill_when_stored(cmd: list[str], db: Path, nodes: int, env: dict | None = None) -> list[str]:
    """Start `cmd` in its own session, SIGKILL its whole group once `db` holds `nodes` nodes (a crash
    mid-run), and return the node ids stored by then."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    deadline = time.time() + 120
    while len(node_ids(db)) < nodes and time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return node_ids(db)
