"""The local harness on a tiny synthetic task: gold resolves, empty does not, failures are recorded."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from test_environment import GOLD, TEST_PATCH
from typer.testing import CliRunner

from treefix.evals.cli import app
from treefix.evals.dataset import Instance
from treefix.evals.grading import eval_command, load_predictions
from treefix.evals.harness import HarnessError, evaluate, grade, needs_official_harness
from treefix.tools.diffs import patch_paths

KEYS = ["total_instances", "submitted_instances", "completed_instances", "resolved_instances",
        "unresolved_instances", "empty_patch_instances", "error_instances", "completed_ids",
        "incomplete_ids", "empty_patch_ids", "submitted_ids", "resolved_ids", "unresolved_ids", "error_ids"]  # fmt: skip



def test_gold_resolves_and_empty_does_not(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    inst, cache = tiny
    gold = evaluate([inst], {inst.instance_id: GOLD}, tmp_path, cache, run_id="gold")
    empty = evaluate([inst], {inst.instance_id: ""}, tmp_path, cache, run_id="empty")
    assert gold.resolved_ids == ["tiny-1"] and empty.resolved_ids == []
    g, e = gold.results["tiny-1"], empty.results["tiny-1"]
    assert g.fail_to_pass == {"success": ["tests/test_add.py::test_add"], "failure": []}
    assert e.fail_to_pass["failure"] == ["tests/test_add.py::test_add"] and e.status == "empty_patch"
    assert e.pass_to_pass == {"success": ["tests/test_smoke.py::test_zero"], "failure": []}
    report = json.loads((tmp_path / "gold" / "report.json").read_text())
    assert all(k in report for k in KEYS)
    assert report["resolved_instances"] == 1 and report["completed_ids"] == ["tiny-1"]
    logs = tmp_path / "gold" / "logs" / "tiny-1"
    assert (logs / "patch.diff").read_text() == GOLD
    assert "PASSED tests/test_add.py::test_add" in (logs / "test_output.txt").read_text()
    assert json.loads((logs / "report.json").read_text())["tiny-1"]["resolved"] is True
    assert not list((tmp_path / "gold").glob("work-*"))  # checkouts are removed


def test_unappliable_patch_is_an_error(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    inst, cache = tiny
    report = evaluate([inst], {inst.instance_id: "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n"
                                                 "@@ -1 +1 @@\n-x\n+y\n"}, tmp_path, cache)  # fmt: skip
    result = report.results["tiny-1"]
    assert result.status == "error" and "model_patch does not apply" in result.error
    assert report.to_json()["error_ids"] == ["tiny-1"]


def test_model_edits_to_hidden_test_files_are_replaced(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    """A prediction that also writes tests/test_add.py must not block or weaken the hidden tests."""
    inst, cache = tiny
    cheat = TEST_PATCH.replace("assert add(2, 3) == 5", "assert True")
    report = evaluate([inst], {inst.instance_id: cheat}, tmp_path, cache)
    assert report.results["tiny-1"].status == "unresolved"
    report = evaluate([inst], {inst.instance_id: GOLD + cheat}, tmp_path, cache)
    assert report.resolved_ids == ["tiny-1"]


def test_run_ids_are_never_reused(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    inst, cache = tiny
    evaluate([inst], {}, tmp_path, cache, run_id="r1")
    with pytest.raises(HarnessError, match="already exists"):
        evaluate([inst], {inst.instance_id: GOLD}, tmp_path, cache, run_id="r1")
    a = evaluate([inst], {}, tmp_path, cache)
    b = evaluate([inst], {}, tmp_path, cache)
    assert a.run_id != b.run_id
    assert a.to_json()["incomplete_ids"] == ["tiny-1"] and a.to_json()["submitted_instances"] == 0


def test_eval_command_validates_gold_and_empty(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    inst, cache = tiny
    dataset = tmp_path / "d.jsonl"
    dataset.write_text(json.dumps(inst.to_json()) + "\n{broken\n")
    assert eval_command(dataset, "gold", None, tmp_path / "out", [], 1, "g", cache_dir=cache) == 0
    assert eval_command(dataset, "empty", None, tmp_path / "out", [], 1, "e", cache_dir=cache) == 0
    preds = tmp_path / "preds.json"
    preds.write_text(
        json.dumps({"tiny-1": {"instance_id": "tiny-1", "model_name_or_path": "m", "model_patch": GOLD}})
    )
    assert eval_command(dataset, str(preds), None, tmp_path / "out", [], 1, "p", cache_dir=cache) == 0
    assert json.loads((tmp_path / "out" / "p" / "report.json").read_text())["resolved_ids"] == ["tiny-1"]
    assert eval_command(dataset, str(tmp_path / "missing.json"), None, tmp_path / "out", [], 1, None,
                        cache_dir=cache) == 2  # fmt: skip
    assert eval_command(dataset, "gold", None, tmp_path / "out", ["nope"], 1, None, cache_dir=cache) == 2


def test_load_predictions_formats(tmp_path: Path) -> None:
    jsonl = tmp_path / "all_preds.jsonl"
    jsonl.write_text(json.dumps({"instance_id": "a", "model_patch": "P"}) + "\n" +
                     json.dumps({"instance_id": "b", "model_patch": None}) + "\n")  # fmt: skip
    assert load_predictions(str(jsonl), []) == {"a": "P", "b": ""}
    lst = tmp_path / "preds.json"
    lst.write_text(json.dumps([{"instance_id": "a", "model_patch": "P"}]))
    assert load_predictions(str(lst), []) == {"a": "P"}


def test_grading_rules() -> None:
    tests = {"t::a": "passed", "t::b": "failed", "t::c": "skipped"}
    assert grade("i", ["t::a"], [], {}).resolved is False  # no results at all is not a pass
    assert grade("i", ["t::a"], [], tests).resolved is True
    assert grade("i", ["t::a"], ["t::b"], tests).resolved is False
    assert grade("i", ["t::c"], [], tests).resolved is False  # skipped is not passed
    assert grade("i", ["t::missing"], [], tests).fail_to_pass["failure"] == ["t::missing"]


def test_repository_instances_are_graded_locally_with_swebench_specs() -> None:
    """With the pinned SWE-bench specs (the dev extra), Django's unittest ids need no Docker."""
    django = Instance(instance_id="django-1", repo="django/django", problem_statement="x", base_commit="abc",
                      FAIL_TO_PASS=["test_x (admin.tests.AdminTests)"])  # fmt: skip
    assert not needs_official_harness(django)
    assert not needs_official_harness(django.model_copy(update={"FAIL_TO_PASS": ["tests/t.py::test_x"]}))
    assert patch_paths(TEST_PATCH) == ["tests/test_add.py"]


def test_eval_bad_input_is_one_message_on_stderr(tiny: tuple[Instance, Path], tmp_path: Path) -> None:
    inst, cache = tiny
    dataset = tmp_path / "d.jsonl"
    dataset.write_text(json.dumps(inst.to_json()) + "\n")
    afile = tmp_path / "afile.txt"
    afile.write_text("mine")

    def run(*args: str, preds: str = "gold") -> tuple[int, str]:
        args = ("--dataset", str(dataset), "--predictions", preds, "--cache-dir", str(cache),
                "-o", str(tmp_path / "ev"), *args)  # fmt: skip
        res = CliRunner().invoke(app, ["eval", *args])
        assert "Traceback" not in res.output and isinstance(res.exception, SystemExit | None), res.output
        assert "error:" not in res.stdout  # errors go to stderr, like the other commands
        return res.exit_code, " ".join(res.stderr.split())

    code, err = run("-o", str(afile))
    assert (code, err) == (2, f"error: cannot write to {afile}: Not a directory")
    assert afile.read_text() == "mine"
    code, err = run("--run-id", "../../escape")
    assert code == 2 and "must be a plain name" in err and not (tmp_path / "escape").exists()
    assert run("-w", "0") == (2, "error: -w/--workers must be at least 1")
    nope = tmp_path / "nope.jsonl"
    assert run("--dataset", str(nope)) == (2, f"error: dataset not found: {nope}")
    assert run("-i", "x[swebench]") == (2, "error: unknown instance id(s): x[swebench]")
    if importlib.util.find_spec("swebench") is None:  # the hint must show the extra's name
        code, err = run("--docker")
        assert code == 2 and "pip install 'treefix[swebench]'" in err
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"\xe9": 1}')
    code, err = run(preds=str(latin))
    assert code == 2 and "not UTF-8" in err
    strays = tmp_path / "strays.json"
    strays.write_text(json.dumps([{"instance_id": f"ghost-{n}", "model_patch": ""} for n in range(7)]))
    code, err = run(preds=str(strays))
    assert code == 2 and "no prediction in" in err and "ghost-0" in err and "and 2 more" in err
    assert not (tmp_path / "ev").exists()
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps([{"instance_id": "tiny-1", "model_patch": GOLD},
                                 {"instance_id": "ghost-1", "model_patch": ""}]))  # fmt: skip
    code, err = run(preds=str(mixed))
    assert code == 0 and "warning: 1 prediction(s)" in err and "ignored: ghost-1" in err
