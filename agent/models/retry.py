"""Bounded retries with backoff that honour `Retry-After`, each extra attempt reported first.

The SDK clients are built with `max_retries=0` so that every retry goes through here: the number
is bounded, and `on_attempt` runs *before* each extra attempt so the caller can charge it (and
stop the retry by raising, e.g. when the budget has no room left).
"""

from __future__ import annotations

import email.utils
import inspect
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from treefix.agent.errors import ConfigError
from treefix.agent.models.base import Completion, ModelError, Price, Usage
from treefix.agent.settings import redact

log = logging.getLogger(__name__)
T = TypeVar("T")


class Transient(Exception):
    """A failure worth retrying (429, 5xx, timeout, dropped connection, unparseable reply)."""

    def __init__(
        self, message: str, retry_after: float | None = None, maybe_billed: bool = False, unreachable: bool = False
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.unreachable = unreachable  # no connection could be made: nothing listens there
        # True when the request may have reached the model (timeout, garbled reply): the provider
        # may bill it, so a careful caller charges that attempt at its worst case.
        self.maybe_billed = maybe_billed


@dataclass(frozen=True)
class Failure:
    """What `on_attempt` is told before a retry."""

    retry: int  # the retry about to be made, 1-based
    reason: str
    maybe_billed: bool


@dataclass(frozen=True)
class Backoff:
    max_retries: int = 3
    base: float = 1.0  # seconds before the first retry, doubled each time
    cap: float = 30.0  # longest wait we choose ourselves
    max_retry_after: float = 120.0  # a server asking for more than this is treated as a final refusal
    jitter: float = 0.1  # fraction of the delay, spreads parallel workers apart

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return max(retry_after, 0.0)
        d = min(self.base * 2 ** (attempt - 1), self.cap)
        return d * (1 + random.uniform(0, self.jitter))


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date), or None."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)


def report(on_attempt: Callable[..., None], failure: Failure) -> None:
    """Call `on_attempt(failure)`; a callback that takes no argument is called without it."""
    try:
        takes_arg = bool(inspect.signature(on_attempt).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        takes_arg = True
    if takes_arg:
        on_attempt(failure)
    else:
        on_attempt()


def billed_worst_case(prompt_tokens: int, max_output_tokens: int, price: Price | None) -> Completion:
    """What to settle for a failed attempt the provider may still bill: its worst case."""
    cost = price.worst_case(prompt_tokens, max_output_tokens) if price is not None else None
    return Completion("", usage=Usage(prompt_tokens, max_output_tokens), cost=cost, finish_reason="error")


def with_retries(
    fn: Callable[[], T],
    backoff: Backoff,
    *,
    what: str,
    on_attempt: Callable[..., None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
) -> T:
    """Run `fn`, retrying `Transient` failures at most `backoff.max_retries` times.

    `on_attempt(failure)` is called before every attempt after the first (before the wait);
    whatever it raises ends the retries and propagates. Anything else `fn` raises propagates at once.
    No retry starts whose wait would end past `deadline` (a `time.monotonic()` value).
    """
    attempt = 0
    reached = False  # some attempt got through to a server
    while True:
        try:
            return fn()
        except Transient as raw:
            e = Transient(redact(str(raw)), raw.retry_after, raw.maybe_billed)  # messages may quote URLs
            reached = reached or not raw.unreachable
            attempt += 1
            if attempt > backoff.max_retries:
                raise ModelError(
                    f"{what}: {e} (gave up after {backoff.max_retries} retries)", e.maybe_billed, not reached
                ) from None
            if e.retry_after is not None and e.retry_after > backoff.max_retry_after:
                raise ModelError(
                    f"{what}: {e}; the server asks to wait {e.retry_after:.0f}s, "
                    f"more than the {backoff.max_retry_after:.0f}s allowed",
                    e.maybe_billed,
                ) from None
            wait = backoff.delay(attempt, e.retry_after)
            if deadline is not None and time.monotonic() + wait >= deadline:
                raise ModelError(f"{what}: {e}; no time left to retry", e.maybe_billed) from None
            log.warning("%s: %s; retry %d/%d in %.1fs", what, e, attempt, backoff.max_retries, wait)
            if on_attempt is not None:
                report(on_attempt, Failure(attempt, str(e), e.maybe_billed))
            sleep(wait)


def status_error(status: int, message: str, headers: Mapping[str, str] | None, key_var: str) -> Exception:
    """The exception for an HTTP error reply: Transient to retry, else ConfigError or ModelError."""
    message = redact(" ".join(message.split()))[:300]
    if status == 401:
        return ConfigError(f"the server rejected the API key (401): check {key_var}")
    if status == 403:
        return ConfigError(f"permission denied (403): {message}")
    if status == 404:
        return ConfigError(f"not found (404): {message}; check the model name and the base URL")
    if status == 429 and "quota" in message.lower():
        return ModelError(f"out of quota (429): {message}")
    if status in (408, 409, 425, 429) or status >= 500:
        return Transient(f"HTTP {status}: {message}", parse_retry_after(headers))
    return ModelError(f"request refused ({status}): {message}")


def error_message(body: object, fallback: str) -> str:
    """The human part of an error body (`{"error": {"message": ...}}` in both APIs)."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return fallback
