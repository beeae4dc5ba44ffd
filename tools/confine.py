"""Which host folders a bubblewrap sandbox hides, and which parts of them it must show again.

Hidden: every home folder (keys, tokens and config files live there), container secrets, SSH host
keys, treefix's own config folder and the user's checkout (a worktree needs only its `.git`).
Shown again, read-only: what the test command needs to start at all, found from its environment
and its words: interpreters, venvs and tool folders on PATH, and the repository's git data.
Only the runtime parts of a prefix are shown (bin, lib, ...), never a whole home or `~/.cargo`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path

HIDDEN = ("/home", "/root", "/run/secrets", "/var/run/secrets", "/etc/ssh")
# Never hidden wholesale, whatever HOME says: the sandbox would not start.
SYSTEM = frozenset({"/", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/opt", "/var",
                    "/srv", "/tmp", "/proc", "/dev", "/sys", "/run", "/mnt", "/media"})  # fmt: skip
BIN_NAMES = ("bin", "shims", "Scripts")
RUNTIME_PARTS = ("bin", "shims", "lib", "lib64", "libexec", "versions", "version", "conda-meta")


def _under(path: Path, roots: Iterable[Path]) -> bool:
    p = str(path)  # strings: pathlib's is_relative_to costs more than the rest of a sandbox's setup
    return any(p == r or p.startswith(r.rstrip("/") + "/") for r in map(str, roots))


def checkout_of(cwd: Path) -> tuple[Path, Path] | None:
    """(main checkout, its git folder) when `cwd` is a linked git worktree, else None."""
    dot_git = cwd / ".git"
    if not dot_git.is_file():
        return None
    text = dot_git.read_text(errors="replace").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = (cwd / text.removeprefix("gitdir:").strip()).resolve()
    common = gitdir
    if (gitdir / "commondir").is_file():
        common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
    return (common.parent if common.name == ".git" else common), common


def hidden_paths(cwd: Path, environ: Mapping[str, str] | None = None) -> list[Path]:
    environ = os.environ if environ is None else environ
    found = [Path(p) for p in HIDDEN]
    found += [Path(p) for p in (environ.get("HOME"), environ.get("TREEFIX_CONFIG_DIR")) if p]
    found.append(Path.home())
    if checkout := checkout_of(cwd):
        found.append(checkout[0])
    out: list[Path] = []
    for p in found:
        try:
            p = p.resolve()
        except OSError:
            continue
        if p.is_dir() and str(p) not in SYSTEM and p not in out:
            out.append(p)
    return out


def _prefix(path: Path) -> Path | None:
    """The installation prefix of a file or folder inside `prefix/bin` (a venv, pyenv, conda, ~/.local)."""
    folder = path if path.is_dir() else path.parent
    return folder.parent if folder.name in BIN_NAMES else None


def _venv_home(prefix: Path) -> Path | None:
    """The base interpreter's prefix named by a venv's pyvenv.cfg."""
    cfg = prefix / "pyvenv.cfg"
    if not cfg.is_file():
        return None
    for line in cfg.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            return _prefix(Path(value.strip()) / "python") or Path(value.strip())
    return None


def _runtime(prefix: Path) -> list[Path]:
    if (prefix / "pyvenv.cfg").is_file():
        return [prefix]  # a venv holds nothing but the environment
    return [prefix / part for part in RUNTIME_PARTS if (prefix / part).exists()]


def _candidates(env: Mapping[str, str], cmd: str | list[str]) -> list[Path]:
    words = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    raw = [env.get("VIRTUAL_ENV", ""), env.get("CONDA_PREFIX", "")]
    raw += env.get("PATH", "").split(os.pathsep) + env.get("PYTHONPATH", "").split(os.pathsep)
    raw += [w.partition("=")[2] if "=" in w and not w.startswith("/") else w for w in words]
    return [Path(r) for r in raw if r.startswith("/")]


def shown_paths(cwd: Path, env: Mapping[str, str], cmd: str | list[str], hidden: list[Path]) -> list[Path]:
    """Folders under `hidden` (or the private /tmp) the command needs, read-only, outermost only."""
    covered = [*hidden, Path("/tmp").resolve()]
    try:
        candidates = _candidates(env, cmd)
    except ValueError:  # unbalanced quotes: bash will say so
        candidates = _candidates(env, [])
    if checkout := checkout_of(cwd):
        candidates.append(checkout[1])  # git commands in the worktree read the repository's objects
    wanted: list[Path] = []
    seen: set[Path] = set()
    while candidates:
        c = candidates.pop()
        for p in {c, c.resolve()} if c.exists() else ():
            if p in seen:
                continue
            seen.add(p)
            prefix = _prefix(p)
            if prefix and (home := _venv_home(prefix)):
                candidates.append(home / "bin")
            if p.is_dir() and p.name in BIN_NAMES:
                # A venv's python is a link into its base interpreter (pyenv, uv, conda).
                candidates += [e.resolve() for e in (p / "python", p / "python3") if e.is_symlink()]
            if _under(p, covered):
                wanted += _runtime(prefix) if prefix else [p]
    outer = sorted({w for w in wanted if _under(w, covered) and w not in covered}, key=lambda w: len(w.parts))
    kept: list[Path] = []
    for w in outer:
        if not _under(w, kept):
            kept.append(w)
    return kept
