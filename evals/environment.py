"""Base repositories and venvs for instances.

A base is a fresh git repository at the buggy code: the pristine sources (an sdist or a local
path) committed as "pristine", then `bug_patch` committed as "base"; or, for SWE-bench, a clone
from `--repos-dir` checked out at `base_commit`.

A venv is built once per (repo, source or version, setup) and shared by every checkout of that
code. Tests must import the checkout's own code, not whatever the venv installed, so `Venv.env()`
puts the checkout's import root (`.` or `src`) on PYTHONPATH: it precedes site-packages, editable
`.pth` entries and setuptools' editable finder (appended to `sys.meta_path` after PathFinder).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from treefix.evals import swebench_specs
from treefix.evals.dataset import Instance, Source
from treefix.tools.secrets import without_secrets

DEFAULT_SETUP = ["pip install .", "pip install pytest"]
# Fixed identity and dates make the base commit sha reproducible across machines and runs.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "treefix",
    "GIT_AUTHOR_EMAIL": "treefix@localhost",
    "GIT_COMMITTER_NAME": "treefix",
    "GIT_COMMITTER_EMAIL": "treefix@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
}
_EXCLUDES = "__pycache__/\n*.pyc\n.pytest_cache/\n*.egg-info/\n.eggs/\n.tox/\n"
_READY = "ready.json"


class EnvError(RuntimeError):
    """A base or venv could not be built; the message says why and where the log is."""


@dataclass(frozen=True)
class Venv:
    path: Path  # the venv directory
    import_dirs: tuple[str, ...] = (".",)  # checkout-relative roots put on PYTHONPATH
    # setuptools_scm finds no tag in a fresh checkout and would say "unknown"; the instance's
    # version stands in for it, at build time and in every test run.
    pretend_version: str | None = None

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def source(self) -> Path:
        """The checkout the venv was built from (generated files such as _version.py live there)."""
        return self.path.parent / "src"

    def env(self, root: Path | None = None) -> dict[str, str]:
        """Variables to overlay on os.environ. Without `root`, PYTHONPATH is relative to the cwd,
        so one env works in every worktree as long as commands run from the checkout root."""
        dirs = [str(Path(root).resolve() / d) if root else d for d in self.import_dirs]
        env = {
            "VIRTUAL_ENV": str(self.path),
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(dirs),
            "PYTHONDONTWRITEBYTECODE": "1",  # keep worktrees clean for diffs
            "PYTHONNOUSERSITE": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        if self.pretend_version:
            env["SETUPTOOLS_SCM_PRETEND_VERSION"] = self.pretend_version
        return env


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", "-c", "core.autocrlf=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **_GIT_ENV},
    )
    if check and proc.returncode != 0:
        raise EnvError(
            f"git {' '.join(args[:2])} failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def apply_patch(repo: Path, patch: str, *, name: str = "patch") -> str | None:
    """Apply a git-style diff to the working tree; None on success, else the error text.

    Like the official harness, fall back to GNU patch with fuzz when `git apply` refuses a patch
    whose context drifted. Both are tried as a dry run first, so a failure changes nothing."""
    if not patch.strip():
        return None
    patch = patch if patch.endswith("\n") else patch + "\n"
    attempts = [["git", "apply", "--whitespace=nowarn"]]
    if shutil.which("patch"):
        # --force, not --batch: --batch would silently reverse a patch that looks already applied.
        attempts.append(["patch", "--force", "--fuzz=5", "-p1", "--no-backup-if-mismatch", "-r", "-"])
    errors = []
    for cmd in attempts:
        dry = cmd + (["--check"] if cmd[0] == "git" else ["--dry-run"])
        proc = subprocess.run(dry, cwd=repo, input=patch, capture_output=True, text=True)
        if proc.returncode == 0:
            proc = subprocess.run(cmd, cwd=repo, input=patch, capture_output=True, text=True)
            if proc.returncode == 0:
                return None
        errors.append((proc.stderr or proc.stdout).strip())
    return f"{name} does not apply: {errors[0]}"


def prepare_base(instance: Instance, work_dir: Path, cache_dir: Path, repos_dir: Path | None = None) -> Path:
    """Make `work_dir` a fresh git repository at the instance's buggy base and return it."""
    work_dir = Path(work_dir).resolve()
    if work_dir.exists() and any(work_dir.iterdir()):
        raise EnvError(f"{work_dir} is not empty; a base is always built fresh")
    work_dir.mkdir(parents=True, exist_ok=True)
    if instance.source is not None:
        _copy_tree(pristine_source(instance.source, cache_dir), work_dir)
        git(work_dir, "-c", "init.defaultBranch=main", "init", "-q")
        _write_excludes(work_dir)
        git(work_dir, "add", "-A", "-f")
        git(work_dir, "commit", "-q", "--no-verify", "-m", "pristine")
        if error := apply_patch(work_dir, instance.bug_patch, name="bug_patch"):
            raise EnvError(f"{instance.instance_id}: {error}")
        git(work_dir, "add", "-A", "-f")
        git(work_dir, "commit", "-q", "--no-verify", "--allow-empty", "-m", "base")
    else:
        src = find_repo(instance.repo, repos_dir)
        git(work_dir.parent, "clone", "-q", "--no-checkout", str(src), str(work_dir))
        git(work_dir, "checkout", "-q", "-B", "main", instance.base_commit or "HEAD")
        _write_excludes(work_dir)
    return work_dir


def base_commit(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def find_repo(repo: str, repos_dir: Path | None) -> Path:
    if repos_dir is None:
        raise EnvError(f"{repo}: instance has no 'source'; pass --repos-dir with a clone of it")
    for cand in (Path(repos_dir).resolve() / repo.replace("/", "__"), Path(repos_dir).resolve() / repo):
        if (cand / ".git").exists() or (cand / "HEAD").is_file():
            return cand
    raise EnvError(f"{repo}: no clone in {repos_dir} (looked for {repo.replace('/', '__')} and {repo})")


def pristine_source(source: Source, cache_dir: Path) -> Path:
    """An extracted, read-only-by-convention copy of the pristine sources, cached."""
    if source.path is not None:
        p = Path(source.path).expanduser()
        if p.is_dir():
            return p
        if not p.is_file():
            raise EnvError(f"source path {p} does not exist")
        archive, slug = p, _slug(f"{p.name}-{hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:10]}")
    else:
        archive, slug = None, _slug(source.pypi or "")
    dest = Path(cache_dir) / "sources" / slug
    if (dest / ".treefix-extracted").exists():
        return dest / "tree"
    with _locked(_sibling(dest, ".lock")):
        if not (dest / ".treefix-extracted").exists():
            archive = archive or download_sdist(source.pypi or "", cache_dir)
            shutil.rmtree(dest, ignore_errors=True)
            _extract(archive, dest / "tree")
            (dest / ".treefix-extracted").write_text(str(archive))
    return dest / "tree"


def download_sdist(spec: str, cache_dir: Path) -> Path:
    """`pip download` the sdist once; later calls find it in `cache_dir/sdists/<spec>/`."""
    d = Path(cache_dir) / "sdists" / _slug(spec)
    if found := _archives(d):
        return found[0]
    d.mkdir(parents=True, exist_ok=True)
    with _locked(_sibling(d, ".lock")):
        if not (found := _archives(d)):
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(d),
                spec,
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not (found := _archives(d)):
                raise EnvError(f"cannot download the sdist of {spec}: {proc.stderr.strip()[-800:]}")
    return found[0]


def ensure_venv(
    instance: Instance,
    cache_dir: Path,
    repos_dir: Path | None = None,
    system_site_packages: bool | None = None,
) -> Venv:
    """The cached venv for this instance's code, built with `setup` on first use.

    A repository instance without our own `setup`/`test_cmd` is built from SWE-bench's spec for
    its (repo, version), with the interpreter the spec asks for, cached per (repo, version,
    python, spec hash)."""
    cache_dir = Path(cache_dir).resolve()
    try:
        spec = swebench_specs.spec_for(instance) if swebench_specs.applies(instance) else None
        python = str(swebench_specs.find_python(spec.python)) if spec else sys.executable
    except swebench_specs.SpecError as e:
        raise EnvError(f"{instance.instance_id}: {e}") from None
    setup = instance.setup if instance.setup is not None else DEFAULT_SETUP
    if system_site_packages is None:  # an escape hatch for offline tests and private task sets
        system_site_packages = bool(getattr(instance, "system_site_packages", False))
    code = instance.source.key() if instance.source else (instance.version or instance.base_commit or "")
    recipe: object = ["swebench", spec.hash, spec.python] if spec else [setup, sys.version]
    key = json.dumps([instance.repo, code, recipe, python, system_site_packages, instance.pythonpath])
    root = cache_dir / "venvs" / _slug(f"{instance.repo}-{code}")[:60]
    root = root.with_name(f"{root.name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}")
    if (venv := _ready(root)) is not None:
        return venv
    with _locked(_sibling(root, ".lock")):
        if (venv := _ready(root)) is not None:  # another process built it while we waited
            return venv
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        log = _sibling(root, ".log")
        log.write_text("")
        try:
            src = root / "src"
            if instance.source is not None:
                _copy_tree(pristine_source(instance.source, cache_dir), src)
            else:
                commit = getattr(instance, "environment_setup_commit", None) or instance.base_commit
                inst = instance.model_copy(update={"base_commit": commit})
                prepare_base(inst, src, cache_dir, repos_dir)
            cmd = [python, "-m", "venv", str(root / "venv")]
            _run_logged(
                cmd + (["--system-site-packages"] if system_site_packages else []), src, dict(os.environ), log
            )
            venv = Venv(root / "venv", tuple(instance.pythonpath or guess_import_dirs(src)),
                        pretend_version(instance))  # fmt: skip
            env = {**without_secrets(), **venv.env(src)}  # setup runs the package's own code: no keys
            env.pop("PYTHONPATH")  # setup installs from the source dir itself
            if spec is not None:
                with log.open("a") as fh:
                    for step in spec.skipped_steps():
                        fh.write(f"# skipped (needs root or the network): {step}\n")
                setup = spec.setup_steps(src, root)
            for step in setup:
                _run_logged(step, src, env, log, shell=True)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        # Written last: a venv without this file is never used.
        meta = {"python": str(venv.python), "import_dirs": venv.import_dirs, "pretend_version": venv.pretend_version}
        (root / _READY).write_text(json.dumps(meta))
    return venv


def pretend_version(instance: Instance) -> str | None:
    """The version setuptools_scm should report for a checkout without tags ("5.4" -> "5.4.0")."""
    v = instance.version
    if instance.source is not None or not v or not re.fullmatch(r"\d+(\.\d+)*", v):
        return None  # sdists carry their version in PKG-INFO
    return v if v.count(".") >= 2 else v + ".0"


_GENERATED = re.compile(r"(^|/)_?version\.py$")


def finish_checkout(instance: Instance, repo: Path, venv: Venv, *, commit: bool) -> None:
    """Make a fresh checkout look like the environment SWE-bench tests in: its spec's repository
    pre-install steps (e.g. sed edits of tox.ini), and the version files setuptools_scm generated
    at install time (git-ignored, so they never show in a diff). With `commit`, the edits become a
    commit so that patches and `git diff` see only what comes after."""
    repo = Path(repo).resolve()
    if swebench_specs.applies(instance) and swebench_specs.available():
        try:
            spec = swebench_specs.spec_for(instance)
        except swebench_specs.SpecError:
            spec = None
        for step in spec.repo_steps() if spec else []:
            proc = subprocess.run(step, shell=True, cwd=repo, capture_output=True, text=True)
            if proc.returncode != 0:
                raise EnvError(f"{instance.instance_id}: pre-install step failed: {step}: {proc.stderr.strip()}")
        if commit and git(repo, "status", "--porcelain").stdout.strip():
            git(repo, "commit", "-q", "--no-verify", "-am", "SWE-bench pre-install")
    src = venv.source
    if not (src / ".git").exists():
        return
    listed = git(src, "ls-files", "--others", "--ignored", "--exclude-standard", check=False).stdout.splitlines()
    for rel in listed:
        if _GENERATED.search(rel) and not (repo / rel).exists() and (repo / rel).parent.is_dir():
            shutil.copy2(src / rel, repo / rel)


@contextmanager
def installed_checkout(repo: Path, venv: Venv, install: str | None, log: Path) -> Iterator[None]:
    """Run SWE-bench's install command in the checkout, as its eval script does before the tests:
    entry points and dependencies then match the base commit, not the environment commit the
    venv was built from. The venv is shared: graders whose install would change nothing use it
    side by side (shared lock); an install, and the tests of a checkout with extension modules
    built in place, hold it alone."""
    root = venv.path.parent
    repo = Path(repo).resolve()
    stamp, key = root / "installed.json", _packaging_key(repo, install)
    lock = _sibling(root, ".use.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    installed = False
    with lock.open("w") as fh:
        try:
            while True:
                fcntl.flock(fh, fcntl.LOCK_SH)
                if not install or _read_json(stamp).get("key") == key:
                    # Same packaging files as the last install and nothing compiled into the
                    # checkout: the install would give the same dependencies and entry points,
                    # and the checkout's code is imported from PYTHONPATH anyway.
                    if install and not installed:
                        log.write_text(f"# skipped: {install} (same packaging files as the last install, "
                                       "no extension modules)\n")  # fmt: skip
                    yield
                    return
                # flock's upgrade is not atomic: another grader may install in between, so re-read
                fcntl.flock(fh, fcntl.LOCK_EX)
                if _read_json(stamp).get("key") == key:
                    continue
                stamp.unlink(missing_ok=True)
                env = {**os.environ, **venv.env(repo)}
                env.pop("PYTHONPATH")
                _run_logged(install, repo, env, log, shell=True)
                installed = True
                if _built_extensions(repo):  # an in-place build lives in the checkout: used alone
                    yield
                    return
                stamp.write_text(json.dumps({"key": key}))
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_PACKAGING = ("setup.py", "setup.cfg", "pyproject.toml", "requirements.txt", "MANIFEST.in")


def _packaging_key(repo: Path, install: str | None) -> str:
    h = hashlib.sha256((install or "").encode())
    for name in _PACKAGING:
        f = repo / name
        h.update(name.encode() + b"\0" + (f.read_bytes() if f.is_file() else b"-") + b"\0")
    return h.hexdigest()


def _built_extensions(repo: Path) -> bool:
    listed = git(repo, "ls-files", "--others", check=False).stdout  # untracked, ignored or not
    return any(line.endswith((".so", ".pyd", ".dylib")) for line in listed.splitlines())


def _read_json(p: Path) -> dict:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def guess_import_dirs(root: Path) -> list[str]:
    src = root / "src"
    if src.is_dir() and any((p / "__init__.py").exists() or p.suffix == ".py" for p in src.iterdir()):
        return ["src"]
    return ["."]


def _ready(root: Path) -> Venv | None:
    try:
        meta = json.loads((root / _READY).read_text())
    except (OSError, ValueError):
        return None
    return Venv(root / "venv", tuple(meta["import_dirs"]), meta.get("pretend_version"))


def _run_logged(cmd: str | list[str], cwd: Path, env: dict[str, str], log: Path, shell: bool = False) -> None:
    with log.open("a") as fh:
        fh.write(f"$ {cmd if isinstance(cmd, str) else ' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, shell=shell, stdout=fh, stderr=subprocess.STDOUT, timeout=1800
        )
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise EnvError(f"setup step failed (exit {proc.returncode}): {cmd}\nlog: {log}\n{tail}")


@contextmanager
def _locked(lock: Path) -> Iterator[None]:
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _archives(d: Path) -> list[Path]:
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".zip")))


def _extract(archive: Path, dest: Path) -> None:
    """Extract an sdist and strip its single top-level folder."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(tmp, filter="data")  # refuses absolute paths and links out of the tree
    entries = list(tmp.iterdir())
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
    shutil.move(str(top), str(dest))
    shutil.rmtree(tmp, ignore_errors=True)


def _copy_tree(src: Path, dst: Path) -> None:
    ignore = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(src, dst, ignore=ignore, symlinks=True, dirs_exist_ok=True)


def _write_excludes(repo: Path) -> None:
    info = repo / ".git" / "info"
    info.mkdir(parents=True, exist_ok=True)
    with (info / "exclude").open("a") as fh:
        fh.write(_EXCLUDES)


def _sibling(p: Path, suffix: str) -> Path:
    return p.with_name(p.name + suffix)  # not with_suffix: "pkg_1.2.0" would lose its ".0"


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"
