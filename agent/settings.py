"""User settings: environment, `.env` files and the user config file, plus secret redaction.

Precedence, highest first: command-line flags (applied by the CLI), the process environment,
a `.env` in the working directory, a `.env` in the user config folder, `config.toml` there.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, ValidationError

from treefix.agent.errors import ConfigError

APP = "treefix"
KEY_VARS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
BASE_URL_VARS = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}


def config_dir() -> Path:
    """The user config folder; `TREEFIX_CONFIG_DIR` moves it (tests, portable installs)."""
    return Path(os.environ.get("TREEFIX_CONFIG_DIR") or platformdirs.user_config_dir(APP))


class Settings(BaseModel):
    """Defaults from `config.toml` in the user config folder."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    base_url: str | None = None
    limits: dict[str, float] = {}


def load_env(cwd: Path | None = None) -> None:
    """Fill missing environment variables from `./.env`, then from the config folder's `.env`."""
    for path in ((cwd or Path.cwd()) / ".env", config_dir() / ".env"):
        if path.is_file():
            for k, v in dotenv_values(path).items():
                if v is not None and k not in os.environ:
                    os.environ[k] = v


def load_settings(cwd: Path | None = None, path: Path | None = None) -> Settings:
    """Load `.env` files into the environment and read the user config file (if any)."""
    load_env(cwd)
    path = path or config_dir() / "config.toml"
    if not path.is_file():
        return Settings()
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
        return Settings(**data)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'file'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None


def api_key(provider: str) -> str:
    """The API key of `provider` from the environment, or one clear ConfigError naming the variable."""
    var = KEY_VARS[provider]
    key = os.environ.get(var, "").strip()
    if not key:
        raise ConfigError(
            f"{var} is not set: export {var}=... or put it in a .env file (here or in {config_dir()})"
        )
    return key


def base_url(provider: str, settings: Settings | None = None) -> str | None:
    """The base URL from the environment, else from the user config file, else None (the default)."""
    return os.environ.get(BASE_URL_VARS[provider]) or (settings.base_url if settings else None)


# ---- secrets ------------------------------------------------------------------------------
_SECRET_NAME = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD)$", re.I)
_SECRET_SHAPE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|sk-ant-[A-Za-z0-9_\-]{16,})")
_URL_USERINFO = re.compile(r"(://)[^/@\s]+@")  # http://user:password@host


def secret_values() -> list[str]:
    """Values of secret-looking environment variables, longest first."""
    vals = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8}
    return sorted(vals, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every known secret and key-shaped string replaced by `***`.

    Use on anything written to a log, a cassette or a trajectory.
    """
    for v in secret_values():
        text = text.replace(v, "***")
    text = _URL_USERINFO.sub(r"\1***@", text)
    return _SECRET_SHAPE.sub("***", text)
