"""A chat session's state, kept in the repository's `.treefix/chat/` so `--resume` continues it.

The trees themselves live in their run stores (`.treefix/runs/<id>/`); a session only remembers
which runs are its own, which tree is open, the chosen candidate and what it has spent.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Request:
    text: str
    run_id: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0


@dataclass
class SessionState:
    id: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2))
    test_cmd: str | None = None
    current: str | None = None  # run id of the open tree: a message continues it
    chosen: str | None = None  # node id /apply applies and a follow-up continues from
    applied: bool = False  # the open tree's candidate was committed: the next message starts a new tree
    files: list[str] = field(default_factory=list)  # /add: files the model must see
    requests: list[Request] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)  # what /apply committed

    @property
    def tokens_in(self) -> int:
        return sum(r.tokens_in for r in self.requests)

    @property
    def tokens_out(self) -> int:
        return sum(r.tokens_out for r in self.requests)

    @property
    def cost(self) -> float:
        return sum(r.cost for r in self.requests)


def chat_dir(repo: Path) -> Path:
    path = repo / ".treefix" / "chat"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(repo: Path, state: SessionState) -> None:
    folder = chat_dir(repo) / "sessions"
    folder.mkdir(exist_ok=True)
    tmp = folder / f"{state.id}.json.tmp"
    tmp.write_text(json.dumps(asdict(state), indent=1))
    tmp.replace(folder / f"{state.id}.json")  # a crash mid-write leaves the previous state
    (chat_dir(repo) / "last").write_text(state.id)


def load_last(repo: Path) -> SessionState | None:
    last = chat_dir(repo) / "last"
    if not last.is_file():
        return None
    path = chat_dir(repo) / "sessions" / f"{last.read_text().strip()}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    data["requests"] = [Request(**r) for r in data.get("requests", [])]
    return SessionState(**data)
