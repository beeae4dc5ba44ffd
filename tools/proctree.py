"""A process and everything it started, found through /proc and stopped together.

Test commands run in their own sessions (see sandbox.py), so killing a worker process does not
reach them: they would be reparented and keep running. Freezing the whole tree first means no
process can fork a child we have not seen before the kill.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _parents() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses
        kids.setdefault(int(fields[1]), []).append(int(entry.name))
    return kids


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children first found, then theirs)."""
    kids = _parents()
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(pid: int, rounds: int = 20) -> list[int]:
    """SIGKILL `pid` and all its descendants; returns the pids signalled. The tree is frozen
    (SIGSTOP) until it stops growing, so a fork in flight cannot leave an unseen child."""
    seen: set[int] = set()
    for _ in range(rounds):
        tree = {pid, *descendants(pid)} - seen
        if not tree:
            break
        for p in tree:
            _signal(p, signal.SIGSTOP)
        seen |= tree
    for p in seen:
        _signal(p, signal.SIGKILL)
    return sorted(seen)
