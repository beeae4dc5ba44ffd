"""The run store: one SQLite file (WAL) per run holding the task, the nodes and the events.

Every node is written through as soon as it is made or changed, so a process killed at any
point leaves every node it had made on disk. Reads come from an in-memory mirror that is
rebuilt from the file on resume.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from treefix.agent.tree import Node

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, parent TEXT, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL, kind TEXT, data TEXT);
"""


class RunStore:
    def __init__(self, path: Path):
        self.file = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._nodes: dict[str, Node] = {}
        self._children: dict[str, list[str]] = {}
        for (data,) in self._db.execute("SELECT data FROM nodes ORDER BY seq"):
            self._remember(Node.from_dict(json.loads(data)))

    def _remember(self, node: Node) -> None:
        if node.id not in self._nodes and node.parent is not None:
            self._children.setdefault(node.parent, []).append(node.id)
        self._nodes[node.id] = node

    # ---- meta ---------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(value)),
            )

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # ---- nodes --------------------------------------------------------------------------
    def add(self, node: Node) -> Node:
        with self._lock:
            if node.id in self._nodes:
                raise ValueError(f"node id collision: {node.id}")
            node.seq = len(self._nodes)
            self._write(node)
            self._remember(node)
        return node

    def update(self, node: Node) -> None:
        with self._lock:
            self._write(node)
            self._nodes[node.id] = node

    def update_many(self, nodes: list[Node]) -> None:
        """One transaction, so a backup along a path is never half written."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for node in nodes:
                    self._write(node)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for node in nodes:
                self._nodes[node.id] = node

    def _write(self, node: Node) -> None:
        self._db.execute(
            "INSERT INTO nodes(id, seq, parent, data) VALUES(?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET data=excluded.data",
            (node.id, node.seq, node.parent, json.dumps(node.to_dict())),
        )

    def get(self, node_id: str) -> Node:
        return self._nodes[node_id]

    def children(self, node_id: str) -> list[Node]:
        return [self._nodes[c] for c in self._children.get(node_id, [])]

    def path(self, node_id: str) -> list[Node]:
        """Root first, ending with the node itself."""
        out = []
        cur: str | None = node_id
        while cur is not None:
            node = self._nodes[cur]
            out.append(node)
            cur = node.parent
        return out[::-1]

    def root(self) -> Node | None:
        return next((n for n in self._nodes.values() if n.parent is None), None)

    def focus(self) -> Node | None:
        """Where the search grows: the root, or the node a follow-up continues from (meta `focus`)."""
        chosen = self.get_meta("focus")
        return self._nodes.get(chosen) if chosen else self.root()

    def subtree(self, node_id: str) -> list[Node]:
        """The node and every node below it, in creation order."""
        out, todo = [], [node_id]
        while todo:
            out.append(self._nodes[todo.pop()])
            todo += self._children.get(out[-1].id, [])
        return sorted(out, key=lambda n: n.seq)

    def nodes(self) -> list[Node]:
        return sorted(self._nodes.values(), key=lambda n: n.seq)

    # ---- events -------------------------------------------------------------------------
    def event(self, kind: str, **data: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO events(ts, kind, data) VALUES(?, ?, ?)", (time.time(), kind, json.dumps(data))
            )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT ts, kind, data FROM events" + (" WHERE kind=?" if kind else "") + " ORDER BY seq"
        with self._lock:
            rows = self._db.execute(q, (kind,) if kind else ()).fetchall()
        return [{"ts": ts, "kind": k, **json.loads(d)} for ts, k, d in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
