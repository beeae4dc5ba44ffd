"""Loading SWE-bench-style datasets, and the agent view that hides the evaluation fields."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from dataclasses import asdict, fields
from pathlib import Path

from treefix.evals.dataset import HIDDEN_FIELDS, AgentTask, load_dataset

SUITES = Path(__file__).resolve().parents[1] / "evals" / "suites"

SECRET = {
    "test_patch": "diff --git a/t.py b/t.py SECRET-TEST-PATCH",
    "patch": "diff --git a/x.py b/x.py SECRET-GOLD-PATCH",
    "FAIL_TO_PASS": ["tests/t.py::test_SECRET_F2P"],
    "PASS_TO_PASS": ["tests/t.py::test_SECRET_P2P"],
    "hints_text": "SECRET-HINTS",
}


def record(iid: str = "a__b-1", **extra) -> dict:
    return {"instance_id": iid, "repo": "a/b", "problem_statement": "it breaks", "base_commit": "abc123",
            **SECRET, **extra}  # fmt: skip


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_jsonl_with_string_and_list_test_ids(tmp_path: Path) -> None:
    as_strings = record("s-1", FAIL_TO_PASS=json.dumps(["t::a", "t::b"]), PASS_TO_PASS="[]")
    as_lists = record("l-1", FAIL_TO_PASS=["t::a"], difficulty="easy", created_at="2024-01-01")
    instances, problems = load_dataset(write_jsonl(tmp_path / "d.jsonl", [as_strings, "", as_lists]))
    assert problems == []
    assert [i.instance_id for i in instances] == ["s-1", "l-1"]
    assert instances[0].FAIL_TO_PASS == ["t::a", "t::b"] and instances[0].PASS_TO_PASS == []
    assert instances[1].difficulty == "easy" and instances[1].created_at == "2024-01-01"  # extras kept


def test_json_list_reports_line_numbers(tmp_path: Path) -> None:
    good, bad = record("good-1"), record("bad-1", problem_statement=7)
    path = tmp_path / "d.json"
    path.write_text(json.dumps([good, bad], indent=2))
    instances, problems = load_dataset(path)
    assert [i.instance_id for i in instances] == ["good-1"]
    opening = [n for n, text in enumerate(path.read_text().splitlines(), 1) if text == "  {"]
    line = opening[1]  # the second object's first line
    assert len(problems) == 1 and problems[0].startswith(f"line {line}: bad-1: problem_statement")


def test_malformed_records_are_skipped_and_named(tmp_path: Path) -> None:
    lines = [
        record("ok-1"),
        '{"instance_id": "broken-2", "repo": ',  # truncated JSON
        record("types-3", FAIL_TO_PASS=[1, 2]),
        record("nobase-4", base_commit=None),
        record("ok-1"),  # duplicate
        [1, 2],
        record("src-7", base_commit=None, source={"pypi": "not a spec"}),
        record("setup-8", setup="pip install -e ."),
    ]
    instances, problems = load_dataset(write_jsonl(tmp_path / "d.jsonl", lines))
    assert [i.instance_id for i in instances] == ["ok-1", "setup-8"]
    assert instances[1].setup == ["pip install -e ."]
    prefixes = [p.split(":", 2)[:2] for p in problems]
    assert prefixes == [["line 2", " broken-2"], ["line 3", " types-3"], ["line 4", " nobase-4"],
                        ["line 5", " ok-1"], ["line 6", " ?"], ["line 7", " src-7"]]  # fmt: skip
    assert "FAIL_TO_PASS" in problems[1] and "duplicate" in problems[3]


def test_a_record_without_fail_to_pass_tests_is_malformed(tmp_path: Path) -> None:
    """No FAIL_TO_PASS test: any patch, even the empty one, would count as resolving it."""
    lines = [record("empty-1", FAIL_TO_PASS=[]), record("string-2", FAIL_TO_PASS="[]"),
             {k: v for k, v in record("absent-3").items() if k != "FAIL_TO_PASS"}, record("ok-4")]  # fmt: skip
    instances, problems = load_dataset(write_jsonl(tmp_path / "d.jsonl", lines))
    assert [i.instance_id for i in instances] == ["ok-4"]
    assert problems == [f"line {n}: {iid}: FAIL_TO_PASS: needs at least one test id"
                        for n, iid in ((1, "empty-1"), (2, "string-2"), (3, "absent-3"))]  # fmt: skip


def test_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    assert load_dataset(tmp_path / "missing.jsonl") == ([], [f"{tmp_path / 'missing.jsonl'}: cannot read: "
                                                           f"[Errno 2] No such file or directory: "
                                                           f"'{tmp_path / 'missing.jsonl'}'"])  # fmt: skip


def test_agent_view_exposes_no_hidden_field(tmp_path: Path) -> None:
    (inst,), _ = load_dataset(write_jsonl(tmp_path / "d.jsonl", [record(agent_test_cmd="pytest -q")]))
    view = inst.agent_view()
    assert isinstance(view, AgentTask)
    assert view.problem_statement == "it breaks" and view.test_cmd == "pytest -q"
    assert not set(HIDDEN_FIELDS) & {f.name for f in fields(view)}
    assert not hasattr(view, "__dict__")  # slots: nothing can be attached or smuggled in
    for name in HIDDEN_FIELDS:
        assert not hasattr(view, name)
    renderings = [repr(view), str(view), json.dumps(view.to_dict()), json.dumps(asdict(view)),
                  pickle.dumps(view).decode("latin-1")]  # fmt: skip
    for text in renderings:
        assert "SECRET" not in text
    # Nothing reachable from the view refers back to the instance.
    assert all(isinstance(getattr(view, f.name), str | None) for f in fields(view))


def test_bundled_suite_is_valid() -> None:
    instances, problems = load_dataset(SUITES / "all.jsonl")
    assert problems == []
    assert len(instances) >= 30
    assert len({i.source.pypi.split("==")[0] for i in instances if i.source and i.source.pypi}) >= 8
    mix = Counter(i.difficulty for i in instances)
    assert set(mix) == {"easy", "medium", "hard"}
    for inst in instances:
        assert inst.FAIL_TO_PASS and inst.PASS_TO_PASS and inst.patch and inst.bug_patch and inst.test_patch
        assert inst.test_cmd and inst.agent_test_cmd and inst.setup
        assert "SECRET" not in inst.problem_statement
        # The public test command must not name the hidden tests.
        assert not any(t.split("::", 1)[1] in inst.agent_test_cmd for t in inst.FAIL_TO_PASS if "::" in t)
    smoke, problems = load_dataset(SUITES / "smoke.jsonl")
    assert problems == [] and 3 <= len(smoke) <= 4
    assert {i.instance_id for i in smoke} <= {i.instance_id for i in instances}
