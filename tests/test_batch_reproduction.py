"""`treefix swebench run` with hidden tests hidden: the instance's test command passes on the base,
so it can only catch regressions. The batch still grows a reproduction and verifies by it, and
chooses regression tests by the base's per-test coverage. Through the runner's work item and the
worker, with a scripted model; real git, real pytest, real venv cache."""

import json

import pytest
from batchdata import HIDDEN_MARK, shared_batch_data
from scripted import critic

from treefix.agent.models.base import Completion, Usage
from treefix.agent.models.scripted import ScriptedModel
from treefix.agent.store import RunStore
from treefix.evals.dataset import load_dataset
from treefix.evals.runner import BatchOptions, build_item
from treefix.evals.worker import solve

REPRO = "```python\nfrom mathx import clamp\n\n\ndef test_upper_bound_is_kept():\n    assert clamp(10, 0, 10) == 10\n```"
PLAN = "TITLE: clamp excludes hi\nROOT CAUSE: mathx/core.py uses hi - 1\nSTRATEGY: use hi"
BUGGY_LINE = "    return max(lo, min(x, hi - 1))"
ATTEMPTS = [  # (search, replace)
    ("        return 0.0", "        return 0.0  # bounds checked"),  # wrong: changes nothing clamp does
    (BUGGY_LINE, "    return max(lo, min(x, hi))"),  # right (applies on the base and on the wrong one)
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return shared_batch_data(tmp_path_factory)


def model() -> ScriptedModel:
    attempts = list(ATTEMPTS)

    def respond(role, messages):
        if role == "reproduce":
            text = REPRO
        elif role == "plan":
            text = PLAN
        elif role in ("code", "repair"):
            old, new = attempts.pop(0) if attempts else ATTEMPTS[0]
            text = f"mathx/core.py\n<<<<<<< SEARCH\n{old}\n=======\n{new}\n>>>>>>> REPLACE\n"
        elif role == "critic":
            text = critic(0.9 if "# bounds checked" in messages[-1].content else 0.4)  # the critic prefers the no-op
        else:
            text = "1"
        return Completion(text, usage=Usage(10, 5))

    return ScriptedModel(respond)


def test_a_test_command_that_passes_on_the_base_is_regression_only(data, tmp_path):
    insts, _ = load_dataset(data.dataset)
    inst = next(i for i in insts if i.instance_id == "mathx-1")
    opts = BatchOptions(dataset=data.dataset, output=tmp_path, model="scripted", cache_dir=data.cache,
                        cost_limit=0, max_nodes=10)  # fmt: skip
    item = build_item(inst, opts, opts.run_config())
    assert item.task.test_cmd and item.config["base_check"] is True  # the batch checks the command on the base
    result = solve(item, model=model())
    assert not result.error, result.error
    store = RunStore(tmp_path / "mathx-1" / "run" / "run.sqlite")
    (mode,) = store.events("test_command")
    assert mode["mode"] == "regression-only" and "all 3 tests pass on the base" in mode["reason"]
    repro = next(n for n in store.nodes() if n.kind.value == "reproduce")
    assert repro.evidence["accepted"]
    attempts = [n for n in store.nodes() if n.kind.value in ("code", "repair")]
    wrong = next(n for n in attempts if "bounds checked" in n.diff)
    right = next(n for n in attempts if "+    return max(lo, min(x, hi))" in n.diff)
    assert not wrong.evidence["verified_by"] and wrong.evidence["reproduced"] == 0
    # Regression tests chosen by the base's coverage of the changed line: the clamp test, not the others.
    assert right.evidence["selection"] == "coverage"
    assert right.evidence["regression_files"] == ["tests/test_core.py"] and right.evidence["regression_tests"] == 1
    assert right.evidence["verified_by"] == "reproduction" and right.evidence["strong"]
    summary = result.summary
    assert result.exit_status == "verified" and summary["verified_by"] == "reproduction"
    assert "+    return max(lo, min(x, hi))" in result.patch and "test_treefix_repro" not in result.patch
    assert HIDDEN_MARK not in json.dumps(result.tree)  # nothing hidden reached the run
