"""Mine real bug-fix commits from local mirrors into `bugs.jsonl` (run once; the data is committed).

    python -m benchmarks.generalise.build --mirrors MIRRORS_DIR [--per-repo 3] [-o FILE]
        [--timeout 60] [--repo-minutes M]

A mirror is a bare git dir `<mirrors>/<owner>+<name>/repo` (a `git clone --bare` of the public
repository works). A candidate is a non-merge commit whose message says it fixes something and
whose diff changes 1-3 lines of exactly one library module and at least one test file. It becomes
a task when, at the parent commit with the commit's test changes applied, some tests of the touched
test files fail and pass once the library change is applied, and no other test breaks. The task's
base is the parent commit (`base_commit`), `patch` is the real library change, `test_patch` the
real test change; PASS_TO_PASS holds every test of the project's test folder that passes before
and after (the held-out check), when the folder runs within the time limit (`--timeout`, seconds
per pytest run: raise it on a loaded machine, where a slow run would reject a good candidate).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIX_WORDS = re.compile(r"\b(fix(es|ed)?|bug|correct(ly)?|crash|wrong|handle|avoid|prevent|respect|ensure|don'?t)\b", re.I)
SKIP_WORDS = re.compile(r"\b(typo|flake8|lint|ruff|pre-commit|mypy|release|backport|rename|docs?|style|refactor|cleanup|upgrade|deps)\b", re.I)
# Test-only dependencies from the package index; the library itself is imported from the checkout.
EXTRA_DEPS = {
    "scrapy/w3lib": ["six"],  # older commits import it in their tests
    "theskumar/python-dotenv": ["click"],
    "SethMMorton/natsort": ["hypothesis", "pytest-mock"],
    "pypa/packaging": ["pretend"],
    "asottile/pyupgrade": ["tokenize-rt"],
    "asottile/add-trailing-comma": ["tokenize-rt"],
    "dateutil/dateutil": ["six", "freezegun", "hypothesis"],
    "jazzband/prettytable": ["wcwidth"],
    "dgilland/pydash": ["typing-extensions", "pytest-cov"],  # pytest-cov: its addopts name --cov options
    "marshmallow-code/marshmallow": ["packaging", "pytz", "simplejson"],
    "jpadilla/pyjwt": ["cryptography"],  # its algorithm tests use the optional crypto backend
    "agronholm/cbor2": ["hypothesis"],
    "jd/tenacity": ["tornado", "typeguard"],
    "lark-parser/lark": ["regex"],  # its tests of the regex backend run when it is installed
}


def git(gd: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(["git", "--git-dir", str(gd), *args], capture_output=True, text=True, input=input).stdout


def is_test(path: str) -> bool:
    return bool(re.search(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*\.py$|_test\.py$", path))


def candidates(gd: Path) -> list[tuple[str, str, str, list[str]]]:
    out = git(gd, "log", "--no-merges", "--since=2016-01-01", "--numstat", "--format=@@%H %s")
    found, cur = [], None
    for line in out.splitlines() + ["@@end"]:
        if line.startswith("@@"):
            if cur:
                sha, subject, files = cur
                src = [f for f in files if f[2].endswith(".py") and not is_test(f[2])
                       and not f[2].startswith(("docs/", "doc/", "setup.py", "noxfile", "conftest", "benchmarks", "examples"))]
                tests = [f[2] for f in files if f[2].endswith(".py") and is_test(f[2])]
                if (len(src) == 1 and tests and src[0][0] != "-" and 1 <= int(src[0][0]) <= 3
                        and 1 <= int(src[0][1]) <= 3 and FIX_WORDS.search(subject) and not SKIP_WORDS.search(subject)):
                    found.append((sha, subject, src[0][2], tests))
            sha, _, subject = line[2:].partition(" ")
            cur = (sha, subject, [])
        elif line.strip() and cur and len(parts := line.split("\t")) == 3:
            cur[2].append(parts)
    return found


def pytest_status(root: Path, targets: list[str], timeout: float) -> dict[str, str] | None:
    import_dir = "src" if (root / "src").is_dir() else "."
    env = {**os.environ, "PYTHONPATH": str(root / import_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--color=no", "-x" * 0, *targets]
    cmd = [c for c in cmd if c]
    try:
        p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    status = {}
    if m := re.search(r"No module named '([\w.]+)'", p.stdout):
        print(f"  missing module {m.group(1)}", file=sys.stderr)
    for line in p.stdout.splitlines():
        # The whole rest of the line: parametrised ids may hold spaces (FAILED lines add " - why").
        m = re.match(r"(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED) (\S+::.+?)(?: - .*)?$", line)
        if m:
            status[m.group(2)] = m.group(1)
    return status


def build_one(gd: Path, repo: str, sha: str, subject: str, src: str, tests: list[str], timeout: float = 60) -> dict | None:
    parent = git(gd, "rev-parse", f"{sha}^").strip()
    test_patch = git(gd, "diff", parent, sha, "--", *tests)
    patch = git(gd, "diff", parent, sha, "--", src)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        archive = subprocess.run(["git", "--git-dir", str(gd), "archive", parent], capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        if subprocess.run(["git", "apply"], cwd=root, input=test_patch, text=True, capture_output=True).returncode:
            return None
        tests = [t for t in tests if (root / t).exists()]
        before = pytest_status(root, tests, timeout)
        if not before:
            return None
        subprocess.run(["git", "apply"], cwd=root, input=patch, text=True, check=True)
        after = pytest_status(root, tests, timeout)
        if not after:
            return None
        f2p = sorted(t for t, s in after.items() if s == "PASSED" and before.get(t) in ("FAILED", "ERROR", None)
                     and t in before)
        broken = [t for t, s in after.items() if s in ("FAILED", "ERROR") and before.get(t) == "PASSED"]
        if not f2p or broken or len(f2p) > 10:
            return None
        folder = tests[0].split("/")[0] if "/" in tests[0] else None
        full_after = pytest_status(root, [folder], timeout) if folder else None
        subprocess.run(["git", "apply", "-R"], cwd=root, input=patch, text=True, check=True)
        full_before = pytest_status(root, [folder], timeout) if full_after else None
        p2p = sorted(t for t, s in (full_after or {}).items() if s == "PASSED" and (full_before or {}).get(t) == "PASSED")
        if p2p:
            test_cmd = f"pytest -rA -p no:cacheprovider {folder}"
        else:  # the folder does not run (in time, or it fails to collect): the touched test files
            p2p = sorted(t for t, s in after.items() if s == "PASSED" and before.get(t) == "PASSED")
            test_cmd = "pytest -rA -p no:cacheprovider " + " ".join(tests)
    name = repo.split("/")[1].lower()
    return {
        "instance_id": f"{name}-{sha[:8]}",
        "repo": repo,
        "base_commit": parent,
        "fix_commit": sha,
        "problem_statement": f"{subject}\n\n(Real bug-fix commit {sha[:12]} of {repo}; the failing tests show the bug.)\n",
        "FAIL_TO_PASS": f2p,
        "PASS_TO_PASS": [t for t in p2p if t not in f2p],
        "test_patch": test_patch,
        "patch": patch,
        "setup": ["pip install pytest", *(f"pip install {d}" for d in EXTRA_DEPS.get(repo, []))],
        "test_cmd": test_cmd,
        "agent_test_cmd": "pytest -rA -p no:cacheprovider",
    }


LICENCES = [("MIT", r"\bMIT License\b|Permission is hereby granted, free of charge"), ("Apache-2.0", r"Apache License"),
             ("BSD", r"\bBSD\b|Redistribution and use in source and binary forms"), ("MPL-2.0", r"Mozilla Public"),
             ("LGPL", r"Lesser General Public"), ("GPL", r"GNU General Public")]  # fmt: skip


def licence(gd: Path) -> str:
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.rst", "LICENSE.md", "LICENCE", "COPYING", "LICENSE-MIT"):
        text = git(gd, "show", f"HEAD:{name}")
        if text.strip():
            found = [key for key, pattern in LICENCES if re.search(pattern, text)]
            return " and ".join(found) or " ".join(text.split()[:8])
    return "see the repository"


def assign_splits(rows: list[dict], per_repo: int = 2) -> list[dict]:
    """At most `per_repo` tasks per repository (the newest), then the split, fixed once before any
    tuning: tasks ranked by the sha256 of their id, the lower half `tune`, the rest `heldout`."""
    count: dict[str, int] = {}
    kept = [r for r in rows if (count := {**count, r["repo"]: count.get(r["repo"], 0) + 1})[r["repo"]] <= per_repo]
    ranked = sorted(kept, key=lambda r: hashlib.sha256(r["instance_id"].encode()).hexdigest())
    for i, r in enumerate(ranked):
        r["split"] = "tune" if i < len(ranked) // 2 else "heldout"
    return kept


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mirrors", type=Path, required=True)
    ap.add_argument("--repo", action="append", default=[], help="owner/name (default: every mirror)")
    ap.add_argument("--per-repo", type=int, default=3)
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("bugs.jsonl"))
    ap.add_argument("--timeout", type=float, default=60, help="seconds per pytest run (default 60)")
    ap.add_argument("--repo-minutes", type=float, default=0, help="stop a repository's candidates after M minutes")
    ap.add_argument("--split", action="store_true", help="cap and split the tasks already in --output")
    args = ap.parse_args(argv)
    if args.split:
        rows = assign_splits([json.loads(ln) for ln in args.output.read_text().splitlines() if ln.strip()])
        args.output.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return 0
    repos = args.repo or sorted(p.parent.name.replace("+", "/", 1) for p in args.mirrors.glob("*/repo"))
    rows: list[dict] = []
    args.output.write_text("")
    for repo in repos:
        gd = args.mirrors / repo.replace("/", "+", 1) / "repo"
        if (gd / ".git").is_dir():
            gd = gd / ".git"
        lic, kept, start = licence(gd), 0, time.monotonic()
        for sha, subject, src, tests in candidates(gd):
            if kept >= args.per_repo:
                break
            if args.repo_minutes and time.monotonic() - start > 60 * args.repo_minutes:
                print(f"{repo}: stopped after {args.repo_minutes:g} minutes", file=sys.stderr, flush=True)
                break
            try:
                row = build_one(gd, repo, sha, subject, src, tests, args.timeout)
            except (subprocess.CalledProcessError, OSError, ValueError) as e:  # an odd tree: skip it
                print(f"  {type(e).__name__}: {e}", file=sys.stderr)
                row = None
            print(f"{repo} {sha[:10]} {'KEPT' if row else 'no'} {subject[:70]}", file=sys.stderr, flush=True)
            if row:
                row["source_licence"] = f"{lic}; from https://github.com/{repo} commit {sha}"
                rows.append(row)
                kept += 1
                with args.output.open("a") as fh:  # kept as found: a long build can be stopped
                    fh.write(json.dumps(row) + "\n")
    print(f"{len(rows)} tasks from {len({r['repo'] for r in rows})} repositories -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
