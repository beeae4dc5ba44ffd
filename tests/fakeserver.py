"""A fake model server on 127.0.0.1 speaking OpenAI chat-completions and Anthropic messages.

Each request is answered by the next scripted `Reply`, or by the `brain` when the script is
empty. Replies can be normal (text, tool calls), errors (429 + Retry-After, 500), a hung
connection, a dropped connection, malformed JSON, or truncated. Usage is computed the way the
providers do it: prompt tokens counted from the request, OpenAI-style automatic prefix caching
(longest prefix seen before), Anthropic-style caching up to the last `cache_control` breakpoint.
Every request is kept in `server.requests` with the usage reported for it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from treefix.tools.tokens import OFFLINE_ENCODING, count_tokens


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(
        default_factory=list
    )  # (name, args or raw text)
    finish: str | None = None  # "stop" | "length"; default: tool_calls when there are calls, else stop
    usage: dict[str, int] | None = None  # {"input", "output", "cached", "cache_write"} to override counting
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""  # message of an error reply
    raw: str | None = None  # a raw body (malformed JSON)
    hang: float = 0.0  # seconds to sleep before answering (longer than the client's timeout = hung)
    drop: bool = False  # close the connection without any answer


def text(t: str, **kw: Any) -> Reply:
    return Reply(text=t, **kw)


def tool_call(name: str, args: dict[str, Any] | str, text: str = "", **kw: Any) -> Reply:
    return Reply(text=text, tool_calls=[(name, args)], **kw)


def error(status: int, message: str = "server error", retry_after: float | None = None) -> Reply:
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return Reply(status=status, error=message, headers=headers)


def hang(seconds: float = 30.0) -> Reply:
    return Reply(hang=seconds)


def malformed() -> Reply:
    return Reply(raw='{"id": "broken", "choices": [{"message": {"content": "unfinished')


def truncated(t: str = "an answer cut off in the mid") -> Reply:
    return Reply(text=t, finish="length")


@dataclass
class Request:
    api: str  # "openai" | "anthropic"
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    stream: bool
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reply: Reply | None = None

    @property
    def texts(self) -> list[str]:
        """The text of every message (system included), in order."""
        out: list[str] = []
        system = self.body.get("system")
        if system:
            out.append(_text_of(system))
        out += [_text_of(m.get("content")) for m in self.body.get("messages", [])]
        return out

    @property
    def prompt(self) -> str:
        return "\n".join(self.texts)

    @property
    def has_tools(self) -> bool:
        return bool(self.body.get("tools"))

    @property
    def has_tool_blocks(self) -> bool:
        """The messages hold tool calls or results (either API's shape)."""
        for m in self.body.get("messages", []):
            if m.get("role") == "tool" or m.get("tool_calls"):
                return True
            content = m.get("content")
            if isinstance(content, list) and any(
                b.get("type") in ("tool_use", "tool_result") for b in content
            ):
                return True
        return False

    @property
    def tool_choice(self) -> str | None:
        """"none" | "auto" | ... as either API sends it, None when absent."""
        choice = self.body.get("tool_choice")
        return choice.get("type") if isinstance(choice, dict) else choice


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block.get("type") == "text":
            parts.append(block["text"])
        elif block.get("type") == "tool_result":
            parts.append(_text_of(block.get("content")))
        elif block.get("type") == "tool_use":
            parts.append(json.dumps(block.get("input")))
    return "\n".join(parts)


class FakeServer:
    def __init__(
        self,
        brain: Callable[[Request], Reply] | None = None,
        tools_supported: bool = True,
        min_cache: int = 0,
        strict_tool_blocks: bool = False,
    ):
        self.brain = brain
        self.tools_supported = tools_supported
        # Like the Anthropic API (and other hosts of its models): a request whose messages hold
        # tool_use/tool_result blocks must define `tools`, or it is refused with a 400.
        self.strict_tool_blocks = strict_tool_blocks
        self.min_cache = min_cache  # providers only cache prefixes of at least this many tokens
        self.requests: list[Request] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._seen_prefixes: set[str] = set()  # Anthropic cache entries (hash of the cached prefix)
        self._seen_tokens: list[list[int]] = []  # OpenAI: earlier prompts as token-id lists
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    # ---- lifecycle ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL for the OpenAI SDK (`.../v1`); the Anthropic SDK takes `root`."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *replies: Reply) -> FakeServer:
        with self._lock:
            self._script.extend(replies)
        return self

    # ---- answering ---------------------------------------------------------------------
    def _next(self, req: Request) -> Reply:
        if self.strict_tool_blocks and req.has_tool_blocks and not req.has_tools:
            return Reply(
                status=400,
                error="Requests which include `tool_use` or `tool_result` blocks must define tools.",
            )
        with self._lock:
            if self._script:
                return self._script.popleft()
        if not self.tools_supported and req.has_tools:
            return Reply(status=400, error="this model does not support tools")
        return self.brain(req) if self.brain else Reply(text="ok")

    def answer(self, req: Request) -> Reply:
        reply = self._next(req)
        if not self.tools_supported and req.has_tools and reply.status == 200 and not reply.raw:
            reply = Reply(status=400, error="this model does not support tools")
        req.reply = reply
        if reply.status == 200 and reply.raw is None:
            self._account(req, reply)
        with self._lock:
            self.requests.append(req)
        return reply

    def _account(self, req: Request, reply: Reply) -> None:
        if reply.usage is not None:
            u = reply.usage
            req.prompt_tokens, req.output_tokens = u.get("input", 0), u.get("output", 0)
            req.cached_tokens, req.cache_write_tokens = u.get("cached", 0), u.get("cache_write", 0)
            return
        out = reply.text + "".join(
            n + (a if isinstance(a, str) else json.dumps(a)) for n, a in reply.tool_calls
        )
        req.output_tokens = count_tokens(out)
        if req.api == "openai":
            self._openai_cache(req)
        else:
            self._anthropic_cache(req)

    def _openai_cache(self, req: Request) -> None:
        # Automatic prefix caching: the longest prefix shared with an earlier prompt.
        ids = _token_ids(_serial(req.body, upto=None))
        req.prompt_tokens = len(ids)
        with self._lock:
            best = max((_common(ids, old) for old in self._seen_tokens), default=0)
            self._seen_tokens.append(ids)
        if self.min_cache:  # like the real service: only long prefixes, in 128-token steps
            best = best // 128 * 128 if best >= self.min_cache else 0
        req.cached_tokens = best

    def _anthropic_cache(self, req: Request) -> None:
        total = len(_token_ids(_serial(req.body, upto=None)))
        req.prompt_tokens = total
        cut = _last_breakpoint(req.body)
        if cut is None:
            return
        prefix = _serial(req.body, upto=cut)
        n = len(_token_ids(prefix))
        if n < self.min_cache:
            return
        key = hashlib.sha256(prefix.encode()).hexdigest()
        with self._lock:
            hit = key in self._seen_prefixes
            self._seen_prefixes.add(key)
        if hit:
            req.cached_tokens = n
        else:
            req.cache_write_tokens = n

    def wait(self, seconds: float) -> None:
        """Sleep that ends early when the server stops (hung connections)."""
        self._stop.wait(seconds)

    # ---- per-node view -----------------------------------------------------------------
    def usage_rows(self) -> Iterator[dict[str, Any]]:
        for r in self.requests:
            yield {
                "api": r.api,
                "prompt": r.prompt_tokens,
                "cached": r.cached_tokens,
                "cache_write": r.cache_write_tokens,
                "output": r.output_tokens,
            }


# ---- request serialisation (what a provider's cache keys on) -------------------------------
def _serial(body: dict[str, Any], upto: tuple[str, int, int] | None) -> str:
    """A canonical text of tools, system and messages; `upto` cuts after a cache breakpoint."""
    parts = [json.dumps(body.get("tools") or [], sort_keys=True)]
    system = body.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else (system or [])
    for i, b in enumerate(blocks):
        parts.append("system:" + json.dumps(_strip_cc(b), sort_keys=True))
        if upto == ("system", i, 0):
            return "\n".join(parts)
    for i, m in enumerate(body.get("messages", [])):
        content = m.get("content")
        if isinstance(content, list) and upto is not None:
            for j, b in enumerate(content):
                parts.append(f"{m['role']}:" + json.dumps(_strip_cc(b), sort_keys=True))
                if upto == ("messages", i, j):
                    return "\n".join(parts)
        else:
            parts.append(f"{m.get('role')}:" + json.dumps(_strip_cc(m), sort_keys=True))
    return "\n".join(parts)


def _strip_cc(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _strip_cc(v) for k, v in d.items() if k != "cache_control"}
    if isinstance(d, list):
        return [_strip_cc(v) for v in d]
    return d


def _last_breakpoint(body: dict[str, Any]) -> tuple[str, int, int] | None:
    found = None
    system = body.get("system")
    if isinstance(system, list):
        for i, b in enumerate(system):
            if b.get("cache_control"):
                found = ("system", i, 0)
    for i, m in enumerate(body.get("messages", [])):
        if isinstance(m.get("content"), list):
            for j, b in enumerate(m["content"]):
                if b.get("cache_control"):
                    found = ("messages", i, j)
    return found


@cache
def _encoding() -> Any:
    import tiktoken

    return tiktoken.get_encoding(OFFLINE_ENCODING)


def _token_ids(s: str) -> list[int]:
    return list(_encoding().encode_ordinary(s))


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


# ---- HTTP ------------------------------------------------------------------------------------
def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            path = self.path.split("?")[0]
            if path.endswith("/chat/completions"):
                api = "openai"
            elif path.endswith("/messages"):
                api = "anthropic"
            else:
                self._send(404, {"error": {"message": f"no route {path}"}})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            req = Request(api, path, headers, body, bool(body.get("stream")))
            reply = server.answer(req)
            if reply.hang:
                server.wait(reply.hang)
            if reply.drop:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            try:
                self._respond(req, reply)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (hung-connection tests)
                self.close_connection = True

        def _respond(self, req: Request, reply: Reply) -> None:
            if reply.status != 200:
                self._send(reply.status, _error_body(req.api, reply), reply.headers)
            elif reply.raw is not None and req.stream:
                event = "event: message_start\n" if req.api == "anthropic" else ""
                self._send_raw(200, f"{event}data: {reply.raw}\n\n".encode(), "text/event-stream")
            elif reply.raw is not None:
                self._send_raw(200, reply.raw.encode(), "application/json")
            elif req.stream:
                events = _openai_stream(req, reply) if req.api == "openai" else _anthropic_stream(req, reply)
                self._send_raw(200, "".join(events).encode(), "text/event-stream")
            else:
                body = _openai_body(req, reply) if req.api == "openai" else _anthropic_body(req, reply)
                self._send(200, body)

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(body).encode(), "application/json", headers)

        def _send_raw(
            self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _error_body(api: str, reply: Reply) -> dict[str, Any]:
    if api == "anthropic":
        kind = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}.get(
            reply.status, "api_error"
        )
        if reply.status == 400:
            kind = "invalid_request_error"
        return {"type": "error", "error": {"type": kind, "message": reply.error}}
    return {"error": {"message": reply.error, "type": "server_error", "code": None}}


def _finish(reply: Reply, api: str) -> str:
    reason = reply.finish or ("tool_calls" if reply.tool_calls else "stop")
    if api == "anthropic":
        return {"length": "max_tokens", "tool_calls": "tool_use", "stop": "end_turn"}[reason]
    return reason


def _args_text(args: dict[str, Any] | str) -> str:
    return args if isinstance(args, str) else json.dumps(args)


def _openai_usage(req: Request) -> dict[str, Any]:
    return {
        "prompt_tokens": req.prompt_tokens,
        "completion_tokens": req.output_tokens,
        "total_tokens": req.prompt_tokens + req.output_tokens,
        "prompt_tokens_details": {"cached_tokens": req.cached_tokens},
    }


def _openai_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": _args_text(a)}}
        for i, (n, a) in enumerate(reply.tool_calls)
    ]


def _openai_body(req: Request, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = _openai_calls(reply)
    return {
        "id": f"chatcmpl-{len(req.path)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.body.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply, "openai")}],
        "usage": _openai_usage(req),
    }


def _sse(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return head + f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def _openai_stream(req: Request, reply: Reply) -> Iterator[str]:
    base = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": req.body.get("model", ""),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(reply.text):
        yield chunk({"content": piece})
    for i, call in enumerate(_openai_calls(reply)):
        args = call["function"]["arguments"]
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": i,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                ]
            }
        )
        for piece in _pieces(args):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    yield chunk({}, _finish(reply, "openai"))
    if (req.body.get("stream_options") or {}).get("include_usage"):
        yield _sse({**base, "choices": [], "usage": _openai_usage(req)})
    yield _sse("[DONE]")


def _pieces(s: str, n: int = 7) -> list[str]:
    return [s[i : i + n] for i in range(0, len(s), n)]


def _anthropic_usage(req: Request) -> dict[str, int]:
    return {
        "input_tokens": req.prompt_tokens - req.cached_tokens - req.cache_write_tokens,
        "output_tokens": req.output_tokens,
        "cache_read_input_tokens": req.cached_tokens,
        "cache_creation_input_tokens": req.cache_write_tokens,
    }


def _anthropic_blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    for i, (name, args) in enumerate(reply.tool_calls):
        blocks.append({"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args})
    return blocks


def _anthropic_body(req: Request, reply: Reply) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": req.body.get("model", ""),
        "content": _anthropic_blocks(reply),
        "stop_reason": _finish(reply, "anthropic"),
        "stop_sequence": None,
        "usage": _anthropic_usage(req),
    }


def _anthropic_stream(req: Request, reply: Reply) -> Iterator[str]:
    usage = _anthropic_usage(req)
    start = {
        **_anthropic_body(req, reply),
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    yield _sse({"type": "message_start", "message": start}, "message_start")
    for i, block in enumerate(_anthropic_blocks(reply)):
        if block["type"] == "text":
            yield _sse(
                {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            )
            for piece in _pieces(block["text"]):
                delta = {"type": "text_delta", "text": piece}
                yield _sse({"type": "content_block_delta", "index": i, "delta": delta}, "content_block_delta")
        else:
            head = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield _sse(
                {"type": "content_block_start", "index": i, "content_block": head}, "content_block_start"
            )
            for piece in _pieces(_args_text(block["input"])):
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield _sse({"type": "content_block_delta", "index": i, "delta": delta}, "content_block_delta")
        yield _sse({"type": "content_block_stop", "index": i}, "content_block_stop")
    end = {
        "type": "message_delta",
        "delta": {"stop_reason": _finish(reply, "anthropic"), "stop_sequence": None},
        "usage": {"output_tokens": req.output_tokens},
    }
    yield _sse(end, "message_delta")
    yield _sse({"type": "message_stop"}, "message_stop")


# ---- a brain that fixes the textstats example ------------------------------------------------
TEXTSTATS_PLAN = """TITLE: off-by-one in top_words and no empty-text guard in average_word_length
ROOT CAUSE: textstats/core.py: top_words() asks most_common for n - 1 items; average_word_length() divides by len(words) even when there are none.
STRATEGY: pass n to most_common; return 0.0 when there are no words.
REPRODUCTION: top_words("a a a b b c", 2) == ["a", "b"]; average_word_length("") == 0.0"""

TEXTSTATS_EDIT = """textstats/core.py
```
<<<<<<< SEARCH
    ws = words(text)
    return sum(len(w) for w in ws) / len(ws)
=======
    ws = words(text)
    if not ws:
        return 0.0
    return sum(len(w) for w in ws) / len(ws)
>>>>>>> REPLACE
```

textstats/core.py
```
<<<<<<< SEARCH
    return [w for w, _ in counts.most_common(n - 1)]
=======
    return [w for w, _ in counts.most_common(n)]
>>>>>>> REPLACE
```"""

GUARD_EDIT, HALF_EDIT = TEXTSTATS_EDIT.split("\n\n")  # each fixes one symptom only


def role_of(req: Request) -> str:
    """Which treefix role sent `req`, from the wording of its last prompt (prompts/*.j2)."""
    last = req.texts[-1] if req.texts else ""
    for role, marker in (
        ("critic", "Review this attempt"),
        ("discriminator", "candidate patches pass"),
        ("repair", "Repair the attempt"),
        ("code", "Implement this plan"),
        ("plan", "Propose ONE hypothesis"),
        ("reproduce", "Write a pytest test file that reproduces"),
    ):
        if marker in last:
            return role
    return "other"


def textstats_brain(partial_first: int = 0) -> Callable[[Request], Reply]:
    """Replies that fix examples/textstats; the first `partial_first` code replies fix only half."""
    count = {"code": 0}

    def brain(req: Request) -> Reply:
        role = role_of(req)
        if role == "plan":
            return Reply(text=TEXTSTATS_PLAN)
        if role == "code":
            count["code"] += 1
            return Reply(text=HALF_EDIT if count["code"] <= partial_first else TEXTSTATS_EDIT)
        if role == "repair":  # finish what the attempt shown left undone
            return Reply(text=GUARD_EDIT if "most_common(n)" in req.texts[-1] else TEXTSTATS_EDIT)
        if role == "critic":
            good = "if not ws" in req.texts[-1] and "most_common(n)" in req.texts[-1]
            value = 0.95 if good else 0.4
            return Reply(
                text=json.dumps(
                    {"value": value, "rationale": "judged by the fake brain", "advice": "fix both symptoms"}
                )
            )
        return Reply(text='{"choice": 1}')

    return brain
