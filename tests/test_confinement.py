"""What a test command can reach: a probe run in each sandbox, then through `treefix fix`."""

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import make_repo

from treefix.tools.confine import RUNTIME_PARTS
from treefix.tools.sandbox import UNCONFINED, BubblewrapSandbox, SubprocessSandbox, bwrap_works, scratch_root
from treefix.tools.secrets import scrub, without_secrets

KEY = "sk-probe-" + uuid.uuid4().hex  # shaped like a provider key, unique to this session
SECRETS = {"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": "sk-ant-" + uuid.uuid4().hex, "GITHUB_TOKEN": "ghp_x" + uuid.uuid4().hex}
SANDBOXES = [SubprocessSandbox] + ([BubblewrapSandbox] if bwrap_works() else [])
needs_bwrap = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not usable here")

PROBE = r"""
import json, os, socket
from pathlib import Path

found = {"env": sorted(os.environ), "home_entries": sorted(os.listdir(os.environ["HOME"]))}
host_home = os.environ.get("PROBE_HOST_HOME", "")
found["host_home_entries"] = [  # two levels deep
    str(p.relative_to(host_home)) for p in Path(host_home).glob("*") for p in (p, *(p.glob("*") if p.is_dir() else ()))
] if os.path.isdir(host_home) else []
try:
    socket.create_connection(("127.0.0.1", int(os.environ["PROBE_PORT"])), timeout=2).close()
    found["net"] = True
except OSError:
    found["net"] = False
found["wrote"] = []
for target in filter(None, os.environ.get("PROBE_WRITE", "").split(os.pathsep)):
    try:
        Path(target).write_text("probe")
        found["wrote"].append(target)
    except OSError:
        pass
leaked = []
for proc in Path("/proc").glob("[0-9]*"):
    try:
        leaked += [v for v in (proc / "environ").read_bytes().split(b"\0") if v.startswith(b"OPENAI_API_KEY=")]
    except OSError:
        pass
found["proc_keys"] = len(leaked)
print("found:", b" ".join(leaked).decode())  # what a hostile test would exfiltrate through its output
Path(os.environ["PROBE_OUT"]).write_text(json.dumps(found))
"""


@pytest.fixture(params=SANDBOXES, ids=lambda cls: cls.__name__)
def sandbox(request):
    return request.param(grace=0.5)


@pytest.fixture
def secrets(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def listener():
    """A service on the host's 127.0.0.1, as a local database or model server would be."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def key_holder():
    """A host process started with a provider key in its environment, as `treefix` itself may be."""
    proc = subprocess.Popen(["sleep", "60"], env={**os.environ, "OPENAI_API_KEY": KEY})
    yield proc
    proc.kill()
    proc.wait()


def probe(sandbox, cwd: Path, port: int, **env: str) -> tuple[dict, str]:
    cwd.mkdir(exist_ok=True)
    (cwd / "probe.py").write_text(PROBE)
    out = cwd / "probe.json"
    env = {"PROBE_OUT": str(out), "PROBE_PORT": str(port), **env}
    result = sandbox.run([sys.executable, "probe.py"], cwd, timeout=30, env=env)
    assert out.exists(), result.output
    return json.loads(out.read_text()), result.output


def test_no_provider_key_or_token_and_an_empty_home(sandbox, secrets, listener, tmp_path):
    found, output = probe(sandbox, tmp_path / "wt", listener)
    assert not set(SECRETS) & set(found["env"])
    assert {"PATH", "HOME", "PROBE_OUT"} <= set(found["env"])
    assert found["home_entries"] == []
    assert all(v not in output for v in SECRETS.values())


def test_named_variables_pass_but_provider_keys_never(sandbox, secrets, listener, tmp_path, monkeypatch):
    monkeypatch.setenv("TREEFIX_TEST_ENV", "DATABASE_URL, OPENAI_API_KEY")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///test.db")
    monkeypatch.setenv("UNNAMED_SETTING", "x")
    found, _ = probe(sandbox, tmp_path / "wt", listener)
    assert "DATABASE_URL" in found["env"]
    assert "OPENAI_API_KEY" not in found["env"] and "UNNAMED_SETTING" not in found["env"]


def test_a_secret_the_command_finds_anyway_is_scrubbed_from_its_output(sandbox, secrets, tmp_path):
    (tmp_path / "config.ini").write_text(f"key = {SECRETS['GITHUB_TOKEN']}\n")
    result = sandbox.run("cat config.ini; echo sk-abcdefghijklmnopqrstuv", tmp_path, timeout=10)
    assert result.output == "key = ***\n***\n"


@needs_bwrap
def test_bubblewrap_hides_homes_network_outside_writes_and_the_callers_environment(tmp_path, listener, key_holder):
    home = Path.home()
    assert any(home.iterdir()), "the host home must hold something for this test to mean anything"
    outside = [tmp_path / "outside.txt", home / f".treefix-probe-{uuid.uuid4().hex}", Path("/var/tmp/treefix-probe")]
    try:
        found, output = probe(
            BubblewrapSandbox(grace=0.5), tmp_path / "wt", listener,
            PROBE_HOST_HOME=str(home), PROBE_WRITE=os.pathsep.join(map(str, outside)),
        )  # fmt: skip
        visible = {Path(e) for e in found["host_home_entries"]}
        # Only the runtime parts of what PATH and the interpreter need (bin, lib, ...), nothing else.
        needed = [Path(p).relative_to(home).parts for p in [*os.environ["PATH"].split(os.pathsep), sys.base_prefix]
                  if Path(p).is_relative_to(home)]  # fmt: skip
        assert {e.parts[0] for e in visible} <= {n[0] for n in needed}
        second = set(RUNTIME_PARTS) | {n[1] for n in needed if len(n) > 1}
        assert [e for e in visible if len(e.parts) == 2 and e.parts[1] not in second] == []
        assert not [f for f in home.iterdir() if f.is_file() and Path(f.name) in visible]  # .gitconfig, .netrc, ...
        assert found["net"] is False
        assert found["proc_keys"] == 0  # its own process namespace: the caller's /proc is out of sight
        assert [p for p in outside if p.exists()] == []
    finally:
        for p in outside:
            p.unlink(missing_ok=True)
    # ... while its worktree and the scratch folder stay writable
    assert (tmp_path / "wt" / "probe.json").exists()
    scratch = scratch_root() / f"probe-{uuid.uuid4().hex}"
    assert BubblewrapSandbox().run(f"echo ok > {scratch}", tmp_path, timeout=10).exit_code == 0
    assert scratch.read_text() == "ok\n"
    scratch.unlink()


# --- through `treefix fix` -------------------------------------------------------------------

REPO = {
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a - b\n",
    "tests/test_ops.py": "from calc.ops import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n",
    "tests/test_probe.py": "import runpy\n\n\ndef test_probe():\n    runpy.run_path('probe.py')\n    assert False, 'shows what the probe printed'\n",
    "probe.py": PROBE,
}


def no_bwrap_path(tmp_path: Path) -> str:
    """PATH with the tools a run needs and no bubblewrap."""
    shims = tmp_path / "bin"
    shims.mkdir()
    for tool in ("bash", "sh", "git", "patch", "env", "sleep"):
        if found := subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip():
            (shims / tool).symlink_to(found)
    return f"{shims}{os.pathsep}{Path(sys.executable).parent}"


@pytest.mark.parametrize("confined", [True, False], ids=["bubblewrap", "fallback"])
def test_a_probing_test_run_through_treefix_fix(confined, tmp_path, listener):
    if confined and not bwrap_works():
        pytest.skip("bubblewrap is not usable here")
    repo = make_repo(tmp_path / "repo", REPO)
    out = scratch_root() / f"probe-{uuid.uuid4().hex}.json"
    env = {
        **os.environ, **SECRETS, "PROBE_OUT": str(out), "PROBE_PORT": str(listener), "TREEFIX_TEST_ENV": "PROBE_OUT PROBE_PORT",
        "TREEFIX_CONFIG_DIR": str(tmp_path / "config"), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }  # fmt: skip
    if not confined:
        env["PATH"] = no_bwrap_path(tmp_path)
    cmd = [sys.executable, "-m", "treefix.agent.cli", "fix", str(repo), "--issue", "add() subtracts", "-m", "offline"]
    cmd += ["--test-cmd", f"{sys.executable} -m pytest -q -p no:cacheprovider", "--max-nodes", "3", "-o", str(tmp_path / "run")]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    try:
        found = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert not set(SECRETS) & set(found["env"]) and found["home_entries"] == []
    stored = b"".join(p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file())
    assert b"found:" in stored  # the probe's output was kept ...
    assert all(v.encode() not in stored for v in SECRETS.values())  # ... without a secret in it
    assert all(v not in result.stdout + result.stderr for v in SECRETS.values())
    said = " ".join((result.stdout + result.stderr).split()).count(" ".join(UNCONFINED.split())[:60])
    if confined:
        assert (found["net"], found["proc_keys"], said) == (False, 0, 0)
    else:
        assert said == 1  # once per run, however many test runs it made


def test_helpers_that_need_the_environment_get_it_without_secrets(secrets, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "abcdefgh12345678")
    kept = without_secrets()
    assert "PATH" in kept and not {*SECRETS, "AWS_SECRET_ACCESS_KEY"} & set(kept)
    text = f"{SECRETS['ANTHROPIC_API_KEY']} abcdefgh12345678 https://me:hunter22@proxy:8080/x short"
    assert scrub(text) == "*** *** https://***@proxy:8080/x short"
