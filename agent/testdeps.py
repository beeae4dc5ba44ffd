"""What a run's tests depend on in the shell that started it, recorded so `resume` can restore it.

A test command inherits variables such as PATH (which python), VIRTUAL_ENV or PYTHONPATH from the
user's shell. A run resumed from another shell would otherwise score its new nodes in another
environment: every test failing to import, say, and such a node could even become the best.
`capture` records the variables and the programs the command starts; `restore` gives them back
to the resumed run, or refuses with the reason when the programs or environments are gone.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from treefix.agent.errors import ConfigError
from treefix.agent.task import Task
from treefix.tools.secrets import is_secret_name
from treefix.tools.testenv import ALLOWED, ALLOWED_PREFIXES, USER_VAR, user_named

META_KEY = "test_deps"
ENV_DIRS = ("VIRTUAL_ENV", "CONDA_PREFIX")  # an environment folder that must still be there
_SEPARATORS = re.compile(r"&&|\|\||[;|&\n()]")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass
class TestDeps:
    test_cmd: str | None
    env: dict[str, str] = field(default_factory=dict)  # what the test command inherited (no secrets)
    programs: dict[str, str] = field(default_factory=dict)  # a program the command starts -> its path

    def to_dict(self) -> dict[str, Any]:
        return {"test_cmd": self.test_cmd, "env": self.env, "programs": self.programs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TestDeps:
        return cls(d.get("test_cmd"), dict(d.get("env", {})), dict(d.get("programs", {})))


def inherited(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a test command takes from this shell (tools/testenv.py's rule), secrets left out:
    they are not written to the run's store."""
    keep = set(user_named(environ)) | {USER_VAR}
    return {
        k: v
        for k, v in environ.items()
        if (k in ALLOWED or k.startswith(ALLOWED_PREFIXES) or k in keep) and not is_secret_name(k)
    }


def programs(test_cmd: str | None, path: str) -> dict[str, str]:
    """The first word of each part of `test_cmd` (`python`, `pytest`, `tox`...), found on `path`."""
    found: dict[str, str] = {}
    for part in _SEPARATORS.split(test_cmd or ""):
        try:
            words = shlex.split(part)
        except ValueError:  # an unbalanced quote across parts: the shell will say
            words = part.split()
        words = [w for w in words if not _ASSIGNMENT.match(w)]
        if words and words[0] == "env":
            words = [w for w in words[1:] if not w.startswith("-")]
        if not words:
            continue
        name = words[0]
        where = name if os.path.isabs(name) else shutil.which(name, path=path) if "/" not in name else None
        if where:  # as found, not resolved: a venv's python is a link that dies with the venv
            found[name] = where
    return found


def capture(task: Task, environ: Mapping[str, str] | None = None) -> TestDeps:
    environ = os.environ if environ is None else environ
    env = inherited(environ)
    path = {**env, **task.env}.get("PATH", os.defpath)
    return TestDeps(task.test_cmd, env, programs(task.test_cmd, path))


def restore(deps: TestDeps, task: Task, environ: Mapping[str, str] | None = None) -> tuple[Task, list[str]]:
    """`task` with the recorded environment under its own variables, and the names that differ from
    this shell's. ConfigError when a program or environment folder the tests used is gone."""
    environ = os.environ if environ is None else environ
    for name, where in deps.programs.items():
        if not os.access(where, os.X_OK):
            raise ConfigError(
                f"cannot resume: the run's tests ran `{name}` from {where}, which is gone; "
                "recreate that environment, or start a new run"
            )
    for var in ENV_DIRS:
        if (folder := deps.env.get(var)) and not os.path.isdir(folder):
            raise ConfigError(
                f"cannot resume: the run's tests used {var}={folder}, which is gone; "
                "recreate that environment, or start a new run"
            )
    changed = sorted(k for k, v in deps.env.items() if environ.get(k) != v and k not in task.env)
    return replace(task, env={**deps.env, **task.env}), changed
