"""Errors a user can cause. Each ends in one clear message and exit code 2, never a traceback."""

from __future__ import annotations


class ConfigError(Exception):
    """A user-fixable configuration problem: unknown model, missing key, bad cassette. Exit code 2."""
