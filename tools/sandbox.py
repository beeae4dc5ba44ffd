"""Run commands with a timeout, bounded output, a minimal environment and no stray processes left behind.

Every command gets `sandbox_env`'s environment (no provider keys, an empty private HOME) and its
output is scrubbed of secrets. BubblewrapSandbox also confines it: see `tools/confine.py`.
"""

from __future__ import annotations

import copy
import functools
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from treefix.tools.confine import hidden_paths, shown_paths
from treefix.tools.secrets import scrub
from treefix.tools.testenv import sandbox_env

HEAD_LIMIT = 20_000
TAIL_LIMIT = 20_000
KILL_GRACE = 2.0
MAX_OUTPUT = 256 * 2**20  # bytes read before a command that only prints is stopped
MARKER = "TREEFIX_SANDBOX"  # in every command's environment: finds processes that left its group


@dataclass
class RunResult:
    exit_code: int | None  # None when killed by timeout
    output: str  # stdout and stderr interleaved, cut to head + tail
    timed_out: bool
    duration: float
    output_limited: bool = False  # stopped for printing more than the sandbox's max_output

    @property
    def stopped(self) -> str:
        """Why the sandbox stopped the command, in words; empty when it ended by itself."""
        if self.timed_out:
            return f"timed out after {self.duration:.0f}s"
        return "stopped: it printed more than the output limit" if self.output_limited else ""

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
        self.total = 0
        self.notes: list[str] = []

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        excess = len(self.tail) - self.tail_limit
        if excess > 0:
            del self.tail[:excess]
            self.cut += excess

    def note(self, line: str) -> None:
        self.notes.append(line)

    def text(self) -> str:
        head = self.head.decode(errors="replace")
        tail = self.tail.decode(errors="replace")
        text = head + tail if not self.cut else f"{head}\n[... {self.cut} bytes cut ...]\n{tail}"
        for line in self.notes:
            text += ("\n" if text and not text.endswith("\n") else "") + line + "\n"
        return text


def whole_output(box: Sandbox) -> Sandbox:
    """`box` keeping all of a command's output (up to its stop limit) instead of head and tail:
    a log parser reads every line, and a test cut from the middle would count as failed."""
    wide = copy.copy(box)
    if hasattr(wide, "head"):
        wide.head = max(wide.head, getattr(wide, "max_output", 0))
    return wide


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


def _sweep(marker: str, rounds: int = 50) -> None:
    """SIGKILL every process whose environment carries `marker` (those that called setsid, a fork
    bomb's offspring), until none is left."""
    needle = f"{MARKER}={marker}\0".encode()
    for _ in range(rounds):
        found = False
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if needle in (proc / "environ").read_bytes():
                    os.kill(int(proc.name), signal.SIGKILL)
                    found = True
            except (OSError, ValueError):  # gone, or not ours to read
                continue
        if not found:
            return
        time.sleep(0.02)


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

    sweeps = True  # look for processes that left the group (setsid) after each command

    def __init__(
        self,
        head: int = HEAD_LIMIT,
        tail: int = TAIL_LIMIT,
        grace: float = KILL_GRACE,
        max_output: int = MAX_OUTPUT,
    ):
        self.head, self.tail, self.grace, self.max_output = head, tail, grace, max_output

    def argv(self, cmd: str | list[str], cwd: Path, env: dict[str, str] | None = None) -> list[str]:
        return ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)

    def run(
        self, cmd: str | list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None
    ) -> RunResult:
        """Run `cmd` in `cwd` with the minimal environment plus `env` (the task's own variables)."""
        cwd = Path(cwd).resolve()
        start = time.monotonic()
        marker = uuid.uuid4().hex
        with _private_home() as home:
            full_env = {**sandbox_env(env, str(home)), MARKER: marker}
            proc = subprocess.Popen(
                self.argv(cmd, cwd, full_env),
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            capture = _Capture(self.head, self.tail)
            stop = self._pump(proc, capture, start + timeout)
            exit_code = proc.wait()
            if self.sweeps:
                _sweep(marker)  # setsid'd children escape the group kill
        if stop == "output":
            capture.note(f"[treefix: stopped after {capture.total // 2**20} MB of output]")
        output = scrub(capture.text())  # a secret the command found anyway is not stored
        return RunResult(
            exit_code if stop is None else None,
            output,
            stop == "timeout",
            time.monotonic() - start,
            stop == "output",
        )

    def _pump(self, proc: subprocess.Popen, capture: _Capture, deadline: float) -> str | None:
        """Read output until the command ends; returns why it was killed ("timeout", "output"), if it was."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        is_open = True
        try:
            while True:
                now = time.monotonic()
                if now >= deadline or capture.total > self.max_output:
                    _kill_group(proc.pid, self.grace)
                    if is_open and now >= deadline:
                        self._drain(sel, fd, capture, self.grace)
                    return "timeout" if now >= deadline else "output"
                if _exited(proc.pid):
                    # The command is over: background children go with it. What they already
                    # wrote stays readable in the pipe.
                    _signal_group(proc.pid, signal.SIGKILL)
                    if is_open:
                        self._drain(sel, fd, capture, self.grace)
                    return None
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


@contextmanager
def _private_home() -> Iterator[Path]:
    """An empty HOME for one command, so `~/.ssh`, `~/.netrc` and tool configs are not where it looks."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=scratch_root()))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


class BubblewrapSandbox(SubprocessSandbox):
    """bwrap: read-only system, homes and secrets hidden, writable cwd and scratch folder, private
    /tmp, own process namespace (the caller's /proc is out of sight), no capabilities, no network."""

    sweeps = False  # the process namespace dies with the command, and every process in it

    def __init__(self, network: bool = False, **limits: float):
        super().__init__(**limits)  # type: ignore[arg-type]
        self.network = network

    def argv(self, cmd: str | list[str], cwd: Path, env: dict[str, str] | None = None) -> list[str]:
        scratch = str(scratch_root())
        hidden = hidden_paths(cwd)
        wrap = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for path in _outermost([p for p in hidden if not p.is_relative_to("/tmp")]):
            wrap += ["--tmpfs", str(path)]
        wrap += ["--bind", scratch, scratch]
        for path in shown_paths(cwd, env or {}, cmd, hidden):  # after scratch: a plugin there stays read-only
            wrap += ["--ro-bind", str(path), str(path)]
        wrap += ["--bind", str(cwd), str(cwd), "--chdir", str(cwd)]
        wrap += ["--unshare-pid", "--unshare-ipc", "--die-with-parent"]
        wrap += [] if self.network else ["--unshare-net"]
        wrap += ["--cap-drop", "ALL"] if os.geteuid() == 0 else []  # root could unmount what hides homes
        return wrap + ["--", *super().argv(cmd, cwd)]


def _outermost(paths: list[Path]) -> list[Path]:
    kept: list[Path] = []
    for p in sorted(paths, key=lambda p: len(p.parts)):
        if not any(p.is_relative_to(k) for k in kept):
            kept.append(p)
    return kept


@functools.cache
def bwrap_works(network: bool = False) -> bool:
    """Probe once: bwrap may be installed yet unusable (no user namespaces in a container)."""
    if shutil.which("bwrap") is None:
        return False
    probe = BubblewrapSandbox(network=network).run(["true"], Path(tempfile.gettempdir()), timeout=10)
    return probe.exit_code == 0


UNCONFINED = (
    "bubblewrap (bwrap) is not available: tests run unconfined. They get no provider keys and an "
    "empty HOME, but can read your files, write outside the worktree and use the network; "
    "install bubblewrap to contain them"
)


@functools.cache
def _say_unconfined() -> None:
    warnings.warn(UNCONFINED, stacklevel=3)


def default_sandbox(network: bool = False) -> Sandbox:
    """bubblewrap when it works here; else the plain fallback, said once per process (= per run)."""
    if bwrap_works(network):
        return BubblewrapSandbox(network=network)
    _say_unconfined()
    return SubprocessSandbox()
