import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from treefix.tools.sandbox import (
    BubblewrapSandbox,
    SubprocessSandbox,
    bwrap_works,
    default_sandbox,
    scratch_root,
)

SANDBOXES = [SubprocessSandbox]
if bwrap_works():
    SANDBOXES.append(BubblewrapSandbox)


@pytest.fixture(params=SANDBOXES, ids=lambda cls: cls.__name__)
def sandbox(request):
    return request.param(grace=0.5)


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (zombies may wait long for a reaper)."""
    deadline = time.monotonic() + 2  # SIGKILL is delivered asynchronously
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True


def test_exit_code_and_combined_output(sandbox, tmp_path):
    result = sandbox.run("echo out; echo err >&2; exit 3", tmp_path, timeout=10)
    assert (result.exit_code, result.timed_out) == (3, False)
    assert result.output == "out\nerr\n"
    assert sandbox.run(["true"], tmp_path, timeout=10).exit_code == 0


def test_env_is_merged_onto_os_environ(sandbox, tmp_path):
    result = sandbox.run('echo "$TREEFIX_X:${PATH:+has-path}"', tmp_path, timeout=10, env={"TREEFIX_X": "1"})
    assert result.output == "1:has-path\n"


def test_runs_in_cwd_and_can_write_there(sandbox, tmp_path):
    result = sandbox.run("pwd; echo hi > f.txt", tmp_path, timeout=10)
    assert result.output.strip() == str(tmp_path.resolve())
    assert (tmp_path / "f.txt").read_text() == "hi\n"


def test_timeout_kills_the_whole_process_tree(sandbox, tmp_path):
    cmd = "sleep 100 & echo $! > child.pid; bash -c 'sleep 100 & echo $! > grandchild.pid; wait' & echo started; sleep 100"
    result = sandbox.run(cmd, tmp_path, timeout=1)
    assert result.timed_out and result.exit_code is None
    assert result.duration < 5
    assert "started" in result.output  # output before the kill is kept
    for name in ("child.pid", "grandchild.pid"):
        assert not alive(int((tmp_path / name).read_text()))


def test_sigterm_ignored_then_sigkill(sandbox, tmp_path):
    result = sandbox.run("trap '' TERM; sleep 100 & echo $! > child.pid; wait", tmp_path, timeout=0.5)
    assert result.timed_out and result.duration < 4
    assert not alive(int((tmp_path / "child.pid").read_text()))


def test_background_children_do_not_outlive_the_command(sandbox, tmp_path):
    result = sandbox.run("sleep 100 & echo $! > child.pid; echo done", tmp_path, timeout=10)
    assert (result.exit_code, result.output, result.timed_out) == (0, "done\n", False)
    assert result.duration < 3
    assert not alive(int((tmp_path / "child.pid").read_text()))


def test_output_is_cut_to_head_and_tail(tmp_path):
    sandbox = SubprocessSandbox(head=100, tail=100)
    script = "import sys; sys.stdout.write('a' * 1000 + 'b' * 1000 + 'c' * 1000)"
    result = sandbox.run([sys.executable, "-c", script], tmp_path, timeout=10)
    assert result.output.startswith("a" * 100 + "\n[... 2800 bytes cut ...]\n")
    assert result.output.endswith("\n" + "c" * 100)


def test_large_output_does_not_deadlock(sandbox, tmp_path):
    result = sandbox.run("head -c 20000000 /dev/zero | tr '\\0' x; echo; echo end", tmp_path, timeout=20)
    assert result.exit_code == 0 and not result.timed_out
    assert result.output.endswith("x\nend\n")
    assert len(result.output) < 41_000


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not usable here")
def test_bubblewrap_isolation(tmp_path):
    sandbox = BubblewrapSandbox()
    assert "Read-only" in sandbox.run("touch /usr/treefix-probe", tmp_path, timeout=10).output
    (scratch_root() / "probe").unlink(missing_ok=True)
    assert sandbox.run(f"touch {scratch_root()}/probe", tmp_path, timeout=10).exit_code == 0
    assert (scratch_root() / "probe").exists()
    interfaces = [sys.executable, "-c", "import socket; print([n for _, n in socket.if_nameindex()])"]
    assert sandbox.run(interfaces, tmp_path, timeout=10).output == "['lo']\n"


def test_default_sandbox_runs_commands(tmp_path):
    sandbox = default_sandbox()
    assert isinstance(sandbox, BubblewrapSandbox if bwrap_works() else SubprocessSandbox)
    assert sandbox.run("echo ok", tmp_path, timeout=10).output == "ok\n"


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not installed or cannot run here")
def test_bubblewrap_keeps_a_venv_under_tmp_visible(tmp_path):
    venv = Path(tempfile.mkdtemp(prefix="venv-", dir="/tmp"))
    (venv / "bin").mkdir()
    tool = venv / "bin" / "hello-from-venv"
    tool.write_text("#!/bin/sh\necho visible\n")
    tool.chmod(0o755)
    env = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    result = BubblewrapSandbox().run("hello-from-venv && touch $VIRTUAL_ENV/x", tmp_path, timeout=10, env=env)
    assert "visible" in result.output
    assert not (venv / "x").exists()  # read-only inside the sandbox
    shutil.rmtree(venv)
