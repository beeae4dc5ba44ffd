"""The search simulator: repeatable for a seed, and a smaller budget is a prefix of a larger one."""

import subprocess
import sys

import pytest

from treefix.evals.simulate import (
    QUALITIES,
    Result,
    SimTask,
    budget_blind,
    paired,
    sim_config,
    simulate_one,
    sweep,
)


def test_same_seed_same_runs_other_seed_other_runs(tmp_path):
    q = QUALITIES["medium"]
    a = [simulate_one(i, 7, q, sim_config("mcts", 24), tmp_path) for i in range(4)]
    b = [simulate_one(i, 7, q, sim_config("mcts", 24), tmp_path) for i in range(4)]
    c = [simulate_one(i, 8, q, sim_config("mcts", 24), tmp_path) for i in range(4)]
    key = lambda rs: [(r.resolved, r.turns, r.tokens, r.nodes, r.status, r.trace) for r in rs]  # noqa: E731
    assert key(a) == key(b)
    assert key(a) != key(c)
    assert all(r.turns <= 24 for r in a)


def test_a_smaller_budget_is_the_prefix_of_a_larger_run(tmp_path):
    """What the sweep relies on to read every budget off one run per task, for a search blind to
    the budget left (mcts with the budget-aware rule off, linear)."""
    q = QUALITIES["weak"]
    for strategy, knobs in (("mcts", {"branch_margin": 0}), ("linear", {})):
        assert budget_blind(sim_config(strategy, 64, **knobs))
        for i in range(3):
            big = simulate_one(i, 1, q, sim_config(strategy, 64, **knobs), tmp_path)
            for budget in (8, 20):
                small = simulate_one(i, 1, q, sim_config(strategy, budget, **knobs), tmp_path)
                assert (small.resolved, small.turns) == big.at(budget)
    assert not budget_blind(sim_config("mcts", 64))  # the budget-aware rule reads it: run every budget


def test_dynamic_turn_control_stays_within_its_cap(tmp_path):
    cells = sweep([QUALITIES["weak"]], ("mcts",), (16,), ("none", "fixed", "dynamic"), 3, 0, tmp_path)
    assert [c.turn_control for c in cells] == ["none", "fixed", "dynamic"]
    dynamic = cells[-1]
    assert all(r.turns <= dynamic.turn_cap for r in dynamic.results)


def test_command_refuses_bad_input(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "treefix.evals.simulate", "-q", "excellent", "-o", str(tmp_path / "o")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 2 and "unknown quality 'excellent'" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "o").exists()


def test_strategies_meet_the_same_luck_on_the_same_node_paths(tmp_path):
    """Common random numbers: a node's outcome depends on its path in the tree (the root's k-th plan,
    its j-th child, ...), not on what other strategies drew before it."""
    q = QUALITIES["medium"]
    shared = 0
    for i in range(6):
        runs = [simulate_one(i, 3, q, sim_config(s, 64), tmp_path) for s in ("mcts", "best-of-n", "linear")]
        for a in runs:
            for b in runs:
                common = a.tested.keys() & b.tested.keys()
                assert all(a.tested[p] == b.tested[p] for p in common)
                shared += len([p for p in common if p not in ("p0/c0",)])
    assert shared  # beyond the first attempt, which every strategy makes alike


def test_a_draw_depends_on_its_key_not_on_the_order_of_draws():
    a, b = SimTask(0, 5, QUALITIES["weak"]), SimTask(0, 5, QUALITIES["weak"])
    first = [a.draw("p0/right"), a.draw("p1/right"), a.gauss("p0/critic", 0.3)]
    second = [b.gauss("p0/critic", 0.3), b.draw("p1/right"), b.draw("p0/right")]
    assert first == second[::-1]
    assert a.draw("p0/right") != a.draw("p1/right")
    assert SimTask(1, 5, QUALITIES["weak"]).draw("p0/right") != a.draw("p0/right")
    assert [a.child_path("", 0), a.child_path("", 0), a.child_path("p0", 0)] == ["p0", "p1", "p0/c0"]


def test_paired_difference_and_its_standard_error():
    def rs(flags):
        return [Result(i, f, f, 10, 0, 0.0, 1, "x") for i, f in enumerate(flags)]

    d = paired(rs([1, 1, 0, 1]), rs([0, 1, 0, 0]))  # differences 1, 0, 0, 1
    assert d.diff == 0.5 and abs(d.se - (1 / 3) ** 0.5 / 2) < 1e-12 and d.tasks == 4
    assert str(d) == "+50.0 ± 28.9"
    assert paired(rs([1, 0]), rs([1, 0])).se == 0.0
    with pytest.raises(ValueError):
        paired(rs([1, 0]), rs([1]))
