"""UCT, progressive widening and virtual loss, on a real run store."""

import math

import pytest

from treefix.agent.select import SearchParams, Selector
from treefix.agent.store import RunStore
from treefix.agent.tree import Node, NodeKind, NodeStatus


def add(store, kind, parent=None, visits=0, value_sum=0.0, prior=1.0, status=NodeStatus.DONE):
    depth = 0 if parent is None else store.get(parent).depth + 1
    node = Node(kind, parent, depth, status=status, visits=visits, value_sum=value_sum, prior=prior)
    return store.add(node).id


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "run.sqlite")
    yield s
    s.close()


@pytest.mark.parametrize(("visits", "cap"), [(0, 1), (1, 1), (3, 1), (4, 2), (8, 2), (9, 3), (16, 4), (100, 5)])
def test_widening_cap_follows_k_n_alpha_up_to_max_children(visits, cap):
    params = SearchParams(widen_k=1.0, widen_alpha=0.5, max_children=5)
    assert params.child_cap(Node(NodeKind.PLAN, "p", 1, visits=visits)) == cap


def test_widening_with_other_constants():
    params = SearchParams(widen_k=2.0, widen_alpha=0.5, max_children=10)
    assert [params.child_cap(Node(NodeKind.CODE, "p", 2, visits=v)) for v in (1, 4, 9)] == [2, 4, 6]


def test_node_widens_before_descending_until_cap(store):
    root = add(store, NodeKind.ROOT, visits=1)
    sel = Selector(store, SearchParams())
    assert sel.pick().node_id == root  # no children yet: expand the root
    add(store, NodeKind.PLAN, root, visits=1, value_sum=0.5)
    pick = sel.pick()  # cap(1) = 1 reached: descend into the plan, which may widen
    assert pick.node_id != root and store.get(pick.node_id).kind is NodeKind.PLAN


def test_uct_terms_match_the_formula(store):
    root = add(store, NodeKind.ROOT, visits=10, value_sum=5)
    a = add(store, NodeKind.PLAN, root, visits=6, value_sum=4.8)  # mean 0.8
    b = add(store, NodeKind.PLAN, root, visits=1, value_sum=0.3)  # mean 0.3
    add(store, NodeKind.PLAN, root, visits=3, value_sum=1.5)  # cap(10) = 3 reached
    sel = Selector(store, SearchParams(exploration=1.0))
    pick = sel.pick()
    explore_b = math.sqrt(math.log(11) / 1)
    explore_a = math.sqrt(math.log(11) / 6)
    # b: 0.3 + 1.548 = 1.85 beats a: 0.8 + 0.632 = 1.43 — exploration decides on the [0, 1] scale
    assert pick.terms[0]["child"] == b
    assert pick.terms[0]["exploit"] == pytest.approx(0.3, abs=1e-4)
    assert pick.terms[0]["explore"] == pytest.approx(explore_b, abs=1e-4)
    assert 0.8 + explore_a < 0.3 + explore_b
    greedy = Selector(store, SearchParams(exploration=0.0)).pick()
    assert greedy.terms[0]["child"] == a


def test_priors_scale_exploration(store):
    root = add(store, NodeKind.ROOT, visits=10)
    low = add(store, NodeKind.PLAN, root, visits=2, value_sum=1.0, prior=0.1)
    high = add(store, NodeKind.PLAN, root, visits=2, value_sum=1.0, prior=0.9)
    add(store, NodeKind.PLAN, root, visits=6, value_sum=0.0, prior=0.5)
    pick = Selector(store, SearchParams()).pick()
    assert pick.terms[0]["child"] == high != low


def test_virtual_loss_spreads_a_batch(store):
    root = add(store, NodeKind.ROOT, visits=9, value_sum=4.5)
    kids = [add(store, NodeKind.PLAN, root, visits=3, value_sum=1.5) for _ in range(3)]
    picks = Selector(store, SearchParams()).pick_batch(3)
    assert sorted(p.node_id for p in picks) == sorted(kids)  # equal siblings, one expansion each


def test_pending_expansion_counts_against_the_cap(store):
    root = add(store, NodeKind.ROOT, visits=0)
    sel = Selector(store, SearchParams())
    batch = sel.pick_batch(3)
    assert [p.node_id for p in batch] == [root]  # root may have 1 child, and one is on its way
    sel.end(root)
    assert sel.pick().node_id == root


def test_max_depth_failed_and_verified_nodes_are_not_expanded(store):
    from treefix.agent.tree import ExecResult

    root = add(store, NodeKind.ROOT, visits=3)
    plan = add(store, NodeKind.PLAN, root, visits=3, value_sum=1)
    code = add(store, NodeKind.CODE, plan, visits=1, value_sum=1)
    store.get(code).exec = ExecResult(passed=2)
    add(store, NodeKind.CODE, plan, visits=1, status=NodeStatus.FAILED)
    sel = Selector(store, SearchParams(max_depth=2, max_children=2))
    assert not sel.expandable(store.get(code))  # verified
    # the plan is full and its children are dead, so the root widens past its cap for a new plan
    assert sel.pick().node_id == root
    add(store, NodeKind.PLAN, root, status=NodeStatus.FAILED)
    assert sel.pick() is None  # root is at max_children now: the tree is exhausted


def test_a_dead_only_child_does_not_end_the_search(store):
    root = add(store, NodeKind.ROOT, visits=2)
    plan = add(store, NodeKind.PLAN, root, visits=2, value_sum=0.4)
    code = add(store, NodeKind.CODE, plan, visits=1, value_sum=0.3)
    add(store, NodeKind.REPAIR, code, status=NodeStatus.FAILED)
    assert Selector(store, SearchParams()).pick().node_id == code  # a second repair, despite cap(1) == 1


def test_linear_strategy_makes_a_chain(store):
    root = add(store, NodeKind.ROOT, visits=5)
    plan = add(store, NodeKind.PLAN, root, visits=5)
    code = add(store, NodeKind.CODE, plan, visits=1)
    sel = Selector(store, SearchParams(strategy="linear"))
    assert sel.pick().node_id == code


def test_best_of_n_finishes_a_plan_before_a_new_one(store):
    root = add(store, NodeKind.ROOT, visits=1)
    plan = add(store, NodeKind.PLAN, root, visits=1)
    sel = Selector(store, SearchParams(strategy="best-of-n"))
    assert sel.pick().node_id == plan
    add(store, NodeKind.CODE, plan, visits=1)
    assert sel.pick().node_id == root  # no repairs in best-of-n: next plan


def test_near_the_end_of_the_budget_the_tree_deepens_instead_of_starting_a_plan(store):
    """A plan and its code took 6 + 2 model calls here: with 7 calls left a new plan could not reach
    a test, so the root (free to widen: 4 visits allow 2 plans) sends the pick down the live branch."""
    root = add(store, NodeKind.ROOT, visits=4, value_sum=1.2)
    plan = add(store, NodeKind.PLAN, root, visits=4, value_sum=1.2)
    code = add(store, NodeKind.CODE, plan, visits=3, value_sum=0.9)
    for nid, calls in ((plan, 6), (code, 2)):
        node = store.get(nid)
        node.usage = {"calls": calls}
        store.update(node)
    left = [8.0]
    sel = Selector(store, SearchParams(), room=lambda: left[0])
    assert sel.pick().node_id == root  # 8 calls pay for a plan and its code: widen
    left[0] = 7.0
    assert sel.pick().node_id == plan  # they do not: deepen (another code attempt of the live plan)
    assert Selector(store, SearchParams(branch_margin=0), room=lambda: 7.0).pick().node_id == root  # rule off
    assert Selector(store, SearchParams(strategy="best-of-n"), room=lambda: 7.0).pick().node_id == root  # a baseline
    assert Selector(store, SearchParams(), room=lambda: None).pick().node_id == root  # no limit on calls


def test_root_widen_k_widens_plans_only():
    p = SearchParams(widen_k=1.0, widen_alpha=0.5, max_children=16, root_children=40, root_widen_k=2.0)
    root, plan = Node(NodeKind.ROOT, None, 0, visits=36), Node(NodeKind.PLAN, "p", 1, visits=36)
    assert (p.child_cap(root), p.child_cap(plan)) == (12, 6)
    assert SearchParams(widen_k=1.0, widen_alpha=0.5, max_children=16).child_cap(root) == 6  # 0: the root uses widen_k


def attempt(store, kind, parent, passed):
    """A tested code/repair attempt: all 3 tests pass (verified) or one fails."""
    from treefix.agent.tree import ExecResult

    node_id = add(store, kind, parent, visits=1, value_sum=0.4)
    node = store.get(node_id)
    node.exec = ExecResult(passed=3 if passed else 2, failed=0 if passed else 1, exit_code=0 if passed else 1)
    store.update(node)
    return node_id


def test_a_plan_out_of_patience_is_dropped_for_a_fresh_plan(store):
    # the root holds its cap of plans; the good one (mean 0.9) has failed twice: repair it, or replace it?
    root = add(store, NodeKind.ROOT, visits=4, value_sum=2.0)
    good = add(store, NodeKind.PLAN, root, visits=3, value_sum=2.7)
    code = attempt(store, NodeKind.CODE, good, passed=False)
    attempt(store, NodeKind.REPAIR, code, passed=False)
    add(store, NodeKind.PLAN, root, visits=1, value_sum=0.1)
    params = dict(widen_k=1.0, widen_alpha=0.5, max_children=2, exploration=0.0)
    patient = Selector(store, SearchParams(plan_patience=3, **params)).pick()
    assert patient.terms[0]["child"] == good  # 2 failures < 3: keep working on the best plan
    spent = Selector(store, SearchParams(plan_patience=2, **params))
    assert spent.pick().node_id == root  # 2 failures: the plan is spent and frees its slot for a fresh one
    assert spent.spent_plans() == {good}
    # a verified attempt under the plan means it is not spent; greedy ignores patience
    assert Selector(store, SearchParams(plan_patience=2, strategy="greedy", **params)).spent_plans() == set()
    attempt(store, NodeKind.REPAIR, code, passed=True)
    assert Selector(store, SearchParams(plan_patience=2, **params)).spent_plans() == set()
