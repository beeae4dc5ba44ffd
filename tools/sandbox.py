"""Run commands with a timeout, bounded output and no stray processes left behind."""

from __future__ import annotations

import functools
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

HEAD_LIMIT = 20_000
TAIL_LIMIT = 20_000
KILL_GRACE = 2.0


@dataclass
class RunResult:
    exit_code: int | None  # None when killed by timeout
    output: str  # stdout and stderr interleaved, cut to head + tail
    timed_out: bool
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Sandbox(Protocol):
    def run(
        self, cmd: str | list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None
    ) -> RunResult: ...


def scratch_root() -> Path:
    """A host folder that every sandbox can write to, for result files such as junit XML.

    BubblewrapSandbox hides the host's /tmp behind a private one, so files meant to be read back
    by the caller must live here.
    """
    root = Path(tempfile.gettempdir()) / f"treefix-scratch-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


class _Capture:
    """Keeps the first `head` and last `tail` bytes of a stream, counting what falls between."""

    def __init__(self, head: int, tail: int):
        self.head_limit, self.tail_limit = head, tail
        self.head = bytearray()
        self.tail = bytearray()
        self.cut = 0

    def add(self, data: bytes) -> None:
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        excess = len(self.tail) - self.tail_limit
        if excess > 0:
            del self.tail[:excess]
            self.cut += excess

    def text(self) -> str:
        head = self.head.decode(errors="replace")
        tail = self.tail.decode(errors="replace")
        if not self.cut:
            return head + tail
        return f"{head}\n[... {self.cut} bytes cut ...]\n{tail}"


def shorten(text: str, head: int, tail: int) -> str:
    """`text` cut to its first `head` and last `tail` bytes, with a note of how much was cut."""
    capture = _Capture(head, tail)
    capture.add(text.encode())
    return capture.text()


def _exited(pid: int) -> bool:
    """Has the child exited? Leaves it unreaped, so its pid, the group id, cannot be reused yet."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(pid: int, grace: float) -> None:
    """SIGTERM the whole group, give the leader `grace` seconds, then SIGKILL whatever is left."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while not _exited(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    _signal_group(pid, signal.SIGKILL)


class SubprocessSandbox:
    """Plain subprocess in its own session; the process group is the unit that gets killed."""

    def __init__(self, head: int = HEAD_LIMIT, tail: int = TAIL_LIMIT, grace: float = KILL_GRACE):
        self.head, self.tail, self.grace = head, tail, grace

    def argv(self, cmd: str | list[str], cwd: Path, env: dict[str, str] | None = None) -> list[str]:
        return ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)

    def run(
        self, cmd: str | list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None
    ) -> RunResult:
        cwd = Path(cwd).resolve()
        start = time.monotonic()
        proc = subprocess.Popen(
            self.argv(cmd, cwd, env),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        capture = _Capture(self.head, self.tail)
        timed_out = self._pump(proc, capture, start + timeout)
        exit_code = proc.wait()
        return RunResult(
            None if timed_out else exit_code, capture.text(), timed_out, time.monotonic() - start
        )

    def _pump(self, proc: subprocess.Popen, capture: _Capture, deadline: float) -> bool:
        """Read output until the command ends; returns True when the deadline killed it."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        is_open = True
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    _kill_group(proc.pid, self.grace)
                    if is_open:
                        self._drain(sel, fd, capture, self.grace)
                    return True
                if _exited(proc.pid):
                    # The command is over: background children go with it. What they already
                    # wrote stays readable in the pipe.
                    _signal_group(proc.pid, signal.SIGKILL)
                    if is_open:
                        self._drain(sel, fd, capture, self.grace)
                    return False
                wait = min(0.05, deadline - now)
                if not is_open:
                    time.sleep(wait)
                elif sel.select(wait):
                    data = os.read(fd, 65536)
                    if data:
                        capture.add(data)
                    else:
                        is_open = False
        finally:
            sel.close()
            proc.stdout.close()

    @staticmethod
    def _drain(sel: selectors.BaseSelector, fd: int, capture: _Capture, limit: float) -> None:
        # `limit` guards against a process that escaped the group and still holds the pipe.
        end = time.monotonic() + limit
        while (left := end - time.monotonic()) > 0 and sel.select(left):
            data = os.read(fd, 65536)
            if not data:
                return
            capture.add(data)


class BubblewrapSandbox(SubprocessSandbox):
    """bwrap: read-only system, writable cwd and scratch folder, private /tmp, no network."""

    def __init__(self, network: bool = False, **limits: float):
        super().__init__(**limits)  # type: ignore[arg-type]
        self.network = network

    def argv(self, cmd: str | list[str], cwd: Path, env: dict[str, str] | None = None) -> list[str]:
        scratch = str(scratch_root())
        wrap = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for path in _tmp_paths_in(env or {}):  # a venv under /tmp must stay visible, read-only
            wrap += ["--ro-bind", path, path]
        wrap += ["--bind", scratch, scratch, "--bind", str(cwd), str(cwd), "--chdir", str(cwd)]
        wrap += ["--die-with-parent"] + ([] if self.network else ["--unshare-net"])
        return wrap + ["--", *super().argv(cmd, cwd)]


def _tmp_paths_in(env: dict[str, str]) -> list[str]:
    """Existing folders under /tmp that the command's environment points at (VIRTUAL_ENV, PATH)."""
    candidates = [env.get("VIRTUAL_ENV", ""), *env.get("PATH", "").split(os.pathsep)]
    tmp = Path("/tmp")
    found = []
    for c in candidates:
        p = Path(c) if c else None
        if p and p.is_absolute() and p.is_dir() and p.resolve().is_relative_to(tmp) and str(p) not in found:
            found.append(str(p))
    return found


@functools.cache
def bwrap_works(network: bool = False) -> bool:
    """Probe once: bwrap may be installed yet unusable (no user namespaces in a container)."""
    if shutil.which("bwrap") is None:
        return False
    probe = BubblewrapSandbox(network=network).run(["true"], Path(tempfile.gettempdir()), timeout=10)
    return probe.exit_code == 0


def default_sandbox(network: bool = False) -> Sandbox:
    return BubblewrapSandbox(network=network) if bwrap_works(network) else SubprocessSandbox()
