"""A global spend ledger on one SQLite file, shared by every worker thread and process of a batch.

Each reserve/settle is one `BEGIN IMMEDIATE` transaction, so the check and the update happen
under SQLite's write lock: parallel workers together can never cross a global limit. Open
reservations are kept per process id, so those left by a killed worker are dropped instead of
shrinking the budget forever.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS spent (id INTEGER PRIMARY KEY CHECK (id = 1),
    cost REAL NOT NULL, tokens INTEGER NOT NULL, turns INTEGER NOT NULL);
INSERT OR IGNORE INTO spent VALUES (1, 0, 0, 0);
CREATE TABLE IF NOT EXISTS open (pid INTEGER PRIMARY KEY,
    cost REAL NOT NULL, tokens INTEGER NOT NULL, turns INTEGER NOT NULL);
"""
EPS = 1e-12


@dataclass(frozen=True)
class GlobalLimits:
    cost: float = 0.0  # USD; 0 = off
    tokens: int = 0
    turns: int = 0


@dataclass(frozen=True)
class LedgerTotals:
    cost: float
    tokens: int
    turns: int
    open_cost: float
    open_tokens: int
    open_turns: int


class SqliteLedger:
    """Implements `agent.budget.Ledger`. Safe to share across threads; each process opens the file itself."""

    def __init__(self, path: Path, limits: GlobalLimits, timeout: float = 60.0):
        self.path = Path(path)
        self.limits = limits
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:  # idempotent, so workers starting together may all run it
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
        finally:
            db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # A connection per transaction: no sharing between threads, nothing to clean up at fork.
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def reserve(self, cost: float, tokens: int, turns: int) -> str | None:
        with self._tx() as db:
            self._drop_dead(db)
            t = _totals(db)
            lim = self.limits
            if lim.turns and t.turns + t.open_turns + turns > lim.turns:
                return "turns"
            if lim.tokens and t.tokens + t.open_tokens + tokens > lim.tokens:
                return "tokens"
            if lim.cost and t.cost + t.open_cost + cost > lim.cost + EPS:
                return "cost"
            db.execute(
                "INSERT INTO open VALUES (?, ?, ?, ?) ON CONFLICT(pid) DO UPDATE SET "
                "cost = cost + excluded.cost, tokens = tokens + excluded.tokens, turns = turns + excluded.turns",
                (os.getpid(), cost, tokens, turns),
            )
        return None

    def settle(self, reserved: tuple[float, int, int], actual: tuple[float, int, int]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE open SET cost = MAX(cost - ?, 0), tokens = MAX(tokens - ?, 0), turns = MAX(turns - ?, 0) "
                "WHERE pid = ?",
                (*reserved, os.getpid()),
            )
            db.execute("DELETE FROM open WHERE pid = ? AND turns = 0", (os.getpid(),))
            db.execute("UPDATE spent SET cost = cost + ?, tokens = tokens + ?, turns = turns + ?", actual)

    def totals(self) -> LedgerTotals:
        with self._tx() as db:
            return _totals(db)

    @staticmethod
    def _drop_dead(db: sqlite3.Connection) -> None:
        for (pid,) in db.execute("SELECT pid FROM open").fetchall():
            if not _alive(pid):
                db.execute("DELETE FROM open WHERE pid = ?", (pid,))


def _totals(db: sqlite3.Connection) -> LedgerTotals:
    cost, tokens, turns = db.execute("SELECT cost, tokens, turns FROM spent").fetchone()
    oc, ot, on = db.execute(
        "SELECT COALESCE(SUM(cost), 0), COALESCE(SUM(tokens), 0), COALESCE(SUM(turns), 0) FROM open"
    ).fetchone()
    return LedgerTotals(cost, tokens, turns, oc, ot, on)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
