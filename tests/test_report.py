import json

from typer.testing import CliRunner

from treefix.evals.cli import app
from treefix.evals.outputs import BatchOutputs
from treefix.evals.worker import WorkResult

PNG = b"\x89PNG\r\n\x1a\n"


def _run(out, costs: dict[str, float], label: str = "") -> None:
    """A batch folder as the runner writes it, with made-up spend."""
    state = BatchOutputs(out)
    for n, (iid, cost) in enumerate(costs.items()):
        status = "verified" if n % 2 == 0 else "limit:cost"
        usage = {"cost": cost, "tokens": 1000 * (n + 1), "turns": 3 + n, "elapsed": 1.0}
        result = WorkResult(
            iid,
            status,
            0,
            f"diff {iid}",
            {"usage": usage, "label": label, "nodes": {"root": 1, "plan": 1, "code": n}},
            wall_time=10.0 * (n + 1),
        )
        state.record(
            result, "treefix__test" + (f"__{label}" if label else ""), {"visible_tests": bool(label)}
        )


def test_report_compares_runs_side_by_side(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _run(a, {"x-1": 0.10, "x-2": 0.30, "x-3": 0.20})
    _run(b, {"x-1": 1.00, "x-2": 0.50}, label="visible-tests")
    (a / "eval" / "r1").mkdir(parents=True)
    (a / "eval" / "r1" / "report.json").write_text(json.dumps({"resolved_ids": ["x-1", "x-3"]}))
    ev_b = tmp_path / "b.json"
    ev_b.write_text(json.dumps({"resolved_ids": ["x-2"]}))
    res = CliRunner().invoke(app, ["report", str(a), str(b), "--eval", str(a / "eval/r1/report.json"),
                                   "--eval", str(ev_b), "-o", str(tmp_path / "rep")])  # fmt: skip
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert (tmp_path / "rep" / "cost_hist.png").read_bytes().startswith(PNG)
    assert "| resolved | 2/3 (66.7%) | 1/2 (50.0%) |" in md
    assert "| cost / instance (mean, median) | $0.2000, $0.2000 | $0.7500, $0.7500 |" in md
    assert "| visible tests | no (hidden) | yes (opt-in) |" in md
    assert "| exit statuses | limit:cost: 1, verified: 2 | limit:cost: 1, verified: 1 |" in md
    assert "| tokens / instance (mean, median) | 2,000, 2,000 | 1,500, 1,500 |" in md
    assert "| wall time / instance (mean, median) | 20.0s, 20.0s | 15.0s, 15.0s |" in md
    assert "| turns / instance (p50, p75, p90) | 4.0, 4.5, 4.8 | 3.5, 3.8, 3.9 |" in md
    assert "| tree nodes / instance (mean, median) | 2.0, 2.0 | 1.5, 1.5 |" in md
    assert "| x-3 | verified resolved $0.2000 30.0s | - |" in md
    assert "![cost per instance](cost_hist.png)" in md


def test_report_of_one_run_finds_its_eval_and_writes_next_to_it(tmp_path):
    _run(tmp_path / "a", {"x-1": 0.0})
    res = CliRunner().invoke(app, ["report", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "a" / "report.md").read_text()
    assert "| resolved | not graded |" in md and (tmp_path / "a" / "cost_hist.png").is_file()


def test_report_on_a_folder_without_predictions_is_one_message(tmp_path):
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "preds.json; give a folder" in " ".join(res.output.split())


def test_report_on_foreign_predictions_or_a_file_as_output_is_one_message(tmp_path):
    def report(*args) -> tuple[int, str]:
        res = CliRunner().invoke(app, ["report", *map(str, args)])
        assert isinstance(res.exception, SystemExit | None), res.output
        return res.exit_code, " ".join(res.stderr.split())

    for text in ('{"x": 5}', "{bad", "[]"):
        (tmp_path / "preds.json").write_text(text)
        code, err = report(tmp_path)
        assert code == 2 and "preds.json" in err and "not a predictions file written by treefix" in err, err
    _run(tmp_path / "a", {"x-1": 0.0})
    afile = tmp_path / "afile.txt"
    afile.write_text("mine")
    assert report(tmp_path / "a", "-o", afile) == (2, f"error: cannot write to {afile}: File exists")
    assert afile.read_text() == "mine"


def test_report_prints_the_critics_auc_and_calibration(tmp_path):
    """Each instance's summary holds the critic's value of its patch; the report sets it against the grade."""
    state = BatchOutputs(tmp_path / "a")
    values = {"x-1": 0.9, "x-2": 0.7, "x-3": 0.3, "x-4": 0.1}
    for iid, value in values.items():
        summary = {"usage": {"cost": 0.0}, "nodes": {"code": 1}, "choice": {"rule": "best-value", "critic": value}}
        state.record(WorkResult(iid, "unverified", 1, f"diff {iid}", summary), "treefix__test", {})
    ev = tmp_path / "report.json"
    ev.write_text(json.dumps({"resolved_ids": ["x-1", "x-3"]}))  # one high-valued patch fails, one low passes
    res = CliRunner().invoke(app, ["report", str(tmp_path / "a"), "--eval", str(ev)])
    assert res.exit_code == 0, res.output
    # pairs (resolved > unresolved): 0.9>0.7, 0.9>0.1, 0.3>0.1, 0.3<0.7 -> 3/4
    assert "critic AUC 0.75 over 4 graded patches" in res.output
    assert "| 0.8-1.0 | 1 | 1/1 (100.0%) |" in res.output and "| 0.6-0.8 | 1 | 0/1 (0.0%) |" in res.output
    assert "| 0.4-0.6 | 0 | - |" in res.output


def test_turn_cap_from_a_batch_run_is_its_reported_percentile(tmp_path):
    from treefix.agent.turns import parse_turn_cap

    _run(tmp_path / "a", {"x-1": 0.1, "x-2": 0.2, "x-3": 0.3})  # turns 3, 4, 5
    assert parse_turn_cap(f"p75:{tmp_path / 'a'}") == 5  # 4.5, rounded up
    assert parse_turn_cap(f"p50:{tmp_path / 'a'}") == 4


def test_eval_of_a_batch_folder_writes_where_report_looks(tiny, tmp_path, monkeypatch):
    """The README's sequence without -o: run, eval its preds.json, report the run folder."""
    inst, cache = tiny
    dataset = tmp_path / "d.jsonl"
    dataset.write_text(json.dumps(inst.to_json()) + "\n")
    run = tmp_path / "runs" / "smoke"
    state = BatchOutputs(run)
    usage = {"usage": {"cost": 0.0, "tokens": 0, "turns": 0, "elapsed": 1.0}}
    state.record(WorkResult(inst.instance_id, "verified", 0, inst.patch, usage, wall_time=1.0), "treefix__test", {})
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        app, ["eval", "--dataset", str(dataset), "--predictions", str(run / "preds.json"), "--cache-dir", str(cache)]
    )
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "evaluation").exists() and list((run / "eval").glob("*/report.json"))
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    assert "| resolved | 1/1 (100.0%) |" in (run / "report.md").read_text()


def test_report_without_matplotlib_writes_the_tables_and_says_why_no_figure(tmp_path):
    import subprocess
    import sys

    _run(tmp_path / "a", {"x-1": 0.1, "x-2": 0.2})
    no_mpl = "import sys; sys.modules['matplotlib'] = None; from treefix.agent.cli import main; main()"
    res = subprocess.run([sys.executable, "-c", no_mpl, "swebench", "report", str(tmp_path / "a")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    notes = [line for line in res.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: no cost histogram: it needs matplotlib (pip install 'treefix[report]')"], res.stderr
    assert "Traceback" not in res.stderr
    md = (tmp_path / "a" / "report.md").read_text()
    assert "| instances | 2 |" in md and "cost_hist.png" not in md
    assert not (tmp_path / "a" / "cost_hist.png").exists()
