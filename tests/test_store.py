"""The run store: write-through, reload, no id collisions, atomic path updates."""

import pytest

from treefix.agent.store import RunStore
from treefix.agent.tree import ExecResult, Judgement, Node, NodeKind


def test_nodes_survive_reopening(tmp_path):
    s = RunStore(tmp_path / "run.sqlite")
    root = s.add(Node(NodeKind.ROOT, None, 0, title="issue"))
    child = Node(NodeKind.CODE, root.id, 1, diff="d", exec=ExecResult(passed=2, failed=1), judgement=Judgement(0.5))
    s.add(child)
    child.visits = 3
    s.update(child)
    s.set_meta("k", {"a": 1})
    s.event("call", role="plan", cost=0.1)
    s.close()
    s2 = RunStore(tmp_path / "run.sqlite")
    again = s2.get(child.id)
    assert again.visits == 3 and again.exec.passed == 2 and again.judgement.value == 0.5
    assert [n.id for n in s2.children(root.id)] == [child.id]
    assert s2.get_meta("k") == {"a": 1}
    assert s2.events("call")[0]["cost"] == 0.1
    s2.close()


def test_ids_never_collide(tmp_path):
    s = RunStore(tmp_path / "run.sqlite")
    ids = {s.add(Node(NodeKind.PLAN, None, 0)).id for _ in range(2000)}
    assert len(ids) == 2000
    n = s.nodes()[0]
    with pytest.raises(ValueError, match="collision"):
        s.add(Node(NodeKind.PLAN, None, 0, id=n.id))
    s.close()


def test_update_many_is_all_or_nothing(tmp_path):
    s = RunStore(tmp_path / "run.sqlite")
    a = s.add(Node(NodeKind.ROOT, None, 0))
    b = s.add(Node(NodeKind.PLAN, a.id, 1))
    a.visits, b.visits = 1, 1
    b.prior = object()  # not serialisable: the whole transaction must roll back
    with pytest.raises(TypeError):
        s.update_many([a, b])
    s.close()
    s2 = RunStore(tmp_path / "run.sqlite")
    assert s2.get(a.id).visits == 0
    s2.close()
