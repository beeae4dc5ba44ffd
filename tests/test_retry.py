import email.utils

import pytest

from treefix.agent.errors import ConfigError
from treefix.agent.models.base import ModelError, Price
from treefix.agent.models.retry import (
    Backoff,
    Failure,
    Transient,
    billed_worst_case,
    parse_retry_after,
    status_error,
    with_retries,
)


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after({"retry-after": when}, now=1_000_000) == pytest.approx(30.0)
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after(None) is None


def test_backoff_grows_is_capped_and_defers_to_the_server():
    b = Backoff(base=1.0, cap=4.0, jitter=0.0)
    assert [b.delay(n, None) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.delay(1, 12.5) == 12.5


def test_retries_report_each_attempt_and_stop_at_the_bound():
    calls, waits, seen = [], [], []

    def flaky():
        calls.append(1)
        raise Transient("HTTP 503: busy", retry_after=0.5, maybe_billed=len(calls) == 2)

    with pytest.raises(ModelError, match="gave up after 2 retries"):
        with_retries(flaky, Backoff(max_retries=2), what="m", on_attempt=seen.append, sleep=waits.append)
    assert len(calls) == 3 and waits == [0.5, 0.5]
    assert seen == [Failure(1, "HTTP 503: busy", False), Failure(2, "HTTP 503: busy", True)]


def test_zero_argument_callbacks_are_supported():
    ticks = []
    replies = iter([Transient("x"), "ok"])

    def once():
        r = next(replies)
        if isinstance(r, Exception):
            raise r
        return r

    assert (
        with_retries(once, Backoff(), what="m", on_attempt=lambda: ticks.append(1), sleep=lambda s: None)
        == "ok"
    )
    assert ticks == [1]


def test_status_classification():
    assert isinstance(status_error(401, "bad key", None, "OPENAI_API_KEY"), ConfigError)
    assert isinstance(status_error(404, "no such model", None, "K"), ConfigError)
    assert isinstance(status_error(429, "You exceeded your current quota", None, "K"), ModelError)
    t = status_error(429, "slow down", {"retry-after": "3"}, "K")
    assert isinstance(t, Transient) and t.retry_after == 3.0
    assert isinstance(status_error(529, "overloaded", None, "K"), Transient)
    assert isinstance(status_error(400, "context too long", None, "K"), ModelError)


def test_billed_worst_case():
    c = billed_worst_case(1000, 200, Price(3.0, 15.0, 0.3, 3.75))
    assert c.cost == pytest.approx((1000 * 3.75 + 200 * 15) / 1e6) and c.usage.total == 1200
    assert billed_worst_case(10, 10, None).cost is None
