"""The search simulator: repeatable for a seed, and a smaller budget is a prefix of a larger one."""

import subprocess
import sys

from treefix.evals.simulate import QUALITIES, budget_blind, sim_config, simulate_one, sweep


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
