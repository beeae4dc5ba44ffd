import os

import pytest

from treefix.agent import settings
from treefix.agent.config import build_config
from treefix.agent.errors import ConfigError


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    monkeypatch.setenv("TREEFIX_CONFIG_DIR", str(cfg))
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    saved = dict(os.environ)  # load_env writes to the environment: put it back afterwards
    yield cfg
    os.environ.clear()
    os.environ.update(saved)


def test_missing_key_is_one_clear_message():
    with pytest.raises(ConfigError) as e:
        settings.api_key("anthropic")
    msg = str(e.value)
    assert "ANTHROPIC_API_KEY" in msg and ".env" in msg and "\n" not in msg


def test_dotenv_here_wins_over_config_dir_but_not_environment(tmp_path, isolated, monkeypatch):
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-from-here\n")
    (isolated / ".env").write_text("OPENAI_API_KEY=sk-from-config\nANTHROPIC_API_KEY=ak-from-config\n")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env")
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-from-here\nOPENAI_BASE_URL=http://dotenv\n")
    settings.load_env()
    assert settings.api_key("openai") == "sk-from-here"
    assert settings.api_key("anthropic") == "ak-from-config"
    assert settings.base_url("openai") == "http://env"


def test_config_file_defaults(isolated):
    (isolated / "config.toml").write_text(
        'model = "anthropic/claude-haiku-4-5"\nbase_url = "http://127.0.0.1:1/v1"\n[limits]\ncost_limit = 1.5\nmax_turns = 40\n'
    )
    s = settings.load_settings()
    assert s.model == "anthropic/claude-haiku-4-5"
    assert settings.base_url("openai", s) == "http://127.0.0.1:1/v1"
    limits = build_config([], {}).limits  # the file's limits reach every run through the one builder
    assert limits.cost_limit == 1.5 and limits.max_turns == 40 and isinstance(limits.max_turns, int)


@pytest.mark.parametrize(
    "text, needle",
    [("model = [", "TOML"), ("modle = 'x'", "modle"), ("[limits]\ncost = 1", "unknown config key 'limits.cost'")],
)
def test_bad_config_file_is_one_config_error(isolated, text, needle):
    (isolated / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=needle):
        build_config([], {})


def test_no_config_file_is_fine():
    assert settings.load_settings().model is None


def test_redact(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "not-shaped-like-a-key-123")
    text = "key not-shaped-like-a-key-123 and sk-ant-abcdefghijklmnopqrstu and sk-proj-ABCDEFGHIJKLMNOPQRSTUV"
    out = settings.redact(text)
    assert "not-shaped" not in out and "abcdefghij" not in out and "ABCDEFGHIJ" not in out
    assert out.count("***") == 3
    assert settings.redact("connection to http://me:hunter2@proxy:8080/v1 failed") == (
        "connection to http://***@proxy:8080/v1 failed"
    )
