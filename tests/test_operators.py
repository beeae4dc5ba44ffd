"""Repair operators: what each proposes at a line, and that every mutant is a minimal, valid edit."""

import difflib

from treefix.agent.policies.operators import compiles, mutations


def results(text: str, line: int) -> dict[str, str]:
    """description -> the changed line(s) of the mutant."""
    out = {}
    for m in mutations(text, line):
        new = m.apply(text)
        changed = [ln[2:] for ln in difflib.ndiff(text.splitlines(), new.splitlines()) if ln.startswith("+ ")]
        out[m.description] = "\n".join(changed)
    return out


def test_comparison_swaps_touch_only_the_operator():
    text = "def f(x, base):\n    if x <= base:  # keep me\n        return 1\n    return 2\n"
    got = results(text, 2)
    assert got["`<=` -> `<`"] == "    if x < base:  # keep me"
    assert got["`<=` -> `>=`"] == "    if x >= base:  # keep me"
    first = mutations(text, 2)[0]
    assert first.description == "`<=` -> `<`"  # boundary slips are the likeliest


def test_is_and_in_operators_keep_valid_spacing():
    text = "def f(a, b):\n    return a==b or a in b\n"
    got = results(text, 2)
    assert got["`==` -> `is`"] == "    return a is b or a in b"
    assert got["`in` -> `not in`"] == "    return a==b or a not in b"


def test_off_by_one_variants():
    text = (
        "def f(items, n, it):\n"
        "    x = items.most_common(n - 1)\n"
        "    y = islice(it, 1, None, n)\n"
        "    z = islice(it, n)\n"
        "    return x[:-1] * n\n"
    )
    assert results(text, 2)["`n - 1` -> `n`"] == "    x = items.most_common(n)"
    assert results(text, 3)["`1` -> `0`"] == "    y = islice(it, 0, None, n)"
    assert results(text, 4)["`n` -> `n + 1`"] == "    z = islice(it, n + 1)"
    assert results(text, 5)["`x[:-1]` -> `x`"] == "    return x * n"


def test_plus_one_is_parenthesised_where_precedence_needs_it():
    text = "def f(a, size):\n    return a * size\n"
    assert results(text, 2)["`size` -> `size + 1`"] == "    return a * (size + 1)"


def test_guard_for_an_empty_sequence_returns_a_float_before_a_division():
    text = "def avg(xs):\n    ws = list(xs)\n    return sum(ws) / len(ws)\n"
    best = mutations(text, 3)[0]
    assert best.operator == "guard"
    assert best.apply(text) == (
        "def avg(xs):\n    ws = list(xs)\n    if not ws:\n        return 0.0\n    return sum(ws) / len(ws)\n"
    )


def test_no_guard_on_comprehension_variables():
    text = "def f(text):\n    return [w[0] for w in text.split()]\n"
    assert not any("not w:" in d for d in results(text, 2))


def test_exception_widening_for_a_tuple_and_a_single_name():
    text = (
        "def get(d, k):\n"
        "    try:\n"
        "        return d[k]\n"
        "    except (KeyError, TypeError):\n"
        "        return None\n"
        "    except ValueError:\n"
        "        return 0\n"
    )
    first = mutations(text, 4)[0]
    assert first.apply(text).splitlines()[3] == "    except (KeyError, TypeError, IndexError):"
    assert results(text, 6)["also catch IndexError"] == "    except (ValueError, IndexError):"


def test_negation_antonyms_return_values_and_regex_anchors():
    text = (
        "import heapq\n"
        "import re\n"
        "def f(sep, seq, word):\n"
        "    if not sep:\n"
        "        return -1\n"
        "    word = re.sub(r'_id', '', word)\n"
        "    return tuple(heapq.nsmallest(2, seq))\n"
    )
    assert results(text, 4)["drop `not` in `not sep`"] == "    if sep:"
    assert results(text, 5)["return `1`"] == "        return 1"
    assert results(text, 6)["anchor `_id` at the end"] == "    word = re.sub(r'_id$', '', word)"
    assert results(text, 7)["`.nsmallest` -> `.nlargest`"] == "    return tuple(heapq.nlargest(2, seq))"


def test_variable_misuse_and_defaults():
    text = "def clamp(x, lo, hi, strict=False, n=3):\n    if x > hi:\n        return lo\n    return x\n"
    assert results(text, 3)["`lo` -> `hi`"] == "        return hi"
    sig = results(text, 1)
    assert sig["`False` -> `True`"] == "def clamp(x, lo, hi, strict=True, n=3):"
    assert sig["`3` -> `4`"] == "def clamp(x, lo, hi, strict=False, n=4):"


def test_columns_are_characters_not_bytes():
    text = "def f(x):\n    s = 'é—' if x < 3 else 'ü'\n    return s\n"
    assert results(text, 2)["`<` -> `<=`"] == "    s = 'é—' if x <= 3 else 'ü'"


def test_every_mutant_compiles_and_is_distinct():
    text = (
        "def f(a, b, items):\n"
        "    while a and not b or len(items) > 2:\n"
        "        a = items[a - 1 : b + 1] if a % 10 == 0 else max(a, b)\n"
        "    return a\n"
    )
    for line in (2, 3):
        ms = mutations(text, line)
        assert len(ms) > 10
        outs = [m.apply(text) for m in ms]
        assert len(set(outs)) == len(outs) and text not in outs
        assert all(compiles(o) for o in outs)
        assert [m.prior for m in ms] == sorted((m.prior for m in ms), reverse=True)


def test_lines_without_code_or_unparsable_files_give_nothing():
    assert mutations("def f(:\n", 1) == ()
    assert mutations("x = 1\n\n\n", 2) == ()


def test_a_misused_variable_becomes_a_local_spelled_alike_and_bound_before():
    text = (
        "def pick(results, i_exp, i_failed):\n"
        "    later = 1\n"
        "    if results.get(i_exp) is None:\n"
        "        return later\n"
    )
    got = results(text, 3)
    assert got["`i_exp` -> `i_failed`"] == "    if results.get(i_failed) is None:"
    assert not any("`i_exp` -> `later`" in d or "`i_exp` -> `results`" in d for d in got)  # not alike
    # a local assigned only after the line would raise UnboundLocalError: never offered
    late = "def f(n_rows):\n    total = n_rows + 1\n    n_cols = 2\n    return total * n_cols\n"
    assert "`n_rows` -> `n_cols`" not in results(late, 2)


def test_an_attribute_becomes_one_spelled_alike_on_the_same_receiver():
    text = (
        "class V:\n"
        "    def token(self):\n"
        "        return (self._dims, self._attrs)\n\n"
        "    def describe(self):\n"
        "        return self.attrs\n"
    )
    got = results(text, 3)
    assert got["`._attrs` -> `.attrs`"] == "        return (self._dims, self.attrs)"
    assert "`._dims` -> `.attrs`" not in got
    local = "def f(excinfo, ntraceback):\n    return excinfo.traceback.filter(excinfo)\n"
    assert results(local, 2)["`excinfo.traceback` -> `ntraceback`"] == "    return ntraceback.filter(excinfo)"


def test_or_default_keeps_falsy_values_and_conditions_keep_truthiness():
    text = "def name(idx, i):\n    label = idx.name or f'level_{i}'\n    if idx.name or i:\n        return label\n"
    assert results(text, 2)["`idx.name or f'level_{i}'` -> `idx.name if idx.name is not None else f'level_{i}'`"] == (
        "    label = idx.name if idx.name is not None else f'level_{i}'"
    )
    assert not any("is not None else" in d for d in results(text, 3))


def test_a_condition_that_indexes_a_local_can_check_it_first():
    text = "def f(ident):\n    if ident[-1].isdigit():\n        return 1\n    return 0\n"
    assert results(text, 2)["check `ident` first: `ident and ...`"] == "    if ident and ident[-1].isdigit():"


def test_an_unused_parameter_is_forwarded_to_a_call():
    text = (
        "def palette(color, n_colors=6, reverse=False):\n"
        "    return light(color, reverse=reverse)\n\n\n"
        "def stream(gen, *args, **kwargs):\n"
        "    return gen()\n"
    )
    got = results(text, 2)
    assert got["pass `n_colors` on"] == "    return light(color, n_colors, reverse=reverse)"
    assert got["pass `n_colors=` on"] == "    return light(color, reverse=reverse, n_colors=n_colors)"
    assert not any(d.startswith(("pass `color", "pass `reverse")) for d in got)  # read parameters are not forgotten
    assert results(text, 6)["pass `*args, **kwargs` on"] == "    return gen(*args, **kwargs)"
    placeholder = "def scan(path, ignore):\n    return walk(path, [])\n"
    assert results(placeholder, 2)["`[]` -> `ignore`"] == "    return walk(path, ignore)"


def test_isinstance_widening_order_and_flags():
    text = (
        "def f(arg, subnodes):\n"
        "    if isinstance(arg, nodes.Call):\n"
        "        return isinstance(arg, nodes.Name) or isinstance(arg, str)\n"
        "    for node in subnodes:\n"
        "        emit(node)\n\n\n"
        "def emit(node, strict=False, *, quiet=True):\n"
        "    pass\n"
    )
    widen = results(text, 2)
    assert widen["also accept `nodes.Name`"] == "    if isinstance(arg, (nodes.Call, nodes.Name)):"
    assert not any("`str`" in d for d in widen)  # another namespace
    loop = results(text, 4)
    assert loop["iterate `reversed(subnodes)`"] == "    for node in reversed(subnodes):"
    flags = results(text, 5)
    assert flags["pass `strict=True`"] == "        emit(node, strict=True)"
    assert flags["pass `quiet=False`"] == "        emit(node, quiet=False)"


def test_an_argument_is_appended_after_a_trailing_comma_and_into_empty_parentheses():
    text = "def f(items, size, *args):\n    return g(\n        items,\n    )\n"
    got = {m.description: m.apply(text) for m in mutations(text, 2)}
    assert "        items,\n     size=size)" in got["pass `size=` on"]
    assert all(compiles(t) for t in got.values())
    empty = "def h(cb, *args):\n    return cb()\n"
    assert results(empty, 2)["pass `*args` on"] == "    return cb(*args)"


def test_an_attribute_renamed_at_every_use_in_the_statement_and_a_character_dropped_from_a_set():
    text = (
        "def diff(a, b):\n"
        "    if a.xindexes:\n"
        "        pass\n"
        "    return compare(a.indexes,\n"
        "                   b.indexes)\n\n\n"
        "def blank(c):\n"
        "    return c in ' \\t,'\n"
    )
    got = results(text, 4)
    assert got["every `.indexes` -> `.xindexes`"] == "    return compare(a.xindexes,\n                   b.xindexes)"
    charset = results(text, 9)
    assert charset["drop ',' from ' \\t,'"] == "    return c in ' \\t'"
