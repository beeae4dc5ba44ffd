import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from batchdata import BROKEN, BUGS, read_preds, shared_batch_data, treefix
from conftest import kill_when_stored, node_ids
from rich.console import Console
from typer.testing import CliRunner

from treefix.agent.errors import ConfigError
from treefix.agent.ledger import GlobalLimits, SqliteLedger
from treefix.agent.store import RunStore
from treefix.evals.cli import app
from treefix.evals.dataset import load_dataset
from treefix.evals.outputs import model_name_or_path
from treefix.evals.runner import BatchOptions, parse_slice, run_batch, select_instances

ALL = [*BUGS, BROKEN]


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return shared_batch_data(tmp_path_factory)


def test_selection_shuffles_then_filters_then_slices(data):
    insts, _ = load_dataset(data.dataset)
    ids = lambda xs: [i.instance_id for i in xs]  # noqa: E731
    assert ids(select_instances(insts, [], "1:3", None, False)) == ["mathx-2", "mathx-3"]
    assert ids(select_instances(insts, [], None, r"mathx-[13]", False)) == ["mathx-1", "mathx-3"]
    assert ids(select_instances(insts, ["mathx-3", "mathx-1"], None, None, False)) == ["mathx-1", "mathx-3"]
    shuffled = ids(select_instances(insts, [], None, None, True))
    assert sorted(shuffled) == sorted(ALL) and shuffled == ids(select_instances(insts, [], None, None, True))
    assert ids(select_instances(insts, [], ":1", None, True)) == shuffled[:1]
    with pytest.raises(ConfigError, match="unknown instance"):
        select_instances(insts, ["nope"], None, None, False)
    with pytest.raises(ConfigError, match="--slice"):
        parse_slice("a:b")


def test_tier_and_visible_tests_are_recorded_in_the_model_name(tmp_path):
    opts = BatchOptions(dataset=tmp_path / "d.jsonl", output=tmp_path, model="openai/gpt-4o", tier="offline")
    assert opts.model_name == "treefix__openai--gpt-4o__tier-offline" and opts.run_config().tier == "offline"
    opts.visible_tests = True
    assert opts.model_name == "treefix__openai--gpt-4o__tier-offline__visible-tests"
    assert opts.run_config().label == "tier-offline__visible-tests"


def test_model_name_or_path_is_a_safe_folder_name():
    assert model_name_or_path("offline", "visible-tests") == "treefix__offline__visible-tests"
    assert model_name_or_path("openai/gpt-4o") == "treefix__openai--gpt-4o"
    assert model_name_or_path("replay:/x/y/cass.jsonl") == "treefix__replay-cass"


def _wait_for_preds(out: Path, proc: subprocess.Popen, n: int, timeout: float = 120) -> dict:
    # 120 s: a batch instance first runs its test command on the base (regression-only check),
    # then a reproduction, before its first candidate; on a loaded machine that passes 30 s.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            preds = read_preds(out)
            if len(preds) >= n:
                return preds
        except (OSError, ValueError):
            pass
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.01)
    raise AssertionError(f"no {n} predictions in {timeout}s")


def _popen(args: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from treefix.agent.cli import main; main()", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_batch_writes_every_file_and_resumes_after_sigkill(data, tmp_path):
    out = tmp_path / "out"
    args = ["swebench", "run", *data.run_args(out, "-w", "1", "--filter", f"mathx-[12]|{BROKEN}")]
    batch = ["mathx-1", "mathx-2", BROKEN]
    proc = _popen(args)
    first = _wait_for_preds(out, proc, 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)  # a worker left running would write into out/ now
    before = read_preds(out)
    assert 1 <= len(before) < len(batch), "the runner finished before it could be killed"
    done_first = next(iter(first))
    run_id = json.loads((out / done_first / "summary.json").read_text())["run_id"]

    res = treefix(*args, "-w", "2")
    assert res.returncode == 0, res.stderr
    assert f"{len(before)} instance(s) already finished" in res.stderr
    assert "treefix swebench eval --dataset" in res.stderr and str(out / "preds.json") in res.stderr
    preds = read_preds(out)
    assert sorted(preds) == sorted(batch)
    assert (
        json.loads((out / done_first / "summary.json").read_text())["run_id"] == run_id
    )  # skipped, not redone
    for iid in batch[:2]:
        p = preds[iid]
        assert p["model_name_or_path"] == "treefix__replay-cassettes" and p["instance_id"] == iid
        assert p["model_patch"].startswith("diff --git a/mathx/core.py")
        assert json.loads((out / iid / f"{iid}.tree.json").read_text())["format"] == "treefix.tree/1"
        summary = json.loads((out / iid / "summary.json").read_text())
        assert summary["exit_status"] == "verified" and summary["visible_tests"] is False
        assert (out / iid / "worker.log").is_file() and (out / iid / "run" / "run.sqlite").is_file()
    jsonl = [json.loads(line) for line in (out / "all_preds.jsonl").read_text().splitlines()]
    assert {p["instance_id"]: p for p in jsonl} == preds
    statuses = yaml.safe_load((out / "exit_statuses.yaml").read_text())["instances_by_exit_status"]
    assert statuses == {"verified": batch[:2], "error:EnvError": [BROKEN]}
    assert "bug_patch does not apply" in json.loads((out / BROKEN / "summary.json").read_text())["error"]
    assert not list(out.rglob(".*.tmp"))

    # Again: the errored one is retried; --redo-existing redoes a finished one.
    opts = BatchOptions(dataset=data.dataset, output=out, model=f"replay:{data.cassettes}", cache_dir=data.cache,
                        cost_limit=0, max_nodes=6, instance_ids=["mathx-1", BROKEN], redo_existing=True, workers=2)  # fmt: skip
    assert run_batch(opts, Console(file=io.StringIO())).ran == 2
    log = (out / "run_batch.log").read_text()
    assert log.count(f"\t{BROKEN}\t") == 2
    assert (
        json.loads((out / done_first / "summary.json").read_text())["run_id"] != run_id
        or done_first != "mathx-1"
    )
    assert read_preds(out) == preds  # replays are deterministic


def test_first_ctrl_c_finishes_running_and_starts_nothing_new(data, tmp_path):
    out = tmp_path / "out"
    proc = _popen(["swebench", "run", *data.run_args(out, "-w", "1")])
    _wait_for_preds(out, proc, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    n = len(read_preds(out))
    assert n < len(ALL) and "run the same command again" in err
    summaries = [json.loads(p.read_text()) for p in out.glob("*/summary.json")]
    assert len(summaries) == n  # the running one finished and was recorded; nothing else started


def test_global_cost_limit_stops_new_starts(data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    SqliteLedger(out / "ledger.sqlite", GlobalLimits(cost=1.0)).settle((0, 0, 0), (1.5, 100, 1))
    opts = BatchOptions(dataset=data.dataset, output=out, model=f"replay:{data.cassettes}", cache_dir=data.cache,
                        global_cost_limit=1.0, cost_limit=0)  # fmt: skip
    buf = io.StringIO()
    result = run_batch(opts, Console(file=buf, width=200))
    assert result.ran == 0 and "global cost limit $1.00 reached" in buf.getvalue()
    assert read_preds(out) == {}


def test_bad_input_is_one_message_and_exit_2(data, tmp_path):
    def run(*args: str):
        res = CliRunner().invoke(app, ["run", *args])
        return res.exit_code, " ".join(res.output.split())

    code, err = run("--dataset", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "o"))
    assert code == 2 and "dataset not found" in err and "Traceback" not in err
    assert run(*data.run_args(tmp_path / "o", "--slice", "9:")) == (
        2,
        "error: the selection (-i/--slice/--filter) matches no instance",
    )
    code, err = run(*data.run_args(tmp_path / "o", "-m", "replay:/no/such.jsonl"))
    assert code == 2 and "cassette not found" in err
    code, err = run(*data.run_args(tmp_path / "o", "--executor", "slurm"))
    assert code == 2 and "unknown executor" in err
    code, err = run(*data.run_args(tmp_path / "o", "--tier", "cheap"))
    assert code == 2 and "unknown tier 'cheap'" in err
    code, err = run(*data.run_args(tmp_path / "o", "-m", "offline", "--tier", "offline"))
    assert code == 2 and "for model runs" in err
    assert not (tmp_path / "o").exists()  # nothing written on bad input


def test_bad_options_and_outputs_are_one_message_and_leave_files_alone(data, tmp_path):
    def run(*args: str):
        res = CliRunner().invoke(app, ["run", *args])
        assert "Traceback" not in res.output and isinstance(res.exception, SystemExit | None), res.output
        return res.exit_code, " ".join(res.stderr.split())

    afile = tmp_path / "afile.txt"
    afile.write_text("mine")
    code, err = run(*data.run_args(afile))
    assert code == 2 and err.startswith(f"error: cannot write to {afile}")
    code, err = run(*data.run_args(tmp_path / "o", "--cache-dir", str(afile)))
    assert code == 2 and "--cache-dir" in err and "not a usable folder" in err
    assert afile.read_text() == "mine"
    # run settings are checked by the same rule as `treefix fix`, named by their config key
    for flag, says in (("-l", "limits.cost_limit must be at least 0"),
                       ("--max-nodes", "limits.max_nodes must be at least 0"),
                       ("--global-cost-limit", "--global-cost-limit must be 0 (no limit) or more")):  # fmt: skip
        code, err = run(*data.run_args(tmp_path / "o", flag, "-1"))
        assert code == 2 and says in err, err
    code, err = run(*data.run_args(tmp_path / "o", "-l", "nan"))
    assert code == 2 and "limits.cost_limit must be at least 0, got nan" in err
    for bad in ("1:2:0", "", "3", "1:2:3:4"):
        code, err = run(*data.run_args(tmp_path / "o", "--slice", bad))
        assert code == 2 and "--slice takes A:B" in err, (bad, err)
    assert parse_slice("0:4:2") == slice(0, 4, 2)
    code, err = run(*data.run_args(tmp_path / "o", "-i", "x[ray]"))  # rich markup must not eat it
    assert code == 2 and err == "error: unknown instance id(s): x[ray]"
    assert not (tmp_path / "o").exists()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    for text in ('{"mine": 1}', "{bad", "[1]"):
        (theirs / "preds.json").write_text(text)
        code, err = run(*data.run_args(theirs))
        assert code == 2 and "preds.json" in err and "not a predictions file written by treefix" in err, err
        assert [p.name for p in theirs.iterdir()] == ["preds.json"]
        assert (theirs / "preds.json").read_text() == text  # untouched


def test_workers_share_the_global_cost_ledger(data, tmp_path, monkeypatch):
    """A priced model under a tiny global limit: the first call would cross it, so none is made."""
    from treefix.agent.models.scripted import ScriptedModel
    from treefix.evals.runner import build_item
    from treefix.evals.worker import solve

    model = ScriptedModel(["never sent"] * 10)
    insts, _ = load_dataset(data.dataset)
    opts = BatchOptions(dataset=data.dataset, output=tmp_path, model=f"replay:{data.cassettes}", cache_dir=data.cache,
                        cost_limit=0, global_cost_limit=0.001)  # fmt: skip
    item = build_item(insts[0], opts, opts.run_config())
    assert item.ledger == str(tmp_path.resolve() / "ledger.sqlite")
    result = solve(item, model=model)
    assert model.calls == [] and result.exit_status == "limit:global cost", result.error


def test_an_instance_killed_mid_search_is_resumed_not_redone(data, tmp_path):
    """SIGKILL the batch while an instance's tree is half built: the rerun keeps its run and nodes."""
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    wrong = "mathx/core.py\n```\n<<<<<<< SEARCH\n    return max(lo, min(x, hi - 1))\n=======\n    return lo\n>>>>>>> REPLACE\n```"
    plan = "TITLE: fix clamp\nROOT CAUSE: mathx/core.py\nSTRATEGY: fix the bound.\nREPRODUCTION: see issue"
    critic = '{"value": 0.3, "rationale": "still wrong", "advice": ""}'
    repro = "```python\nfrom mathx import clamp\n\n\ndef test_upper():\n    assert clamp(10, 0, 10) == 10\n```"
    usage = {"input_tokens": 100, "output_tokens": 10, "cached_tokens": 0, "cache_write_tokens": 0}
    entries = [
        (r, t)
        for _ in range(20)
        for r, t in (("plan", plan), ("code", wrong), ("repair", wrong), ("critic", critic), ("reproduce", repro))
    ]
    (cassettes / "mathx-1.jsonl").write_text(
        "".join(
            json.dumps({"role": r, "request": "", "completion": {"text": t, "usage": usage}}) + "\n"
            for r, t in entries
        )
    )
    out = tmp_path / "out"
    args = [
        "swebench",
        "run",
        *data.run_args(out, "-i", "mathx-1", "--max-nodes", "10"),
        "-m",
        f"replay:{cassettes}",
    ]
    db = out / "mathx-1" / "run" / "run.sqlite"
    before = kill_when_stored([sys.executable, "-c", "from treefix.agent.cli import main; main()", *args], db, 4)
    assert len(before) >= 4 and "mathx-1" not in read_preds(out)  # unfinished
    run_id = RunStore(db).get_meta("run_id")

    res = treefix(*args)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "mathx-1" / "summary.json").read_text())
    assert summary["run_id"] == run_id  # the same run, continued
    after = node_ids(db)
    store = RunStore(db)
    votes = len(store.events("duplicate"))  # a repeated fix is a vote on its sibling, charged but not stored
    store.close()
    assert after[: len(before)] == before and len(after) + votes == 10 + 1  # every node kept; the budget is the run's
    assert "resumed the run" in (out / "mathx-1" / "worker.log").read_text()


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No provider key, and a user config folder of the test's own."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL")}
    return {**env, "TREEFIX_CONFIG_DIR": str(tmp_path / "cfg"), **extra}


def _summary(out: Path, iid: str = "mathx-1") -> dict:
    return json.loads((out / iid / "summary.json").read_text())


def test_swebench_run_reads_c_sources_like_fix(data, tmp_path):
    out = tmp_path / "out"
    args = data.run_args(out, "-i", "mathx-1", "-c", "search=greedy", "-c", "limits.max_depth=3")
    res = treefix("swebench", "run", *args, env=_clean_env(tmp_path))
    assert res.returncode == 0, res.stderr
    summary = _summary(out)
    assert (summary["search"], summary["limits"]["max_depth"]) == ("greedy", 3)
    assert summary["limits"]["max_nodes"] == 6  # the typed --max-nodes still wins


def test_swebench_run_reads_the_user_config_file_like_fix(data, tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.toml").write_text("[limits]\nmax_depth = 4\nmax_turns = 77\n")
    out = tmp_path / "out"
    res = treefix("swebench", "run", *data.run_args(out, "-i", "mathx-1"), env=_clean_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert (_summary(out)["limits"]["max_depth"], _summary(out)["limits"]["max_turns"]) == (4, 77)


def test_swebench_run_reads_dotenv_like_fix(data, tmp_path):
    """The key in ./.env is found: the run gets past the key check (and stops at its tiny cost limit)."""
    work = tmp_path / "here"
    work.mkdir()
    args = [
        "--dataset", str(data.dataset), "-o", str(tmp_path / "out"), "--cache-dir", str(data.cache),
        "-i", "mathx-1", "-m", "openai/gpt-4o-mini", "-l", "0.000001",
    ]  # fmt: skip
    res = treefix("swebench", "run", *args, cwd=work, env=_clean_env(tmp_path))
    assert res.returncode == 2 and "OPENAI_API_KEY" in res.stderr and ".env" in res.stderr  # no key anywhere
    (work / ".env").write_text("OPENAI_API_KEY=sk-test-from-dotenv-0123456789\n")
    res = treefix("swebench", "run", *args, cwd=work, env=_clean_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert _summary(tmp_path / "out")["exit_status"] == "limit:cost"  # no call made: the limit is too small
