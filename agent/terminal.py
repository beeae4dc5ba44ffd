"""Consoles for the commands: a terminal's own width, or no wrapping at all when piped."""

from __future__ import annotations

import os
import sys

from rich.console import Console

PIPE_WIDTH = 1000  # wide enough that no line or table is wrapped or cropped when piped to a file or a pager


def make_console(stderr: bool = False) -> Console:
    """A rich Console for stdout or stderr. Rich assumes 80 columns when the stream is not a
    terminal, which wraps long lines and crops tables in logs and pipes; then use a width so large
    that nothing wraps (lines are not padded to it). COLUMNS, when set, still wins. No emoji codes:
    messages quote paths and flags, and `:b:` in one must not print as a picture."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty())
    wide = piped and not os.environ.get("COLUMNS")
    return Console(stderr=stderr, width=PIPE_WIDTH if wide else None, emoji=False)  # `A:b:C` stays text
