"""Drive `treefix chat` through a pseudo-terminal and read the screen a user would see.

pexpect runs the real program on an 80x24 pty; pyte replays its output on a virtual screen, so
tests assert on what is shown (after the live view's redraws), not on the raw byte stream.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pexpect
import pyte

ROWS, COLS = 24, 80


class Term:
    def __init__(self, args: list[str], cwd: Path, rows: int = ROWS, cols: int = COLS, env: dict[str, str] | None = None):
        exe = shutil.which("treefix", path=str(Path(sys.executable).parent)) or "treefix"
        clean = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        environ = {**clean, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": str(cols),
                   "LINES": str(rows), **(env or {})}  # fmt: skip
        environ.pop("NO_COLOR", None)
        self.screen = pyte.HistoryScreen(cols, rows, history=5000)
        self.stream = pyte.Stream(self.screen)
        self.log = ""  # everything shown, for the failure message
        self.child = pexpect.spawn(exe, args, cwd=str(cwd), env=environ, dimensions=(rows, cols), encoding="utf-8",
                                   codec_errors="replace")  # fmt: skip

    def _pump(self, wait: float) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout=wait)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            time.sleep(wait)
            return
        self.log += data
        self.stream.feed(data)

    def text(self) -> str:
        """The visible screen, one line per row, trailing blanks dropped."""
        return "\n".join(line.rstrip() for line in self.screen.display).rstrip()

    def wait_for(self, *needles: str, timeout: float = 60) -> str:
        """Pump output until the screen shows every needle; the screen text."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._pump(0.2)
            shown = self.text()
            if all(n in shown for n in needles):
                return shown
            if not self.child.isalive() and not self._more():
                break
        raise AssertionError(f"screen never showed {needles!r}; it shows:\n{self.text()}\n--- log tail:\n{self.log[-3000:]}")

    def _more(self) -> bool:
        try:
            data = self.child.read_nonblocking(65536, timeout=0.1)
        except (pexpect.TIMEOUT, pexpect.EOF):
            return False
        self.log += data
        self.stream.feed(data)
        return True

    def prompt(self, timeout: float = 60) -> str:
        """Wait for an empty input prompt on the last non-blank line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._pump(0.2)
            lines = [ln.rstrip() for ln in self.screen.display if ln.strip()]
            if lines and lines[-1] == ">":
                return self.text()
        raise AssertionError(f"no prompt; the screen shows:\n{self.text()}")

    def send(self, line: str) -> None:
        self.child.send(line + "\r")

    def clear(self) -> None:
        """Forget what was on screen, so the next wait_for only sees new output."""
        self.screen.reset()

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
