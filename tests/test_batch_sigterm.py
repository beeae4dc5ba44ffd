"""SIGTERM on `treefix swebench run` (a scheduler, `kill`, a CI timeout) ends every process it
started: the workers and the test commands they run, which live in sessions of their own."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from batchdata import TEST_CMD, shared_batch_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return shared_batch_data(tmp_path_factory)


def _tree(root: int) -> dict[int, str]:
    """pid -> command line of every live process below `root`, read from /proc."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for pid in kids.get(todo.pop(), []):
            found[pid] = _cmdline(pid) or ""
            todo.append(pid)
    return found


def _cmdline(pid: int) -> str | None:
    """The command line of a live (not zombie) process, else None."""
    try:
        if (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) == "Z":
            return None
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def test_sigterm_ends_every_worker_and_test_process(data, tmp_path):
    slow = tmp_path / "slow.jsonl"
    lines = [json.loads(line) for line in data.dataset.read_text().splitlines()][:2]
    slow.write_text("".join(json.dumps({**inst, "test_cmd": f"sleep 300; {TEST_CMD}"}) + "\n" for inst in lines))
    out = tmp_path / "out"
    args = [*data.run_args(out, "-w", "2"), "--dataset", str(slow)]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from treefix.agent.cli import main; main()", "swebench", "run", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # both workers are inside a test run
            started = _tree(proc.pid)
            if sum(cmd.startswith("sleep 300") for cmd in started.values()) == 2:
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        else:
            raise AssertionError(f"the two test runs did not start: {started}")
        proc.send_signal(signal.SIGTERM)  # the runner alone, as a scheduler sends it
        assert proc.wait(timeout=60) != 0
        # the test commands and workers are killed; the idle fork server leaves when it sees the
        # runner gone, which can take a few seconds on a loaded machine
        deadline = time.monotonic() + 30
        while (left := {p: c for p in started if (c := _cmdline(p)) is not None and c == started[p]}) and (
            time.monotonic() < deadline
        ):
            assert not any(c.startswith(("sleep", "bash", "bwrap")) for c in left.values()), left
            time.sleep(0.5)
        assert not left, f"still running after SIGTERM: {left}"
    finally:
        for pid in started:  # whatever the outcome, leave nothing behind for the next test
            if _cmdline(pid) == started[pid]:
                subprocess.run(["kill", "-9", str(pid)], check=False)
        if proc.poll() is None:
            proc.kill()
