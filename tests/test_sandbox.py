import os
import shutil
import sys
import tempfile
import time
import uuid
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


def running(marker: str) -> bool:
    """Does a live (not zombie) process carry `marker` in its command line? Waits up to 2 s for
    it to go. Markers, not pids: inside bubblewrap's process namespace `$!` is not a host pid."""
    deadline = time.monotonic() + 2  # SIGKILL is delivered asynchronously
    while time.monotonic() < deadline:
        alive = False
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if marker.encode() in (proc / "cmdline").read_bytes():
                    alive = alive or (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
        if not alive:
            return False
        time.sleep(0.05)
    return True


def marked_sleep(marker: str) -> str:
    return f"(exec -a {marker} sleep 100)"


def test_exit_code_and_combined_output(sandbox, tmp_path):
    result = sandbox.run("echo out; echo err >&2; exit 3", tmp_path, timeout=10)
    assert (result.exit_code, result.timed_out) == (3, False)
    assert result.output == "out\nerr\n"
    assert sandbox.run(["true"], tmp_path, timeout=10).exit_code == 0


def test_task_env_is_added_to_the_minimal_env(sandbox, tmp_path):
    result = sandbox.run('echo "$TREEFIX_X:${PATH:+has-path}"', tmp_path, timeout=10, env={"TREEFIX_X": "1"})
    assert result.output == "1:has-path\n"


def test_runs_in_cwd_and_can_write_there(sandbox, tmp_path):
    result = sandbox.run("pwd; echo hi > f.txt", tmp_path, timeout=10)
    assert result.output.strip() == str(tmp_path.resolve())
    assert (tmp_path / "f.txt").read_text() == "hi\n"


def test_timeout_kills_the_whole_process_tree(sandbox, tmp_path):
    child, grandchild = f"tfx-child-{uuid.uuid4().hex}", f"tfx-grandchild-{uuid.uuid4().hex}"
    cmd = f"{marked_sleep(child)} & bash -c '{marked_sleep(grandchild)} & wait' & echo started; sleep 100"
    result = sandbox.run(cmd, tmp_path, timeout=1)
    assert result.timed_out and result.exit_code is None
    assert result.duration < 5
    assert "started" in result.output  # output before the kill is kept
    assert not running(child) and not running(grandchild)


def test_sigterm_ignored_then_sigkill(sandbox, tmp_path):
    child = f"tfx-child-{uuid.uuid4().hex}"
    result = sandbox.run(f"trap '' TERM; {marked_sleep(child)} & wait", tmp_path, timeout=0.5)
    assert result.timed_out and result.duration < 4
    assert not running(child)


def test_background_children_do_not_outlive_the_command(sandbox, tmp_path):
    child = f"tfx-child-{uuid.uuid4().hex}"
    result = sandbox.run(f"{marked_sleep(child)} & sleep 0.2; echo done", tmp_path, timeout=10)
    assert (result.exit_code, result.output, result.timed_out) == (0, "done\n", False)
    assert result.duration < 3
    assert not running(child)


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


# --- abuse: a command that forks without end, prints without end, or never returns ------------


def test_printing_without_end_is_stopped_and_said(sandbox, tmp_path):
    sandbox.max_output = 8 * 2**20
    result = sandbox.run("echo first; yes", tmp_path, timeout=60)
    assert result.output_limited and not result.timed_out and result.exit_code is None
    assert result.duration < 30  # stopped by the output limit, long before the timeout
    assert result.output.startswith("first\n") and result.output.endswith("MB of output]\n")
    assert "stopped" in result.stopped and len(result.output) < 41_000


def test_processes_that_leave_the_group_are_killed_too(sandbox, tmp_path):
    marker = f"tfx-bomb-{uuid.uuid4().hex}"
    # setsid puts each child in its own session: a process-group kill alone would miss them all.
    cmd = f"for i in $(seq 200); do setsid bash -c 'exec -a {marker} sleep 100' & done; echo spawned"
    result = sandbox.run(cmd, tmp_path, timeout=30)
    assert result.exit_code == 0 and "spawned" in result.output
    assert not running(marker)


def test_forking_without_end_is_contained_by_the_timeout(sandbox, tmp_path):
    marker = f"tfx-fork-{uuid.uuid4().hex}"
    # Fork as fast as it can, each child escaping the group, until the deadline (a bounded fork bomb).
    cmd = f"while true; do setsid bash -c 'exec -a {marker} sleep 100' & done"
    result = sandbox.run(cmd, tmp_path, timeout=1)
    assert result.timed_out and result.stopped.startswith("timed out")
    assert not running(marker)


def test_sleeping_forever_is_stopped_at_the_deadline(sandbox, tmp_path):
    result = sandbox.run("echo waiting; sleep infinity", tmp_path, timeout=0.5)
    assert result.timed_out and result.output == "waiting\n" and result.duration < 4
