"""The environment a test command gets: a short allow-list, the task's own variables, what the user names.

The rest of the caller's environment (provider keys, tokens, cloud credentials, proxies with
passwords) never reaches code under test. Users whose tests need more name the variables in
`TREEFIX_TEST_ENV` (comma or space separated); the model providers' keys are refused even then.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from treefix.tools.secrets import PROVIDER_KEYS

USER_VAR = "TREEFIX_TEST_ENV"
# What interpreters, test runners and locales need to behave as they do in the user's shell.
ALLOWED = frozenset({
    "PATH", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "NO_COLOR", "FORCE_COLOR", "CI",
    "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONHASHSEED",
    "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS", "PYTHONNOUSERSITE",
    "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "LD_LIBRARY_PATH", "PKG_CONFIG_PATH", "JAVA_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR",
})  # fmt: skip
ALLOWED_PREFIXES = ("LC_",)


def user_named(environ: Mapping[str, str]) -> list[str]:
    """The variable names the user asked to pass through, provider keys left out."""
    names = re.split(r"[,\s]+", environ.get(USER_VAR, "").strip())
    return [n for n in names if n and n not in PROVIDER_KEYS]


def sandbox_env(
    task_env: Mapping[str, str] | None, home: str, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The whole environment of one test command. `home` becomes HOME: an empty, private folder."""
    environ = os.environ if environ is None else environ
    keep = set(user_named(environ))
    env = {k: v for k, v in environ.items() if k in ALLOWED or k.startswith(ALLOWED_PREFIXES) or k in keep}
    env.update(task_env or {})
    env["HOME"] = home
    env.setdefault("PATH", os.defpath)
    for key in PROVIDER_KEYS:
        env.pop(key, None)
    return env
