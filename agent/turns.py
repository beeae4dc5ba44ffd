"""Turn control: how many model turns a tool loop and a run may take, and when to grant more.

`none`: the budget's limits alone. `fixed`: a cap per tool loop (`turns_per_node`) and per run
(`turn_cap`), with reminders that say how many turns are left as the cap nears. `dynamic`: smaller
initial caps, extended while the evidence says the search still improves (the best value rose in
the last k nodes, a reproduction newly passes, the model asked with a reason), never past the hard
caps (`turns_per_node` per loop, `turn_cap` or `max_turns` per run). Every grant is an event.

Hard caps are enforced by the budget (a fixed run cap becomes the budget's turn limit); the soft
run cap of `dynamic` is checked between nodes, so a node in flight may finish past it, never past
the hard cap.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from treefix.agent.errors import ConfigError

MODES = ("none", "fixed", "dynamic")
REMIND_AT = 3  # reminders start when this many turns (or fewer) are left
INITIAL_SHARE = 0.5  # dynamic: the initial cap as a share of the hard cap
STEP_SHARE = 0.25  # dynamic: one run extension as a share of the initial cap (1/8 of the hard cap by default)
RISE = 0.0  # dynamic: how much the best value must rise within the window to count as progress
ASK_RE = re.compile(r"^\s*EXTEND:\s*(\S.*)$", re.M | re.I)  # the model asks for turns, with a reason

Emit = Callable[[str, dict[str, Any]], None]


def asked(text: str) -> str:
    """The reason of an `EXTEND: reason` line in a reply, or ""."""
    m = ASK_RE.search(text or "")
    return m.group(1).strip()[:200] if m else ""


def reminder(left: int, scope: str, can_ask: bool) -> str:
    """What the model is told when `left` turns remain in `scope` ("step" or "run")."""
    text = f"Turn reminder: {left} turn{'s' if left != 1 else ''} left for this {scope}."
    if left <= 1:
        text += " Give your final answer on your next turn."
    if can_ask:
        text += " If you need more turns, start a line with `EXTEND:` and say why."
    return text


@dataclass
class LoopCaps:
    """The turn state of one tool loop (a plan's look-around)."""

    control: TurnControl
    cap: int
    hard: int
    used: int = 0
    scope: str = ""  # what the last reminder spoke of: "step", "run" or "" (none)

    def reminder(self) -> str | None:
        """The reminder to send before the next turn, or None (mode none, or far from the cap)."""
        self.scope = ""
        if self.control.mode == "none":
            return None
        left = self.cap - self.used
        run_left = self.control.run_left()
        if run_left is not None and run_left < left:
            if run_left <= REMIND_AT:
                self.scope = "run"
                return reminder(max(run_left, 0), "run", self.control.mode == "dynamic")
            return None
        if left > REMIND_AT:
            return None
        self.scope = "step"
        return reminder(left, "step", self.control.mode == "dynamic" and self.cap < self.hard)

    def after(self, reply_text: str) -> None:
        """A turn was taken; in dynamic mode an ask extends what the last reminder spoke of: the run
        (evidence for its next extension) or, at the end of its allowance, this loop."""
        self.used += 1
        reason = asked(reply_text)
        if reason and self.control.mode == "dynamic":
            if self.scope == "run":  # a step's ask says nothing about the run's progress
                self.control.ask(reason)
            elif self.used >= self.cap and self.cap < self.hard:
                step = max(1, math.ceil(self.hard / 4))  # a loop is short: a quarter of its hard cap
                self.cap = min(self.hard, self.cap + step)
                self.control.grant("loop", f"model asked: {reason}", self.cap)

    @property
    def left(self) -> int:
        return max(self.cap - self.used, 0)


@dataclass
class TurnControl:
    mode: str = "none"
    run_cap: int = 0  # the hard cap of the run; 0: none (only for mode none)
    window: int = 3  # dynamic: k, the nodes in which the best value must have risen
    emit: Emit = field(default=lambda kind, data: None)
    spent: Callable[[], int] = field(default=lambda: 0)  # the run's turns so far
    cap: int = 0  # the current run cap
    start: int = 0  # dynamic: the initial run cap; 0: half the hard cap
    grants: list[dict[str, Any]] = field(default_factory=list)
    _asks: list[str] = field(default_factory=list)
    _repro_seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown turn control {self.mode!r}; choose one of {', '.join(MODES)}")
        self.first = self.run_cap
        if self.mode == "dynamic":
            self.first = min(self.start, self.run_cap) if self.start else initial(self.run_cap)
        if not self.cap:
            self.cap = self.first

    # ---- tool loops ----------------------------------------------------------------------------
    def loop(self, hard: int) -> LoopCaps:
        """The caps of one tool loop of at most `hard` turns (turns_per_node less the answer's)."""
        first = initial(hard) if self.mode == "dynamic" else hard
        return LoopCaps(self, first, hard)

    def run_left(self) -> int | None:
        return None if self.mode == "none" or not self.cap else self.cap - self.spent()

    def ask(self, reason: str) -> None:
        with self._lock:
            self._asks.append(reason)

    # ---- the run -------------------------------------------------------------------------------
    def over(self, values: list[float], reproductions: int) -> str | None:
        """Between nodes: None to go on, else why the run stops. `values`: node values in creation
        order; `reproductions`: how many reproductions pass so far. May grant an extension."""
        if self.mode == "none" or not self.cap or self.spent() < self.cap:
            return None
        if self.mode == "fixed" or self.cap >= self.run_cap:
            return "turn_cap"
        reason = self.evidence(values, reproductions)
        if not reason:
            return "turn_cap"
        step = max(1, math.ceil(self.first * STEP_SHARE))
        self.cap = min(self.run_cap, max(self.cap, self.spent()) + step)
        self.grant("run", reason, self.cap)
        return None

    def evidence(self, values: list[float], reproductions: int) -> str:
        """Why the search still improves, or "" when nothing says so. Asks are used up by a grant."""
        k = self.window
        recent, before = values[-k:], values[:-k]
        new_repro, self._repro_seen = reproductions > self._repro_seen, max(reproductions, self._repro_seen)
        with self._lock:
            ask, self._asks = (self._asks[-1] if self._asks else ""), []
        if recent and max(recent) > max(before, default=0.0) + RISE:
            return f"best value rose to {max(recent):.3f} within the last {k} nodes"
        if new_repro:
            return "a reproduction newly passes"
        if ask:
            return f"model asked: {ask}"
        return ""

    def grant(self, scope: str, reason: str, cap: int) -> None:
        with self._lock:
            self.grants.append({"scope": scope, "reason": reason, "cap": cap, "at": self.spent()})
        self.emit("turn_extension", {"scope": scope, "reason": reason, "cap": cap, "turns": self.spent()})


def initial(hard: int) -> int:
    return max(1, math.ceil(hard * INITIAL_SHARE)) if hard else 0


# ---- caps from earlier runs ----------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100), linear between closest ranks."""
    if not values:
        raise ValueError("no values")
    xs = sorted(values)
    pos = (len(xs) - 1) * min(max(p, 0.0), 100.0) / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


CAP_RE = re.compile(r"^p(\d{1,2}):(.+)$")


def parse_turn_cap(value: str) -> int:
    """`N`, or `pNN:RUN_DIR`: the NN-th percentile of turns per instance of an earlier batch run
    (or of the runs under a folder of `treefix fix` runs). ConfigError for anything else."""
    value = value.strip()
    if value.isdigit():
        return int(value)
    m = CAP_RE.match(value)
    if not m:
        raise ConfigError(f"--turn-cap {value!r}: give a number of turns or pNN:RUN_DIR (e.g. p75:runs/base)")
    turns = turns_per_instance(Path(m.group(2)))
    return max(1, math.ceil(percentile([float(t) for t in turns], float(m.group(1)))))


def turns_per_instance(path: Path) -> list[int]:
    """Turns of every finished run under `path`: a batch run folder or one or more `fix` runs."""
    import json

    if not path.is_dir():
        raise ConfigError(f"--turn-cap: {path} is not a folder")
    if (path / "preds.json").is_file():  # a batch run: its instances' summaries, as the report reads them
        try:
            ids = list(json.loads((path / "preds.json").read_text()))
        except (OSError, ValueError) as e:
            raise ConfigError(f"--turn-cap: {path / 'preds.json'} is not readable ({e})") from None
        summaries = [path / iid / "summary.json" for iid in ids]
    else:
        summaries = sorted(path.glob("**/summary.json"))
    turns = []
    for summary in summaries:
        try:
            data = json.loads(summary.read_text())
            turns.append(int(data["usage"]["turns"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not turns:
        raise ConfigError(f"--turn-cap: no run summaries with turns under {path}")
    return turns
