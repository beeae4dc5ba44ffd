"""Idioms of real one-line fixes, each fixed end to end by the offline policy on a small real
repository with real pytest runs: a truthiness test where `is not None` was meant, a None reaching
arithmetic, text the failing assertion expected, a regex class without its quantifier, floor
division where truncation was meant, and two elif branches in the wrong order."""

from test_offline_mechanisms import context, offline_fix

from treefix.agent.policies.localise import failure_clues, gather
from treefix.agent.policies.operators import Clues, mutations

# --- `if x:` where `if x is not None:` was meant ------------------------------------------------------

EMPTY_IS_A_VALUE = {
    "envs.py": (
        "def select(envs=None):\n"
        "    if envs:\n"
        "        return [e for e in envs if e.startswith('py')]\n"
        "    return ['any']\n"
    ),
    "tests/test_envs.py": (
        "from envs import select\n\n\n"
        "def test_unset():\n    assert select() == ['any']\n\n\n"
        "def test_some():\n    assert select(['py3', 'pypy']) == ['py3', 'pypy']\n\n\n"
        "def test_explicitly_empty():\n    assert select([]) == []\n"
    ),
}


def test_a_truthiness_test_becomes_a_none_check(tmp_path):
    descs = {m.description for m in mutations(EMPTY_IS_A_VALUE["envs.py"], 2)}
    assert "`envs` -> `envs is not None`" in descs
    outcome = offline_fix(tmp_path, EMPTY_IS_A_VALUE)
    assert outcome.exit_status == "verified"
    assert "+    if envs is not None:" in outcome.patch


def clues_of(path, files: dict[str, str]) -> Clues:
    """What the failing tests of a real run in a repository of `files` tell the operators."""
    ctx = context(path, files)
    try:
        return failure_clues(gather(ctx))
    finally:
        ctx.workspace.close()


# --- a None reaching a numeric call: `x or 0`, only when a test saw NoneType ---------------------------

NONE_LINE = {
    "report.py": (
        "def where(lineno):\n"
        "    lineno = max(lineno, 1)\n"
        "    return f'line {lineno}'\n"
    ),
    "tests/test_report.py": (
        "from report import where\n\n\n"
        "def test_line():\n    assert where(3) == 'line 3'\n\n\n"
        "def test_stdin():\n    assert where(0) == 'line 1'\n\n\n"
        "def test_tokenizer_error():\n    assert where(None) == 'line 1'\n"
    ),
}


def test_a_none_in_arithmetic_is_coalesced_when_a_test_saw_nonetype(tmp_path):
    clues = clues_of(tmp_path / "a", NONE_LINE)
    assert clues.none_error
    text = NONE_LINE["report.py"]
    assert not [m for m in mutations(text, 2) if m.operator == "none"]  # not without the clue
    assert "`lineno` -> `lineno or 0`" in {m.description for m in mutations(text, 2, (), clues)}
    outcome = offline_fix(tmp_path / "b", NONE_LINE)
    assert outcome.exit_status == "verified"
    assert "+    lineno = max(lineno or 0, 1)" in outcome.patch


# --- a constant becomes the text the failing assertion expected ----------------------------------------

EXPECTED_TEXT = {
    "jsonschema_of.py": (
        "def schema_of(value):\n"
        "    out = {'title': 'v'}\n"
        "    if value is None:\n"
        "        out['type'] = None\n"
        "    else:\n"
        "        out['const'] = value\n"
        "    return out\n"
    ),
    "tests/test_schema.py": (
        "from jsonschema_of import schema_of\n\n\n"
        "def test_const():\n    assert schema_of(3) == {'title': 'v', 'const': 3}\n\n\n"
        "def test_none():\n    assert schema_of(None) == {'title': 'v', 'type': 'null'}\n"
    ),
}


def test_a_constant_becomes_the_text_the_assertion_expected(tmp_path):
    clues = clues_of(tmp_path / "a", EXPECTED_TEXT)
    assert clues.texts == ("null",) and clues.got_none  # 'v' and 'title' are on both sides
    outcome = offline_fix(tmp_path / "b", EXPECTED_TEXT)
    assert outcome.exit_status == "verified"
    assert "+        out['type'] = 'null'" in outcome.patch


def test_expected_text_skips_shortened_summaries_and_dict_keys():
    class Failed:
        failing = {"t"}
        messages = {"t": "assert {'a': 1, ...} == {'$id': 2, ...}\n  {'kind': None} != {'kind': 'null'}"}

    assert failure_clues(Failed()) == Clues(("null",), False, (), True)  # type: ignore[arg-type]
    text = "x = {'kind': None}\n"
    results = {m.apply(text) for m in mutations(text, 1, (), Clues(("type",), got_none=True))}
    assert "x = {'kind': 'type'}\n" in results
    assert "x = {'type': None}\n" not in results  # a dict key is not replaced by the text
    # a constant the wrong output does not show is left alone
    word = "def f(g):\n    return 'male' if g else 'th'\n"
    only = {m.apply(word) for m in mutations(word, 2, (), Clues(("st",), got_texts=("th",)))}
    assert "def f(g):\n    return 'male' if g else 'st'\n" in only
    assert "def f(g):\n    return 'st' if g else 'th'\n" not in only


# --- a regex character class without its quantifier ----------------------------------------------------

REGEX = {
    "versions.py": (
        "import re\n\n\n"
        "def parse(version):\n"
        "    m = re.match(r'(\\d+)(?:\\.(\\d))?$', version)\n"
        "    if m is None:\n"
        "        raise ValueError(version)\n"
        "    return int(m.group(1)), int(m.group(2) or 0)\n"
    ),
    "tests/test_versions.py": (
        "import pytest\n\nfrom versions import parse\n\n\n"
        "def test_short():\n    assert parse('3.8') == (3, 8)\n\n\n"
        "def test_major():\n    assert parse('3') == (3, 0)\n\n\n"
        "def test_bad():\n    with pytest.raises(ValueError):\n        parse('x')\n\n\n"
        "def test_two_digits():\n    assert parse('3.10') == (3, 10)\n"
    ),
}


def test_a_regex_class_gets_its_quantifier(tmp_path):
    outcome = offline_fix(tmp_path, REGEX)
    assert outcome.exit_status == "verified"
    assert r"+    m = re.match(r'(\d+)(?:\.(\d+))?$', version)" in outcome.patch


# --- floor division where truncation toward zero was meant -------------------------------------------

WEEKS = {
    "delta.py": (
        "class Delta:\n"
        "    def __init__(self, days):\n"
        "        self.days = days\n\n"
        "    @property\n"
        "    def weeks(self):\n"
        "        return self.days // 7\n"
    ),
    "tests/test_delta.py": (
        "from delta import Delta\n\n\n"
        "def test_positive():\n    assert Delta(15).weeks == 2\n\n\n"
        "def test_zero():\n    assert Delta(3).weeks == 0\n\n\n"
        "def test_negative():\n    assert Delta(-8).weeks == -1\n\n\n"
        "def test_minus_one_day():\n    assert Delta(-1).weeks == 0\n"
    ),
}


def test_floor_division_becomes_truncation(tmp_path):
    outcome = offline_fix(tmp_path, WEEKS)
    assert outcome.exit_status == "verified"
    assert "+        return int(self.days / 7)" in outcome.patch


# --- two elif branches in the wrong order ------------------------------------------------------------

ORDER = {
    "validate.py": (
        "def clean(data, allowed, remove_unknown):\n"
        "    out, errors = {}, []\n"
        "    for key, value in data.items():\n"
        "        error = None if key in allowed else f'extra key {key}'\n"
        "        if error:\n"
        "            errors.append(error)\n"
        "        elif remove_unknown and key not in allowed:\n"
        "            # drop it\n"
        "            continue\n"
        "        else:\n"
        "            out[key] = value\n"
        "    if errors:\n"
        "        raise ValueError(errors)\n"
        "    return out\n"
    ),
    "tests/test_validate.py": (
        "import pytest\n\nfrom validate import clean\n\n\n"
        "def test_keeps():\n    assert clean({'a': 1}, {'a'}, False) == {'a': 1}\n\n\n"
        "def test_rejects():\n    with pytest.raises(ValueError):\n        clean({'b': 1}, {'a'}, False)\n\n\n"
        "def test_removes():\n    assert clean({'a': 1, 'b': 2}, {'a'}, True) == {'a': 1}\n"
    ),
}


def test_two_elif_branches_trade_places(tmp_path):
    outcome = offline_fix(tmp_path, ORDER)
    assert outcome.exit_status == "verified"
    fixed = [ln[1:] for ln in outcome.patch.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert "        if remove_unknown and key not in allowed:" in fixed
    assert "        elif error:" in fixed
