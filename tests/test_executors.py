import importlib.util
import io
import json
import signal

import pytest
from batchdata import BROKEN, BUGS, read_preds, shared_batch_data
from rich.console import Console

from treefix.evals.dataset import load_dataset
from treefix.evals.executors import Done, LocalExecutor
from treefix.evals.runner import BatchOptions, build_item, run_batch


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return shared_batch_data(tmp_path_factory)


def _opts(data, out, **kw) -> BatchOptions:
    return BatchOptions(dataset=data.dataset, output=out, model=f"replay:{data.cassettes}", cache_dir=data.cache,
                        cost_limit=0, max_nodes=6, workers=2, **kw)  # fmt: skip


def _statuses(out):
    return {p.parent.name: json.loads(p.read_text())["exit_status"] for p in out.glob("*/summary.json")}


def test_local_worker_that_dies_is_an_error_not_a_hang(data, tmp_path):
    insts, _ = load_dataset(data.dataset)
    opts = _opts(data, tmp_path / "out")
    ex = LocalExecutor()
    try:
        ex.start(0, build_item(insts[0], opts, opts.run_config()))
        ex._procs[insts[0].instance_id].process.kill()
        msgs = []
        while ex.running():
            msgs += ex.poll(1.0)
    finally:
        ex.close()
    done = [m for m in msgs if isinstance(m, Done)]
    assert len(done) == 1 and done[0].result.exit_status == "error:WorkerDied"
    assert str(-signal.SIGKILL) in done[0].result.error


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed: pip install 'treefix[ray]'"
)
def test_ray_gives_the_same_outputs_as_local(data, tmp_path):
    import ray

    local, remote = tmp_path / "local", tmp_path / "ray"
    run_batch(_opts(data, local), Console(file=io.StringIO()))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_batch(_opts(data, remote, executor="ray"), Console(file=io.StringIO()))
    finally:
        ray.shutdown()
    assert result.ran == len(BUGS) + 1 and not result.interrupted
    assert read_preds(remote) == read_preds(local)
    assert (
        _statuses(remote) == _statuses(local) == {**dict.fromkeys(BUGS, "verified"), BROKEN: "error:EnvError"}
    )
    for name in ("all_preds.jsonl", "exit_statuses.yaml"):
        assert (remote / name).read_text() == (local / name).read_text()
    for iid in BUGS:
        trees = [json.loads((d / iid / f"{iid}.tree.json").read_text()) for d in (local, remote)]
        assert [n["kind"] for n in trees[0]["nodes"]] == [n["kind"] for n in trees[1]["nodes"]]
        assert json.loads((remote / iid / "summary.json").read_text())["executor"] == "ray"
