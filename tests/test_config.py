"""RunConfig from defaults, the user config file, -c sources and typed flags."""

import pytest

from treefix.agent.config import build_config
from treefix.agent.errors import ConfigError


@pytest.fixture(autouse=True)
def user_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TREEFIX_CONFIG_DIR", str(tmp_path / "cfg"))
    (tmp_path / "cfg").mkdir()
    return tmp_path / "cfg"


def test_precedence_defaults_file_sources_flags(tmp_path, user_config_dir):
    (user_config_dir / "config.toml").write_text('model = "openai/gpt-4o-mini"\n[limits]\ncost_limit = 1.0\nmax_nodes = 9\n')
    (tmp_path / "run.yaml").write_text("exploration: 2\nlimits:\n  max_nodes: 12\n  max_turns: 40\n")
    config = build_config([str(tmp_path / "run.yaml"), "limits.max_turns=50", "critic_weight=0.5"], {"limits.max_nodes": 20})
    assert config.model == "openai/gpt-4o-mini"  # from the user file
    assert config.limits.cost_limit == 1.0
    assert config.exploration == 2.0 and isinstance(config.exploration, float)
    assert config.limits.max_turns == 50  # later -c wins
    assert config.limits.max_nodes == 20  # a typed flag wins over everything
    assert config.critic_weight == 0.5
    assert config.limits.max_depth == 6  # untouched default


def test_unknown_key_and_bad_value_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'explore'"):
        build_config(["explore=2"], {})
    with pytest.raises(ConfigError, match="expected float"):
        build_config(["limits.cost_limit=lots"], {})
    with pytest.raises(ConfigError, match="neither a file nor"):
        build_config([str(tmp_path / "missing.yaml")], {})


def test_policy_defaults_are_the_lowest_source():
    """The offline policy prefers wider nodes; an explicit value, even the general default, still wins."""
    assert build_config([], {}).resolved().max_children == 16  # -m offline is the default model
    assert build_config(["max_children=5"], {}).resolved().max_children == 5
    assert build_config(["model=openai/gpt-4o-mini"], {}).resolved().max_children == 5
    weights = build_config([], {}).weights()
    assert (weights.execution, weights.critic) == (0.0, 1.0)
