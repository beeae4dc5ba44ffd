"""What the OpenAI and Anthropic models share: keys, prices, bounded retries, the text-tools switch."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from treefix.agent.errors import ConfigError
from treefix.agent.models.base import Completion, Message, ModelError, Price, ToolSpec, Usage
from treefix.agent.models.pricing import price_for
from treefix.agent.models.retry import (
    Backoff,
    Failure,
    Transient,
    error_message,
    report,
    status_error,
    with_retries,
)
from treefix.agent.settings import api_key as required_key

log = logging.getLogger(__name__)
PASSTHROUGH = ("top_p", "stop", "seed", "reasoning_effort", "top_k")
NO_KEY = "not-needed"  # local servers ignore the key, the SDKs insist on one


class ToolsRefused(Exception):
    """The server answered a request with `tools` by saying it has no tool support."""


def refuses_tools(status: int, message: str) -> bool:
    # Ollama: "... does not support tools"; vLLM: "auto tool choice requires --enable-auto-tool-choice";
    # llama.cpp: "tools param requires --jinja flag".
    return status in (400, 404, 422, 500, 501) and "tool" in message.lower()


class ProviderModel:
    provider = ""
    key_var = ""
    base_url_var = ""
    sdk: Any = None  # the provider's SDK module: its client and its error classes

    def __init__(
        self,
        name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120,
        max_retries: int = 3,
        text_tools: bool | None = None,
        price: Price | None = None,
        *,
        stream: bool = False,
        backoff: Backoff | None = None,
    ):
        self.model_id = name
        self.name = f"{self.provider}/{name}"
        self.base_url = base_url or os.environ.get(self.base_url_var) or None
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base URL {self.base_url!r} is not an http:// or https:// address")
        self.timeout = timeout
        self.text_tools = text_tools  # None: native tools, switching to text when the server refuses
        self._text_mode = bool(text_tools)
        self.stream = stream
        self.backoff = backoff or Backoff(max_retries=max_retries)
        self._price = price if price is not None else price_for(self.name)
        self._client = self._make_client(self._key(api_key))

    def _make_client(self, key: str) -> Any:
        raise NotImplementedError

    def _key(self, api_key: str | None) -> str:
        key = (api_key or os.environ.get(self.key_var, "")).strip()
        if key:
            return key
        if self.base_url is None:
            required_key(self.provider)  # raises the one clear ConfigError naming the variable
        return NO_KEY

    def __repr__(self) -> str:  # never show the client (and its key)
        return f"{type(self).__name__}({self.model_id!r}, base_url={self.base_url!r})"

    def price(self) -> Price | None:
        return self._price

    def set_price(self, price: Price) -> None:
        """A price from the user (`--price`), for models the table does not know or prices it gets wrong."""
        self._price = price

    def cost(self, usage: Usage) -> float | None:
        return self._price.cost(usage) if self._price is not None else None

    def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        *,
        max_tokens: int = 4096,
        temperature: float | None = None,
        on_attempt: Callable[[Failure], None] | Callable[[], None] | None = None,
        deadline: float | None = None,
        tool_choice: str | None = None,
        **params: Any,
    ) -> Completion:
        """One completion; retries are bounded and each is announced to `on_attempt` first.

        `tool_choice="none"`: the tools are sent (the cached prefix stays the same for every role,
        and a conversation holding tool blocks stays valid) but the model may not call them.

        `deadline` (a `time.monotonic()` value, from the run's time budget) caps every attempt's
        HTTP timeout and every wait between attempts, so a call never outlives the budget."""
        extra = {k: params[k] for k in PASSTHROUGH if k in params}
        if tool_choice is not None:
            extra["tool_choice"] = tool_choice

        def attempt(text_mode: bool) -> Completion:
            timeout = self.timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    raise ModelError(f"{self.name}: no time left in the run's budget")
            return self._once(
                messages, tools or None, text_mode, max_tokens, temperature, {**extra, "timeout": timeout}
            )

        def run(text_mode: bool) -> Completion:
            return with_retries(
                lambda: attempt(text_mode),
                self.backoff,
                what=self.name,
                on_attempt=on_attempt,
                deadline=deadline,
            )

        try:
            return run(self._text_mode)
        except ToolsRefused as e:
            if self.text_tools is False:
                raise ModelError(f"{self.name}: the server does not support tool calls ({e})") from None
            log.warning(
                "%s: the server refused native tools (%s); using text tool calls from now on", self.name, e
            )
            self._text_mode = True
            if on_attempt is not None:
                report(
                    on_attempt,
                    Failure(1, "server refused native tools; retrying with text tool calls", False),
                )
            return run(True)

    def _request(self, body: dict[str, Any], tools_sent: bool) -> Any:
        """One request through the SDK, its errors translated the same way for every provider:
        what may be retried (and may have been billed), what is final, and a refusal of tools."""
        sdk = self.sdk
        try:
            return self._fetch_stream(body) if self.stream else self._fetch(body)
        except sdk.APITimeoutError:
            raise Transient(f"no reply within {body['timeout']:g}s", maybe_billed=True) from None
        except sdk.APIConnectionError as e:
            cause = type(e.__cause__).__name__ if e.__cause__ is not None else type(e).__name__
            refused = "connect" in cause.lower()  # nothing was sent, so nothing can be billed
            where = self._client.base_url
            raise Transient(
                f"connection to {where} failed ({cause})",
                retry_after=0.5 if refused else None,  # nothing listens: a short wait shows if it comes back
                maybe_billed=not refused,
                unreachable=refused,
            ) from None
        except sdk.APIStatusError as e:
            msg = error_message(e.body, e.message)
            if tools_sent and refuses_tools(e.status_code, msg):
                raise ToolsRefused(msg) from None
            raise status_error(e.status_code, msg, e.response.headers, self.key_var) from None
        except (ValueError, sdk.APIResponseValidationError) as e:  # JSONDecodeError is a ValueError
            raise Transient(f"unparseable reply ({type(e).__name__})", maybe_billed=True) from None

    def _fetch(self, body: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _fetch_stream(self, body: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _once(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None,
        text_mode: bool,
        max_tokens: int,
        temperature: float | None,
        extra: dict[str, Any],
    ) -> Completion:
        raise NotImplementedError
