"""A repository's tags, cached on disk by file content hash.

A refresh stats every source file; only files whose size or mtime changed are read and hashed, and
only files whose hash changed are parsed again. The cache is one marshal file per repository (fast to
load, plain data only), written atomically so parallel workers never read half a file.
"""

from __future__ import annotations

import gc
import hashlib
import marshal
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import platformdirs

from treefix.tools.files import list_files
from treefix.tools.tags import Definition, extract, supported

CACHE_VERSION = 2
MAX_FILE_BYTES = 1_000_000  # larger files are generated or vendored, not worth a parse
PARALLEL_FROM = 400  # files to parse before worker processes pay for their start-up


@dataclass
class Entry:
    size: int
    mtime_ns: int
    digest: str
    definitions: list[Definition]
    references: dict[str, int]  # identifier -> number of uses


@dataclass
class RefreshStats:
    files: int
    parsed: int
    hashed: int
    seconds: float


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("treefix")) / "repo_map"


class RepoIndex:
    def __init__(self, root: Path, cache_dir: Path | None = None, workers: int | None = None) -> None:
        self.root = root.resolve()
        identity = _identity(self.root)
        key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        name = Path(identity).parent.name if identity.endswith(".git") else self.root.name
        self.cache_file = (cache_dir or default_cache_dir()) / f"{name}-{key}.marshal"
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.entries: dict[str, Entry] = {}
        self._loaded = False

    def refresh(self) -> RefreshStats:
        start = time.perf_counter()
        with _no_gc():  # the collector rescans the growing index on every allocation burst: 2x slower
            if not self._loaded:
                self.entries = self._load()
                self._loaded = True
            stats = self._update()
        stats.seconds = time.perf_counter() - start
        return stats

    def definitions(self, rel: str) -> list[Definition]:
        entry = self.entries.get(rel)
        return [Definition._make(d) for d in entry.definitions] if entry else []

    def _update(self) -> RefreshStats:
        old, new = self.entries, {}
        todo: list[tuple[str, int, int]] = []
        hashed = 0
        for rel in list_files(self.root):
            if not supported(rel):
                continue
            try:
                st = (self.root / rel).stat()
            except OSError:
                continue
            if st.st_size > MAX_FILE_BYTES or ".min." in rel:  # generated or minified: noise, and slow
                continue
            entry = old.get(rel)
            if entry and entry.size == st.st_size and entry.mtime_ns == st.st_mtime_ns:
                new[rel] = entry
            elif entry:
                hashed += 1
                data = (self.root / rel).read_bytes()
                if _digest(data) == entry.digest:  # touched, not changed
                    new[rel] = Entry(
                        st.st_size, st.st_mtime_ns, entry.digest, entry.definitions, entry.references
                    )
                else:
                    todo.append((rel, st.st_size, st.st_mtime_ns))
            else:
                todo.append((rel, st.st_size, st.st_mtime_ns))
        for rel, entry in self._parse(todo):
            new[rel] = entry
        changed = bool(todo) or hashed or new.keys() != old.keys()
        self.entries = new
        if changed:
            self._save()
        return RefreshStats(len(new), len(todo), hashed + len(todo), 0.0)

    def _parse(self, todo: list[tuple[str, int, int]]) -> list[tuple[str, Entry]]:
        # Fork only a single-threaded process (forking threads can deadlock); spawn would re-import
        # the caller's main module, which breaks scripts without a main guard.
        if len(todo) < PARALLEL_FROM or self.workers < 2 or threading.active_count() > 1:
            return _parse_chunk(str(self.root), todo)
        chunks = [todo[i :: self.workers * 4] for i in range(self.workers * 4)]
        with ProcessPoolExecutor(self.workers, mp_context=get_context("fork")) as pool:
            parts = pool.map(_parse_chunk, [str(self.root)] * len(chunks), chunks)
            return [item for part in parts for item in part]

    def _load(self) -> dict[str, Entry]:
        try:
            data = marshal.loads(self.cache_file.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return {}
        return {rel: Entry(*fields) for rel, fields in data["files"].items()}

    def _save(self) -> None:
        files = {
            rel: (e.size, e.mtime_ns, e.digest, [tuple(d) for d in e.definitions], e.references)
            for rel, e in self.entries.items()
        }
        payload = marshal.dumps({"version": CACHE_VERSION, "files": files})
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(payload)
        os.replace(tmp, self.cache_file)


def _identity(root: Path) -> str:
    """What the cache is keyed by: the shared git directory, so every worktree of a repository reuses
    one cache (files whose hash matches are not parsed again), else the directory itself."""
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
                cwd=root, capture_output=True, text=True, timeout=10,
            )  # fmt: skip
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return str(root)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _minified(data: bytes) -> bool:
    return len(data) > 4000 and data.count(b"\n") * 300 < len(data)


def _parse_chunk(root: str, todo: list[tuple[str, int, int]]) -> list[tuple[str, Entry]]:
    out = []
    with _no_gc():
        for rel, size, mtime_ns in todo:
            try:
                data = Path(root, rel).read_bytes()
            except OSError:
                continue
            if _minified(data):  # vendored bundles: one huge line of single-letter names
                out.append((rel, Entry(size, mtime_ns, _digest(data), [], {})))
                continue
            tags = extract(rel, data, lines=False)
            refs = {name: counted[0] for name, counted in tags.references.items()}
            out.append((rel, Entry(size, mtime_ns, _digest(data), tags.definitions, refs)))
    return out


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
