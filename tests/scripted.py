"""A scripted 'model' for whole searches over tests/fixtures-like repos: replies by role."""

import json

from treefix.agent.models.base import Completion, Usage

BUGGY = {
    "calc/__init__.py": "",
    "calc/ops.py": "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return lo\n    return x\n",
    "tests/test_ops.py": (
        "from calc.ops import clamp\n\n\n"
        "def test_low():\n    assert clamp(-1, 0, 5) == 0\n\n\n"
        "def test_high():\n    assert clamp(9, 0, 5) == 5\n\n\n"
        "def test_mid():\n    assert clamp(3, 0, 5) == 3\n"
    ),
}
TEST_CMD = "python -m pytest -q -p no:cacheprovider"

PLAN = "TITLE: clamp returns lo for large x\nROOT CAUSE: calc/ops.py returns lo when x > hi.\nSTRATEGY: return hi."
WRONG = "calc/ops.py\n<<<<<<< SEARCH\n    if x > hi:\n        return lo\n=======\n    if x >= hi:\n        return lo\n>>>>>>> REPLACE\n"
RIGHT = "calc/ops.py\n<<<<<<< SEARCH\n    if x > hi:\n        return lo\n=======\n    if x > hi:\n        return hi\n>>>>>>> REPLACE\n"


def critic(value: float, advice: str = "") -> str:
    return json.dumps({"value": value, "rationale": f"rated {value}", "advice": advice})


def completion(text: str, tokens_in: int = 100, tokens_out: int = 20) -> Completion:
    return Completion(text, usage=Usage(tokens_in, tokens_out))
REPAIR = "calc/ops.py\n<<<<<<< SEARCH\n    if x >= hi:\n        return lo\n=======\n    if x > hi:\n        return hi\n>>>>>>> REPLACE\n"
