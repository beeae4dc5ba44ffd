import json
import warnings

import pytest

from treefix.agent.budget import Budget, Limits
from treefix.agent.errors import ConfigError
from treefix.agent.models import pricing
from treefix.agent.models.base import Price, Usage


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TREEFIX_CONFIG_DIR", str(tmp_path))
    pricing.reload()
    yield tmp_path
    pricing._overrides.clear()
    pricing.reload()


def test_known_models_and_dated_snapshots():
    p = pricing.price_for("openai/gpt-4o-mini")
    assert p == Price(0.15, 0.6, 0.075, None)
    assert pricing.price_for("gpt-4o-2024-08-06") == pricing.price_for("gpt-4o")
    assert pricing.price_for("anthropic/claude-sonnet-4-5-20250929").cache_write == 3.75
    assert pricing.price_for("openrouter/openai/gpt-4.1-mini") == pricing.price_for("gpt-4.1-mini")
    assert pricing.context_window("claude-haiku-4-5") == 200_000


def test_cached_and_cache_write_tokens_priced_separately():
    p = pricing.price_for("claude-sonnet-4-5")
    u = Usage(input_tokens=10_000, output_tokens=1_000, cached_tokens=6_000, cache_write_tokens=2_000)
    expected = (2_000 * 3.0 + 6_000 * 0.3 + 2_000 * 3.75 + 1_000 * 15.0) / 1e6
    assert p.cost(u) == pytest.approx(expected)


def test_unknown_model_warns_once_and_is_none():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert pricing.price_for("openai/my-local-llama") is None
        assert pricing.price_for("openai/my-local-llama") is None
    assert len([w for w in caught if issubclass(w.category, pricing.UnknownPriceWarning)]) == 1
    assert "--price" in str(caught[0].message)


def test_unknown_price_with_cost_limit_needs_a_token_limit_or_price():
    budget = Budget(Limits(cost_limit=3.0))
    with pytest.raises(ConfigError, match="--max-tokens"):
        budget.require_enforceable(pricing.price_for("mystery", warn=False), "mystery")
    Budget(Limits(cost_limit=3.0, max_tokens=100_000)).require_enforceable(None, "mystery")


def test_user_file_overrides_table(user_dir):
    (user_dir / "prices.json").write_text(
        json.dumps({"models": {"gpt-4o": {"input": 1, "output": 2}, "llama3": {"input": 0, "output": 0}}})
    )
    pricing.reload()
    assert pricing.price_for("gpt-4o") == Price(1.0, 2.0)
    assert pricing.price_for("openai/llama3") == Price(0.0, 0.0)


def test_bad_user_file_is_a_config_error(user_dir):
    (user_dir / "prices.json").write_text("{nope")
    pricing.reload()
    with pytest.raises(ConfigError, match="prices.json"):
        pricing.price_for("gpt-4o")


def test_parse_and_set_price():
    assert pricing.parse_price("1.5,6") == Price(1.5, 6.0)
    assert pricing.parse_price("3,15,0.3,3.75") == Price(3.0, 15.0, 0.3, 3.75)
    for bad in ("", "1", "a,b", "1,2,3,4,5", "-1,2"):
        with pytest.raises(ConfigError, match="--price"):
            pricing.parse_price(bad)
    pricing.set_price("openai/llama3", Price(0.1, 0.2))
    assert pricing.price_for("llama3") == Price(0.1, 0.2)


def test_long_prompt_tier_prices_the_whole_call():
    p = pricing.price_for("anthropic/claude-haiku-5-5")
    short = Usage(input_tokens=100_000, output_tokens=1_000)
    long = Usage(input_tokens=100_001, output_tokens=1_000)
    assert p.cost(short) == pytest.approx((100_000 * 0.1 + 1_000 * 0.5) / 1e6)
    assert p.cost(long) == pytest.approx((100_001 * 0.5 + 1_000 * 2.5) / 1e6)
    assert p.worst_case(200_000, 1_000) == pytest.approx((200_000 * 0.625 + 1_000 * 2.5) / 1e6)


def test_every_shipped_price_loads():
    for name in pricing._table():
        assert pricing.price_for(name) is not None
