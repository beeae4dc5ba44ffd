"""How much of a search's prompt text sits in a shared, cacheable prefix, as a provider sees it.

    python -m benchmarks.cache_share [--nodes 20] [--files 150] [--api openai|anthropic|both]
                                      [--json]

Runs a real `run_fix` search (MCTS, LangGraph, real test runs) on `examples/textstats` against the
fake model server of the test suite, once through the OpenAI SDK and once through the Anthropic SDK.
The server answers like the providers do and counts every prompt token it receives:

- OpenAI-style automatic caching: a request's prefix shared with any earlier request is cacheable.
  Reported with no minimum, and with the real service's rule (prefixes of >= 1024 tokens, in
  128-token steps), which small example prompts rarely reach.
- Anthropic-style caching: tokens up to the last `cache_control` breakpoint are written once and
  read by later requests; reported as cache reads and writes.

`--files` adds that many small modules to the example so that the repository overview in every
prompt has the size it has in a mid-size project (the example alone has five files).
Then it prints the tokens the server saw per node (from each node's recorded usage, cross-checked
against the server's own total). The search keeps going after a verified node so that it reaches
the node count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treefix.agent.budget import Limits
from treefix.agent.config import RunConfig
from treefix.agent.models.base import Price
from treefix.agent.models.pricing import set_price
from treefix.agent.run import run_fix
from treefix.agent.store import RunStore
from treefix.agent.task import Task

ROOT = Path(__file__).resolve().parents[1]
from tests import fakeserver  # noqa: E402  (run from the project root: the fake server lives with the tests)

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}


@dataclass
class Result:
    api: str
    nodes: int
    requests: int
    prompt: int
    cached: int  # OpenAI: prefix shared with an earlier request; Anthropic: cache reads
    cache_write: int
    cached_real: int  # OpenAI only: with the service's 1024-token minimum and 128-token steps
    per_node: list[dict[str, Any]]
    status: str
    by_role: dict[str, list[int]]  # role -> [prompt tokens, cached tokens]

    def shares(self) -> dict[str, float]:
        p = max(self.prompt, 1)
        if self.api == "openai":
            return {"shared_prefix": self.cached / p, "cached_with_1024_minimum": self.cached_real / p}
        return {"in_marked_prefix": (self.cached + self.cache_write) / p, "read_from_cache": self.cached / p}


def _repo(tmp: Path, files: int) -> Path:
    repo = tmp / "textstats"
    shutil.copytree(ROOT / "examples" / "textstats", repo)
    for i in range(files):  # a plausible layout: packages of ten modules each
        path = repo / "textstats" / f"area_{i // 10}" / f"module_{i % 10}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'"""Module {i}."""\n')
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "initial"]):
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=repo, check=True)
    return repo


def _real_openai_cached(server: fakeserver.FakeServer) -> int:
    """Cached tokens under the service's rule, recomputed from the requests the server kept."""
    seen: list[list[int]] = []
    total = 0
    for r in server.requests:
        ids = fakeserver._token_ids(fakeserver._serial(r.body, upto=None))
        best = max((fakeserver._common(ids, old) for old in seen), default=0)
        seen.append(ids)
        total += best // 128 * 128 if best >= 1024 else 0
    return total


def run(api: str, nodes: int, files: int) -> Result:
    # Every code attempt fixes half the issue and every repair finishes it: plenty of depth and width.
    server = fakeserver.FakeServer(brain=fakeserver.textstats_brain(partial_first=10**6)).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            repo = _repo(Path(tmp), files)
            issue = (repo / "ISSUE.md").read_text()
            task = Task(repo, issue, test_cmd="python -m pytest -q tests", test_timeout=60)
            set_price(MODELS[api], Price(0.0, 0.0))  # nothing is billed; the limits are nodes
            config = RunConfig(
                model=MODELS[api],
                base_url=server.url if api == "openai" else server.root,
                limits=Limits(cost_limit=0, max_nodes=nodes),
                stop_on_verified=False,
            )
            outcome = run_fix(task, config, run_dir=Path(tmp) / "run")
            store = RunStore(Path(tmp) / "run" / "run.sqlite")
            per_node = [
                {
                    "node": n.id[:8],
                    "kind": n.kind.value,
                    "depth": n.depth,
                    "calls": int(n.usage.get("calls", 0)),
                    "prompt": int(n.usage.get("input_tokens", 0)),
                    "cached": int(n.usage.get("cached_tokens", 0)),
                    "output": int(n.usage.get("output_tokens", 0)),
                }
                for n in store.nodes()
                if n.parent is not None
            ]
            store.close()
    finally:
        server.stop()
    ok = [r for r in server.requests if r.reply is not None and r.reply.status == 200]
    return Result(
        api=api,
        nodes=len(per_node),
        requests=len(ok),
        prompt=sum(r.prompt_tokens for r in ok),
        cached=sum(r.cached_tokens for r in ok),
        cache_write=sum(r.cache_write_tokens for r in ok),
        cached_real=_real_openai_cached(server) if api == "openai" else 0,
        per_node=per_node,
        status=outcome.exit_status,
        by_role=_by_role(ok),
    )


def _by_role(requests: list[fakeserver.Request]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in requests:
        row = out.setdefault(fakeserver.role_of(r), [0, 0])
        row[0] += r.prompt_tokens
        row[1] += r.cached_tokens + r.cache_write_tokens
    return out


def report(res: Result) -> None:
    print(f"\n== {res.api}: {res.nodes} nodes, {res.requests} model calls, run status {res.status}")
    print(f"{'node':10}{'kind':8}{'depth':>6}{'calls':>6}{'prompt':>8}{'cached':>8}{'output':>8}")
    for row in res.per_node:
        print(
            f"{row['node']:10}{row['kind']:8}{row['depth']:>6}{row['calls']:>6}"
            f"{row['prompt']:>8}{row['cached']:>8}{row['output']:>8}"
        )
    in_nodes = sum(row["prompt"] for row in res.per_node)
    print(f"prompt tokens the server saw: {res.prompt} (in nodes: {in_nodes}; the rest: final selection)")
    for name, value in res.shares().items():
        print(f"{name.replace('_', ' ')}: {value:.1%}")
    cached = "shared prefix" if res.api == "openai" else "marked prefix"
    print(
        "by role: "
        + ", ".join(f"{k} {c / max(p, 1):.0%} of {p}" for k, (p, c) in sorted(res.by_role.items()))
        + f" ({cached})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--files", type=int, default=150, help="extra modules in the example repository")
    ap.add_argument("--api", choices=["openai", "anthropic", "both"], default="both")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = [
        run(api, args.nodes, args.files)
        for api in (["openai", "anthropic"] if args.api == "both" else [args.api])
    ]
    if args.json:
        print(json.dumps([{**r.__dict__, "shares": r.shares()} for r in results], indent=2))
        return
    for r in results:
        report(r)


if __name__ == "__main__":
    main()
