"""What counts as a secret in the environment, and scrubbing secrets out of text we store.

Test commands run code that treefix or a model wrote; whatever they print is kept (node output,
harness logs). Secrets must not reach that code, and any that still show up in its output are
replaced before the output leaves the sandbox.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# The model providers' keys: never handed to a test command, even when the user names them.
PROVIDER_KEYS = frozenset({"OPENAI_API_KEY", "ANTHROPIC_API_KEY"})
SECRET_NAME = re.compile(r"(API_KEY|_KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.I)
_SECRET_SHAPE = re.compile(r"\b(sk-ant-[A-Za-z0-9_\-]{16,}|sk-[A-Za-z0-9_\-]{16,})")
_URL_USERINFO = re.compile(r"(://)[^/@\s:]+:[^/@\s]+@")  # http://user:password@host
MIN_SECRET_LEN = 8  # shorter values would blank out ordinary words


def is_secret_name(name: str) -> bool:
    return name in PROVIDER_KEYS or bool(SECRET_NAME.search(name))


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking variables, longest first (so a key is never half replaced)."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if is_secret_name(k) and len(v.strip()) >= MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every secret value of `environ` and every key-shaped string replaced by `***`."""
    for value in secret_values(environ):
        text = text.replace(value, "***")
    text = _URL_USERINFO.sub(r"\1***@", text)
    return _SECRET_SHAPE.sub("***", text)


def without_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` minus secret-looking variables: for helpers that need the rest (git, a venv's setup)."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if not is_secret_name(k)}
