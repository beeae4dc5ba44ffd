"""Task definitions for the bundled suite: where each bug is injected, the user's report, hidden tests.

Each task names a package version, one or more `(file, fixed, buggy)` edits (the exact pristine
text and what replaces it to make the bug), the test file the hidden tests are appended to, and the
existing tests to run (`select`). `p2p` keywords pick related existing tests for PASS_TO_PASS.
"""

from __future__ import annotations

PACKAGES = {
    "more-itertools==11.2.1": "more-itertools/more-itertools",
    "toolz==1.2.0": "pytoolz/toolz",
    "humanize==4.17.0": "python-humanize/humanize",
    "tabulate==0.10.0": "astanin/python-tabulate",
    "inflection==0.5.1": "jpvanhal/inflection",
    "boltons==26.2.0": "mahmoud/boltons",
    "isodate==0.7.2": "gweis/isodate",
    "semver==3.1.1": "python-semver/python-semver",
    "parse==1.22.4": "r1chardj0n3s/parse",
    "python-slugify==9.2.0": "un33k/python-slugify",
}
# Extra test-only requirements per package (installed into the venv after the package itself).
EXTRA_TEST_DEPS = {"humanize==4.17.0": ["freezegun"]}

MI, TZ, HU, TB, IN, BO, ISO, SV, PA, SL = PACKAGES

TASKS: list[dict] = [
    # ------------------------------------------------------------------ more-itertools
    dict(
        id="more-itertools-nth-or-last", pkg=MI, difficulty="easy",
        edits=[("more_itertools/more.py", "return last(islice(iterable, n + 1), default=default)",
                "return last(islice(iterable, n), default=default)")],
        statement="""`nth_or_last` returns the wrong element

I expected `nth_or_last(iterable, n)` to give me the item at index `n` (like `nth`), falling back
to the last item when the iterable is shorter. Instead it seems to return the item *before* the
one I asked for:

```python
>>> from more_itertools import nth_or_last
>>> nth_or_last([0, 1, 2, 3], 2)
1
```

Expected `2`. Also `nth_or_last([5], 0)` raises `ValueError` about an empty iterable instead of
returning `5`.""",
        test_file="tests/test_more.py", select=["tests/test_more.py::NthOrLastTests", "tests/test_more.py::LastTests"],
        p2p=["NthOrLast", "LastTests"],
        tests='''
def test_nth_or_last_returns_nth_item():
    from more_itertools import nth_or_last
    assert nth_or_last([0, 1, 2, 3], 2) == 2
    assert nth_or_last(iter("abcdef"), 0) == "a"


def test_nth_or_last_single_item():
    from more_itertools import nth_or_last
    assert nth_or_last([5], 0) == 5
    assert nth_or_last([5, 6], 10) == 6
''',
    ),
    dict(
        id="more-itertools-chunked-strict", pkg=MI, difficulty="easy",
        edits=[("more_itertools/more.py", "                if len(chunk) != n:\n",
                "                if len(chunk) > n:\n")],
        statement="""chunked(..., strict=True) silently yields a short last chunk

The docs say that with `strict=True`, `chunked` raises `ValueError` if the length of the iterable
is not divisible by `n`. That does not happen:

```python
>>> from more_itertools import chunked
>>> list(chunked([1, 2, 3, 4, 5], 2, strict=True))
[[1, 2], [3, 4], [5]]
```

Expected: `ValueError: iterable is not divisible by n.` (the first two chunks may be yielded
before the error).""",
        test_file="tests/test_more.py", select=["tests/test_more.py::ChunkedTests"], p2p=["Chunked"],
        tests='''
def test_chunked_strict_rejects_short_tail():
    import pytest
    from more_itertools import chunked
    it = chunked([1, 2, 3, 4, 5], 2, strict=True)
    assert next(it) == [1, 2]
    assert next(it) == [3, 4]
    with pytest.raises(ValueError):
        next(it)


def test_chunked_strict_exact_multiple_ok():
    from more_itertools import chunked
    assert list(chunked("abcdef", 3, strict=True)) == [["a", "b", "c"], ["d", "e", "f"]]
''',
    ),
    dict(
        id="more-itertools-rstrip-duplicates", pkg=MI, difficulty="medium",
        edits=[("more_itertools/more.py", "            yield from cache\n            cache_clear()\n",
                "            yield from cache\n")],
        statement="""rstrip() repeats items when the predicate matches in the middle

`more_itertools.rstrip` should only drop matching items at the *end*, but it duplicates items
when matching items appear before a non-matching one:

```python
>>> from more_itertools import rstrip
>>> list(rstrip([1, None, 2, None, 3, None], lambda x: x is None))
[1, None, 2, None, None, 3]
```

Expected `[1, None, 2, None, 3]`. `strip()` shows the same problem.""",
        test_file="tests/test_more.py",
        select=["tests/test_more.py::StripFunctionTests"],
        p2p=["strip"],
        tests='''
def test_rstrip_keeps_inner_items_once():
    from more_itertools import rstrip
    pred = lambda x: x is None  # noqa: E731
    assert list(rstrip([1, None, 2, None, 3, None], pred)) == [1, None, 2, None, 3]


def test_strip_keeps_inner_items_once():
    from more_itertools import strip
    assert list(strip([0, 1, 0, 0, 2, 0], lambda x: x == 0)) == [1, 0, 0, 2]
''',
    ),
    dict(
        id="more-itertools-windowed-step-padding", pkg=MI, difficulty="hard",
        edits=[("more_itertools/more.py", "padding = (fillvalue,) * (n - 1 if step >= n else step - 1)",
                "padding = (fillvalue,) * (n - 1 if step >= n else step)")],
        statement="""windowed() with step yields an extra window made of fill values

When `step` is smaller than the window size I sometimes get one window too many at the end:

```python
>>> from more_itertools import windowed
>>> list(windowed([1, 2, 3, 4, 5], 3, step=2))
[(1, 2, 3), (3, 4, 5), (5, None, None)]
```

The input is covered exactly by the first two windows, so I expected `[(1, 2, 3), (3, 4, 5)]`.
With `step=1` and with `step >= n` the output looks right.""",
        test_file="tests/test_more.py", select=["tests/test_more.py::WindowedTests"], p2p=["Windowed"],
        tests='''
def test_windowed_step_no_extra_fill_window():
    from more_itertools import windowed
    assert list(windowed([1, 2, 3, 4, 5], 3, step=2)) == [(1, 2, 3), (3, 4, 5)]
    assert list(windowed(range(7), 4, step=3)) == [(0, 1, 2, 3), (3, 4, 5, 6)]


def test_windowed_step_partial_last_window():
    from more_itertools import windowed
    assert list(windowed([1, 2, 3, 4, 5, 6], 3, fillvalue="!", step=2)) == [(1, 2, 3), (3, 4, 5), (5, 6, "!")]
''',
    ),
    # ------------------------------------------------------------------ toolz
    dict(
        id="toolz-get-in-index-error", pkg=TZ, difficulty="easy",
        edits=[("toolz/dicttoolz.py", "    except (KeyError, IndexError, TypeError):\n        if no_default:",
                "    except (KeyError, TypeError):\n        if no_default:")],
        statement="""get_in raises IndexError instead of returning the default

`get_in` is documented to return `default` when the path does not exist, and it does for missing
dict keys, but not for list indexes that are out of range:

```python
>>> from toolz import get_in
>>> get_in(["items", 5], {"items": [1, 2]}, default="missing")
Traceback (most recent call last):
  ...
IndexError: list index out of range
```

Expected `'missing'` (and `None` when no default is given).""",
        test_file="toolz/tests/test_dicttoolz.py", select=["toolz/tests/test_dicttoolz.py"], p2p=["get_in", "update_in"],
        tests='''
def test_get_in_out_of_range_index_returns_default():
    from toolz import get_in
    assert get_in(["items", 5], {"items": [1, 2]}, default="missing") == "missing"
    assert get_in([3], [1, 2]) is None


def test_get_in_out_of_range_index_raises_with_no_default():
    import pytest
    from toolz import get_in
    with pytest.raises(IndexError):
        get_in([3], [1, 2], no_default=True)
''',
    ),
    dict(
        id="toolz-topk-smallest", pkg=TZ, difficulty="easy",
        edits=[("toolz/itertoolz.py", "    return tuple(heapq.nlargest(k, seq, key=key))",
                "    return tuple(heapq.nsmallest(k, seq, key=key))")],
        statement="""topk returns the smallest elements

`topk(k, seq)` is supposed to find the k largest elements, but I get the smallest ones:

```python
>>> from toolz import topk
>>> topk(2, [1, 100, 10, 1000])
(1, 10)
```

Expected `(1000, 100)`. Same with a key: `topk(1, ['a', 'bbb', 'cc'], key=len)` gives `('a',)`
instead of `('bbb',)`.""",
        test_file="toolz/tests/test_itertoolz.py", select=["toolz/tests/test_itertoolz.py"], p2p=["take", "tail", "peek"],
        tests='''
def test_topk_returns_largest():
    from toolz import topk
    assert topk(2, [1, 100, 10, 1000]) == (1000, 100)


def test_topk_with_key_returns_largest():
    from toolz import topk
    assert topk(1, ["a", "bbb", "cc"], key=len) == ("bbb",)
''',
    ),
    dict(
        id="toolz-update-in-default", pkg=TZ, difficulty="medium",
        edits=[("toolz/dicttoolz.py", "        inner[k] = func(default)\n", "        inner[k] = default\n")],
        statement="""update_in does not call func when the key is missing

When the final key does not exist, `update_in` should call `func(default)`. It stores the
default unchanged instead:

```python
>>> from toolz import update_in
>>> update_in({}, ["a", "b"], lambda x: x + 1, default=0)
{'a': {'b': 0}}
```

Expected `{'a': {'b': 1}}`. Counting things with `update_in(d, [key], inc, default=0)` therefore
never gets past 0 for new keys.""",
        test_file="toolz/tests/test_dicttoolz.py", select=["toolz/tests/test_dicttoolz.py"], p2p=["get_in", "assoc"],
        tests='''
def test_update_in_missing_key_applies_func_to_default():
    from toolz import update_in
    assert update_in({}, ["a", "b"], lambda x: x + 1, default=0) == {"a": {"b": 1}}
    assert update_in({"x": 1}, ["y"], str, default=5) == {"x": 1, "y": "5"}
''',
    ),
    dict(
        id="toolz-take-nth-offset", pkg=TZ, difficulty="easy",
        edits=[("toolz/itertoolz.py", "    return itertools.islice(seq, 0, None, n)", "    return itertools.islice(seq, 1, None, n)")],
        statement="""take_nth skips the first element

`take_nth(2, [10, 20, 30, 40, 50])` should give every second item starting with the first one,
i.e. `[10, 30, 50]`, but I get:

```python
>>> from toolz import take_nth
>>> list(take_nth(2, [10, 20, 30, 40, 50]))
[20, 40]
```

`take_nth(1, seq)` also drops the first element.""",
        test_file="toolz/tests/test_itertoolz.py", select=["toolz/tests/test_itertoolz.py"], p2p=["take", "drop"],
        tests='''
def test_take_nth_starts_with_first():
    from toolz import take_nth
    assert list(take_nth(2, [10, 20, 30, 40, 50])) == [10, 30, 50]
    assert list(take_nth(1, "abc")) == ["a", "b", "c"]
''',
    ),
    # ------------------------------------------------------------------ humanize
    dict(
        id="humanize-ordinal-teens", pkg=HU, difficulty="easy",
        edits=[("src/humanize/number.py", "digit = 0 if value % 100 in (11, 12, 13) else value % 10",
                "digit = 0 if value % 10 in (11, 12, 13) else value % 10")],
        statement="""ordinal(11) returns "11st"

```python
>>> import humanize
>>> humanize.ordinal(11), humanize.ordinal(12), humanize.ordinal(113)
('11st', '12nd', '113rd')
```

English ordinals for 11, 12 and 13 (and 111, 112, 113, ...) end in "th": expected
`('11th', '12th', '113th')`. Other numbers like 1, 22, 101 are fine.""",
        test_file="tests/test_number.py", select=["tests/test_number.py"], p2p=["apnumber", "intcomma"],
        tests='''
def test_ordinal_teens_use_th():
    assert humanize.ordinal(11) == "11th"
    assert humanize.ordinal(12) == "12th"
    assert humanize.ordinal(113) == "113th"
    assert humanize.ordinal(21) == "21st"
''',
    ),
    dict(
        id="humanize-apnumber-zero", pkg=HU, difficulty="easy",
        edits=[("src/humanize/number.py", "    if not 0 <= value < 10:\n", "    if not 0 < value < 10:\n")],
        statement="""apnumber(0) is not spelled out

Associated Press style spells out zero through nine. `apnumber` handles 1-9 but not zero:

```python
>>> import humanize
>>> humanize.apnumber(0)
'0'
```

Expected `'zero'` (also for `"0"` passed as a string).""",
        test_file="tests/test_number.py", select=["tests/test_number.py"], p2p=["ordinal", "intword"],
        tests='''
def test_apnumber_zero_spelled_out():
    assert humanize.apnumber(0) == "zero"
    assert humanize.apnumber("0") == "zero"
    assert humanize.apnumber(10) == "10"
''',
    ),
    dict(
        id="humanize-naturalsize-boundary", pkg=HU, difficulty="easy",
        edits=[("src/humanize/filesize.py", "    if abs_bytes < base:\n", "    if abs_bytes <= base:\n")],
        statement="""naturalsize(1000) prints "1000 Bytes" instead of "1.0 kB"

```python
>>> import humanize
>>> humanize.naturalsize(1000)
'1000 Bytes'
>>> humanize.naturalsize(1024, binary=True)
'1024 Bytes'
```

Everything from 1001 up is shown in kB, so exactly one kilobyte should be `'1.0 kB'` (and
`'1.0 KiB'` in binary mode, `'1.0K'` with `gnu=True`).""",
        test_file="tests/test_filesize.py", select=["tests/test_filesize.py"], p2p=["naturalsize"],
        tests='''
def test_naturalsize_exact_base_uses_next_unit():
    import humanize
    assert humanize.naturalsize(1000) == "1.0 kB"
    assert humanize.naturalsize(1024, binary=True) == "1.0 KiB"
    assert humanize.naturalsize(1024, gnu=True) == "1.0K"
    assert humanize.naturalsize(999) == "999 Bytes"
''',
    ),
    dict(
        id="humanize-naturalsize-rollover", pkg=HU, difficulty="hard",
        edits=[("src/humanize/filesize.py",
                "    if exp < len(suffix) and abs(float(format % (abs_bytes / (base**exp)))) >= base:\n        exp += 1\n",
                "    if exp < len(suffix) and abs(float(format % (abs_bytes / (base**exp)))) > base:\n        exp += 1\n")],
        statement="""naturalsize shows "1000.0 kB" for values just below a megabyte

```python
>>> import humanize
>>> humanize.naturalsize(999_999)
'1000.0 kB'
>>> humanize.naturalsize(1_048_575, binary=True)
'1024.0 KiB'
```

I'd expect `'1.0 MB'` and `'1.0 MiB'`: a mantissa of 1000 (or 1024 in binary mode) should move to
the next unit. Smaller values like 999_000 are fine ('999.0 kB').""",
        test_file="tests/test_filesize.py", select=["tests/test_filesize.py"], p2p=["naturalsize"],
        tests='''
def test_naturalsize_rounding_rolls_to_next_unit():
    import humanize
    assert humanize.naturalsize(999_999) == "1.0 MB"
    assert humanize.naturalsize(1_048_575, binary=True) == "1.0 MiB"
    assert humanize.naturalsize(999_000) == "999.0 kB"
''',
    ),
    # ------------------------------------------------------------------ tabulate
    dict(
        id="tabulate-pipe-center-colons", pkg=TB, difficulty="easy",
        edits=[("tabulate/__init__.py", '        return ":" + ("-" * (w - 2)) + ":"', '        return ":" + ("-" * (w - 1)) + ":"')],
        statement="""pipe format: centered column separator line is one character too wide

With `colalign=("center",)` the `|:---:|` line under the header is longer than the column, so the
table is misaligned and some Markdown renderers complain:

```python
>>> from tabulate import tabulate
>>> print(tabulate([["ab"]], headers=["x"], tablefmt="pipe", colalign=("center",)))
|  x  |
|:----:|
| ab  |
```

Expected the separator to be `|:---:|`, as wide as the other rows.""",
        test_file="test/test_output.py", select=["test/test_output.py"], p2p=["pipe"],
        tests='''
def test_pipe_center_separator_width():
    from tabulate import tabulate
    out = tabulate([["ab"]], headers=["x"], tablefmt="pipe", colalign=("center",))
    lines = out.splitlines()
    assert lines[1] == "|:---:|"
    assert len({len(line) for line in lines}) == 1
''',
    ),
    dict(
        id="tabulate-decimal-afterpoint", pkg=TB, difficulty="medium",
        edits=[("tabulate/__init__.py", "                return len(string) - pos - 1\n", "                return len(string) - pos\n")],
        statement="""Integers and floats in one column are no longer aligned on the decimal point

When a numeric column mixes integers and floats, the integers end up one place to the left of
where they belong:

```python
>>> from tabulate import tabulate
>>> print(tabulate([["a", 1], ["b", 1.5], ["c", 10.25]], headers=["name", "value"]))
name      value
------  -------
a         1
b          1.5
c         10.25
```

Expected the `1` to line up with the other units digits:

```
name      value
------  -------
a          1
b          1.5
c         10.25
```""",
        test_file="test/test_internal.py", select=["test/test_internal.py", "test/test_output.py"], p2p=["align", "plain"],
        tests='''
def test_afterpoint_counts_digits_after_point():
    from tabulate import _afterpoint
    assert _afterpoint("123.45") == 2
    assert _afterpoint("1001") == -1
    assert _afterpoint("1.5e3") == 3


def test_decimal_alignment_of_ints_and_floats():
    from tabulate import tabulate
    out = tabulate([[1], [1.5], [10.25]], tablefmt="plain")
    assert out.splitlines() == [" 1", " 1.5", "10.25"]
''',
    ),
    # ------------------------------------------------------------------ inflection
    dict(
        id="inflection-ordinal-negative", pkg=IN, difficulty="easy",
        edits=[("inflection/__init__.py", "    number = abs(int(number))\n", "    number = int(number)\n")],
        statement="""ordinalize gives wrong suffixes for negative numbers

```python
>>> import inflection
>>> inflection.ordinalize(-1), inflection.ordinalize(-2), inflection.ordinalize(-1021)
('-1th', '-2th', '-1021th')
```

The sign should not change the suffix: expected `('-1st', '-2nd', '-1021st')`. `-11` should stay
`'-11th'`.""",
        test_file="test_inflection.py", select=["test_inflection.py"], p2p=["ordinal"],
        tests='''
def test_ordinal_negative_numbers():
    assert inflection.ordinalize(-1) == "-1st"
    assert inflection.ordinalize(-2) == "-2nd"
    assert inflection.ordinalize(-1021) == "-1021st"
    assert inflection.ordinalize(-11) == "-11th"
''',
    ),
    dict(
        id="inflection-parameterize-trim", pkg=IN, difficulty="easy",
        edits=[("inflection/__init__.py", "    if separator:\n        re_sep", "    if not separator:\n        re_sep")],
        statement="""parameterize leaves separators at the ends and repeats them

```python
>>> import inflection
>>> inflection.parameterize("  Hello,  World!  ")
'-hello-world-'
>>> inflection.parameterize("Donald E. Knuth", "_")
'donald_e_knuth'
>>> inflection.parameterize("a -- b")
'a----b'
```

Expected `'hello-world'` and `'a-b'`: no leading/trailing separator and never two in a row.""",
        test_file="test_inflection.py", select=["test_inflection.py"], p2p=["parameterize", "dasherize"],
        tests='''
def test_parameterize_trims_and_collapses_separators():
    assert inflection.parameterize("  Hello,  World!  ") == "hello-world"
    assert inflection.parameterize("a -- b") == "a-b"
    assert inflection.parameterize("  x  y ", "_") == "x_y"
''',
    ),
    dict(
        id="inflection-humanize-id-anchor", pkg=IN, difficulty="medium",
        edits=[("inflection/__init__.py", '    word = re.sub(r"_id$", "", word)', '    word = re.sub(r"_id", "", word)')],
        statement="""humanize() drops "_id" in the middle of words

`humanize` should strip a trailing `_id` (for foreign keys), but it also eats `_id` inside names:

```python
>>> import inflection
>>> inflection.humanize("user_identity")
'Userentity'
>>> inflection.humanize("valid_id_card")
'Valid card'
```

Expected `'User identity'` and `'Valid id card'`; `humanize("author_id")` -> `'Author'` is right.""",
        test_file="test_inflection.py", select=["test_inflection.py"], p2p=["humanize", "titleize"],
        tests='''
def test_humanize_keeps_inner_id():
    assert inflection.humanize("user_identity") == "User identity"
    assert inflection.humanize("valid_id_card") == "Valid id card"
    assert inflection.humanize("author_id") == "Author"
''',
    ),
    # ------------------------------------------------------------------ boltons
    dict(
        id="boltons-bytes2human-boundary", pkg=BO, difficulty="easy",
        edits=[("boltons/strutils.py", "        if abs_bytes < next_size:\n", "        if abs_bytes <= next_size:\n")],
        statement="""bytes2human(1024) returns '1024B'

```python
>>> from boltons.strutils import bytes2human
>>> bytes2human(1024)
'1024B'
>>> bytes2human(1024 * 1024)
'1024K'
```

A value exactly at a unit boundary should use the larger unit: expected `'1K'` and `'1M'`.""",
        test_file="tests/test_strutils.py", select=["tests/test_strutils.py"], p2p=["human", "int_list"],
        tests='''
def test_bytes2human_exact_boundaries():
    from boltons.strutils import bytes2human
    assert bytes2human(1024) == "1K"
    assert bytes2human(1024 * 1024) == "1M"
    assert bytes2human(1023) == "1023B"
''',
    ),
    dict(
        id="boltons-parse-int-list-reversed", pkg=BO, difficulty="medium",
        edits=[("boltons/strutils.py", "            output += list(range(min(range_limits), max(range_limits)+1))",
                "            output += list(range(range_limits[0], range_limits[1]+1))")],
        statement="""parse_int_list ignores descending ranges

```python
>>> from boltons.strutils import parse_int_list
>>> parse_int_list("1,8-6,10")
[1, 10]
```

A range written high-to-low should still expand (the result is sorted anyway): expected
`[1, 6, 7, 8, 10]`. Ascending ranges like `"3-5"` work.""",
        test_file="tests/test_strutils.py", select=["tests/test_strutils.py"], p2p=["int_list"],
        tests='''
def test_parse_int_list_descending_range():
    from boltons.strutils import parse_int_list
    assert parse_int_list("1,8-6,10") == [1, 6, 7, 8, 10]
    assert parse_int_list("3-5") == [3, 4, 5]
''',
    ),
    dict(
        id="boltons-one-multiple", pkg=BO, difficulty="easy",
        edits=[("boltons/iterutils.py", "    return ones[0] if len(ones) == 1 else default", "    return ones[0] if len(ones) >= 1 else default")],
        statement="""iterutils.one() accepts more than one truthy value

`one()` should return the single truthy element, or the default when there are zero *or more
than one*. With several truthy values it returns the first one:

```python
>>> from boltons.iterutils import one
>>> one([0, 3, 5])
3
```

Expected `None` (or the given `default`). `one([0, 0, 4])` -> `4` is right.""",
        test_file="tests/test_iterutils.py", select=["tests/test_iterutils.py"], p2p=["first", "one", "same"],
        tests='''
def test_one_rejects_multiple_truthy():
    from boltons.iterutils import one
    assert one([0, 3, 5]) is None
    assert one([1, 2], default="many") == "many"
    assert one([0, 0, 4]) == 4
''',
    ),
    # ------------------------------------------------------------------ isodate
    dict(
        id="isodate-leap-year", pkg=ISO, difficulty="easy",
        edits=[("src/isodate/duration.py", "    if ((year % 400) == 0) or ((year % 100) != 0) and ((year % 4) == 0):",
                "    if ((year % 400) == 0) or ((year % 100) == 0) and ((year % 4) == 0):")],
        statement="""Adding a month to Jan 31 ignores leap years

```python
>>> from datetime import date
>>> from isodate import parse_duration
>>> date(2024, 1, 31) + parse_duration("P1M")
datetime.date(2024, 2, 28)
```

2024 is a leap year, so expected `date(2024, 2, 29)`. Years like 1900 and 2023 correctly give
the 28th.""",
        test_file="tests/test_duration.py", select=["tests/test_duration.py"], p2p=["add", "sub"],
        tests='''
def test_add_month_end_of_january_leap_year():
    from datetime import date
    from isodate import parse_duration
    assert date(2024, 1, 31) + parse_duration("P1M") == date(2024, 2, 29)
    assert date(2023, 1, 31) + parse_duration("P1M") == date(2023, 2, 28)
    assert date(1900, 1, 31) + parse_duration("P1M") == date(1900, 2, 28)
''',
    ),
    dict(
        id="isodate-rsub-years", pkg=ISO, difficulty="easy",
        edits=[("src/isodate/duration.py", "            newyear = other.year - self.years + carry", "            newyear = other.year + self.years + carry")],
        statement="""Subtracting a Duration with years from a date moves forward in time

```python
>>> from datetime import date
>>> from isodate import Duration
>>> date(2020, 3, 15) - Duration(years=1)
datetime.date(2021, 3, 15)
```

Expected `date(2019, 3, 15)`. Subtracting months works as expected; only the year part goes the
wrong way.""",
        test_file="tests/test_duration.py", select=["tests/test_duration.py"], p2p=["sub", "neg"],
        tests='''
def test_date_minus_years_duration():
    from datetime import date
    from isodate import Duration
    assert date(2020, 3, 15) - Duration(years=1) == date(2019, 3, 15)
    assert date(2020, 3, 15) - Duration(years=2, months=3) == date(2017, 12, 15)
''',
    ),
    dict(
        id="isodate-tz-negative-minutes", pkg=ISO, difficulty="medium",
        edits=[("src/isodate/isotzinfo.py", "    return FixedOffset(tzsign * tzhour, tzsign * tzmin, tzname)",
                "    return FixedOffset(tzsign * tzhour, tzmin, tzname)")],
        statement="""Negative half-hour offsets are parsed one hour off

```python
>>> import isodate
>>> isodate.parse_datetime("2020-01-01T10:00:00-03:30").utcoffset()
datetime.timedelta(days=-1, seconds=77400)   # -2:30
```

Newfoundland time is UTC-03:30, so expected `timedelta(hours=-3, minutes=-30)`. Positive
offsets like `+05:30` are right, and so is `-03:00`.""",
        test_file="tests/test_datetime.py", select=["tests/test_datetime.py", "tests/test_time.py"], p2p=["parse"],
        tests='''
def test_negative_offset_with_minutes():
    from datetime import timedelta
    import isodate
    dt = isodate.parse_datetime("2020-01-01T10:00:00-03:30")
    assert dt.utcoffset() == timedelta(hours=-3, minutes=-30)
    assert isodate.parse_tzinfo("+05:30").utcoffset(None) == timedelta(hours=5, minutes=30)
''',
    ),
    dict(
        id="isodate-month-end-clamp", pkg=ISO, difficulty="hard",
        edits=[
            ("src/isodate/duration.py",
             "            newmonth = other.month + self.months\n            carry, newmonth = fquotmod(newmonth, 1, 13)\n            newyear = other.year + self.years + carry\n            maxdays = max_days_in_month(newyear, newmonth)\n            if other.day > maxdays:\n                newday = maxdays\n            else:\n                newday = other.day\n",
             "            newmonth = other.month + self.months\n            carry, newmonth = fquotmod(newmonth, 1, 13)\n            newyear = other.year + self.years + carry\n            newday = other.day\n"),
            ("src/isodate/duration.py",
             "            newmonth = other.month - self.months\n            carry, newmonth = fquotmod(newmonth, 1, 13)\n            newyear = other.year - self.years + carry\n            maxdays = max_days_in_month(newyear, newmonth)\n            if other.day > maxdays:\n                newday = maxdays\n            else:\n                newday = other.day\n",
             "            newmonth = other.month - self.months\n            carry, newmonth = fquotmod(newmonth, 1, 13)\n            newyear = other.year - self.years + carry\n            newday = other.day\n"),
        ],
        statement="""Month arithmetic at the end of a month raises ValueError

Adding or subtracting months from a date near the end of a month crashes:

```python
>>> from datetime import date
>>> from isodate import parse_duration
>>> date(2021, 1, 31) + parse_duration("P1M")
ValueError: day is out of range for month
>>> date(2021, 3, 31) - parse_duration("P1M")
ValueError: day is out of range for month
```

Expected the day to be clamped to the last day of the target month: `date(2021, 2, 28)` for both.
`date(2021, 1, 15) + P1M` works.""",
        test_file="tests/test_duration.py", select=["tests/test_duration.py"], p2p=["add", "sub"],
        tests='''
def test_month_arithmetic_clamps_day():
    from datetime import date
    from isodate import parse_duration
    assert date(2021, 1, 31) + parse_duration("P1M") == date(2021, 2, 28)
    assert date(2021, 3, 31) - parse_duration("P1M") == date(2021, 2, 28)
    assert date(2021, 5, 31) + parse_duration("P1M") == date(2021, 6, 30)
''',
    ),
    dict(
        id="isodate-negative-month-carry", pkg=ISO, difficulty="hard",
        edits=[
            ("src/isodate/duration.py", "from decimal import ROUND_FLOOR, Decimal", "from decimal import ROUND_DOWN, Decimal"),
            ("src/isodate/duration.py", "    div = (a / b).to_integral(ROUND_FLOOR)", "    div = (a / b).to_integral(ROUND_DOWN)"),
        ],
        statement="""Subtracting months across a year boundary crashes

```python
>>> from datetime import date
>>> from isodate import parse_duration
>>> date(2021, 1, 15) - parse_duration("P2M")
ValueError: month must be in 1..12
>>> date(2021, 2, 10) + parse_duration("-P3M")
ValueError: month must be in 1..12
```

Expected `date(2020, 11, 15)` and `date(2020, 11, 10)`. Subtracting within the same year
(`date(2021, 5, 15) - P2M`) and adding months forward across a year both work.""",
        test_file="tests/test_duration.py", select=["tests/test_duration.py"], p2p=["sub", "add"],
        tests='''
def test_month_subtraction_across_year_boundary():
    from datetime import date
    from isodate import parse_duration
    assert date(2021, 1, 15) - parse_duration("P2M") == date(2020, 11, 15)
    assert date(2021, 2, 10) + parse_duration("-P3M") == date(2020, 11, 10)
    assert date(2021, 5, 15) - parse_duration("P2M") == date(2021, 3, 15)
''',
    ),
    # ------------------------------------------------------------------ semver
    dict(
        id="semver-prerelease-precedence", pkg=SV, difficulty="easy",
        edits=[("src/semver/version.py", "        if not rc1:\n            return 1\n", "        if not rc1:\n            return -1\n")],
        statement="""A release compares lower than its own pre-release

```python
>>> from semver import Version
>>> Version.parse("1.0.0") > Version.parse("1.0.0-rc.1")
False
>>> Version.parse("1.0.0").compare("1.0.0-alpha")
-1
```

Per SemVer a pre-release has lower precedence than the normal version, so expected `True` and `1`.""",
        test_file="tests/test_compare.py", select=["tests/test_compare.py"], p2p=["compare"],
        tests='''
def test_release_is_greater_than_its_prerelease():
    from semver import Version
    assert Version.parse("1.0.0") > Version.parse("1.0.0-rc.1")
    assert Version.parse("1.0.0").compare("1.0.0-alpha") == 1
    assert Version.parse("1.0.0-alpha").compare("1.0.0") == -1
''',
    ),
    dict(
        id="semver-match-less-equal", pkg=SV, difficulty="easy",
        edits=[("src/semver/version.py", '            "<=": (-1, 0),\n', '            "<=": (-1,),\n')],
        statement="""match("<=X") is False for the same version

```python
>>> from semver import Version
>>> Version.parse("2.0.0").match("<=2.0.0")
False
```

Expected `True`; `">=2.0.0"` and `"==2.0.0"` both return `True` for the same version.""",
        test_file="tests/test_match.py", select=["tests/test_match.py"], p2p=["match"],
        tests='''
def test_match_less_or_equal_same_version():
    from semver import Version
    assert Version.parse("2.0.0").match("<=2.0.0")
    assert Version.parse("1.9.9").match("<=2.0.0")
    assert not Version.parse("2.0.1").match("<=2.0.0")
''',
    ),
    dict(
        id="semver-numeric-prerelease-order", pkg=SV, difficulty="medium",
        edits=[("src/semver/version.py", "            return (0, len(normalized), normalized)", "            return (0, 0, normalized)")],
        statement="""Pre-release numbers are compared as text: rc.10 < rc.9

```python
>>> from semver import Version
>>> Version.parse("1.0.0-rc.10") > Version.parse("1.0.0-rc.9")
False
>>> max(["1.0.0-beta.2", "1.0.0-beta.11"], key=Version.parse)
'1.0.0-beta.2'
```

Numeric identifiers must be compared numerically (SemVer spec item 11): expected `True` and
`'1.0.0-beta.11'`.""",
        test_file="tests/test_compare.py", select=["tests/test_compare.py"], p2p=["compare"],
        tests='''
def test_numeric_prerelease_identifiers_compare_numerically():
    from semver import Version
    assert Version.parse("1.0.0-rc.10") > Version.parse("1.0.0-rc.9")
    assert max(["1.0.0-beta.2", "1.0.0-beta.11"], key=Version.parse) == "1.0.0-beta.11"
''',
    ),
    dict(
        id="semver-bump-prerelease-digits", pkg=SV, difficulty="hard",
        edits=[("src/semver/version.py", "            next_ = str(int(match.group(2)) + 1)\n            string = match.group(1) + next_ if match.group(1) else next_\n",
                "            next_ = str(int(match.group(2)) + 1)\n            string = match.group(1)[:-1] + next_ if match.group(1) else next_\n")],
        statement="""bump_prerelease() mangles the pre-release tag

```python
>>> from semver import Version
>>> str(Version.parse("1.2.3-rc.1").bump_prerelease())
'1.2.3-rc2'
>>> str(Version.parse("1.2.3-alpha.9").bump_prerelease())
'1.2.3-alpha10'
```

The dot separator before the number disappears, which also changes how the versions sort.
Expected `'1.2.3-rc.2'` and `'1.2.3-alpha.10'`. Versions without a pre-release
(`Version.parse("1.2.3").bump_prerelease()` -> `'1.2.4-rc.1'`) are fine.""",
        test_file="tests/test_bump.py", select=["tests/test_bump.py"], p2p=["prerelease", "build"],
        tests='''
def test_bump_prerelease_keeps_dot_separator():
    from semver import Version
    assert str(Version.parse("1.2.3-rc.1").bump_prerelease()) == "1.2.3-rc.2"
    assert str(Version.parse("1.2.3-alpha.9").bump_prerelease()) == "1.2.3-alpha.10"
''',
    ),
    # ------------------------------------------------------------------ parse
    dict(
        id="parse-plus-sign-base-prefix", pkg=PA, difficulty="medium",
        edits=[("parse/__init__.py", '        elif string[0] == "+":\n            sign = 1\n            number_start = 1\n',
                '        elif string[0] == "+":\n            sign = 1\n            number_start = 0\n')],
        statement="""'{:d}' misreads explicitly signed hex/binary numbers

```python
>>> import parse
>>> parse.parse("{:d}", "0x1F")[0], parse.parse("{:d}", "-0x1F")[0]
(31, -31)
>>> parse.parse("{:d}", "+0x1F")[0]
1
```

With a leading `+` the base prefix is ignored; expected `31`. Same for `"+0b101"` (expected 5).""",
        test_file="tests/test_parse.py", select=["tests/test_parse.py"], p2p=["numbers", "int"],
        tests='''
def test_plus_sign_with_base_prefix():
    import parse
    assert parse.parse("{:d}", "+0x1F")[0] == 31
    assert parse.parse("{:d}", "+0b101")[0] == 5
    assert parse.parse("{:d}", "+17")[0] == 17
''',
    ),
    dict(
        id="parse-findall-overlap", pkg=PA, difficulty="medium",
        edits=[("parse/__init__.py", "        self.pos = m.end()\n", "        self.pos = m.start() + 1\n")],
        statement="""findall returns overlapping / repeated matches

```python
>>> import parse
>>> [r[0] for r in parse.findall("{:d}", "12 345")]
[12, 2, 345, 345, 45, 5]
```

Expected `[12, 345]`: once a match is found, the next search should continue after it, like
`re.findall` does.""",
        test_file="tests/test_findall.py", select=["tests/test_findall.py", "tests/test_search.py"], p2p=["findall", "search"],
        tests='''
def test_findall_does_not_overlap():
    import parse
    assert [r[0] for r in parse.findall("{:d}", "12 345")] == [12, 345]
    assert ["".join(r.fixed) for r in parse.findall("<{}>", "<a><bc>")] == ["a", "bc"]
''',
    ),
    dict(
        id="parse-time-fraction", pkg=PA, difficulty="medium",
        edits=[("parse/__init__.py", '                u = int(u.ljust(6, "0")[:6])\n', "                u = int(u)\n")],
        statement="""Fractional seconds are parsed as microseconds digits

```python
>>> import parse
>>> parse.parse("{:ti}", "2020-01-01T12:30:45.5")[0]
datetime.datetime(2020, 1, 1, 12, 30, 45, 5)
```

`.5` is half a second, so I expected `microsecond=500000`. `.123456` is right, but `.25` gives
25 microseconds instead of 250000, and more than six digits crash with `microsecond must be in
0..999999`.""",
        test_file="tests/test_parsetype.py", select=["tests/test_parsetype.py"], p2p=["datetime", "time"],
        tests='''
def test_fractional_seconds_scale_to_microseconds():
    import parse
    assert parse.parse("{:ti}", "2020-01-01T12:30:45.5")[0].microsecond == 500000
    assert parse.parse("{:ti}", "2020-01-01T12:30:45.25")[0].microsecond == 250000
    assert parse.parse("{:ti}", "2020-01-01T12:30:45.1234567")[0].microsecond == 123456
''',
    ),
    # ------------------------------------------------------------------ python-slugify
    dict(
        id="slugify-stopwords-case", pkg=SL, difficulty="easy",
        edits=[("slugify/_legacy.py", "        excluded = [word.lower() for word in stopwords] if lowercase else stopwords\n",
                "        excluded = stopwords\n")],
        statement="""Capitalised stopwords are not removed

```python
>>> from slugify import slugify
>>> slugify("The Quick Brown Fox", stopwords=["The", "Brown"])
'the-quick-brown-fox'
```

The slug is lowercased, so I expected the stopwords to match regardless of case:
`'quick-fox'`. Passing lowercase stopwords works.""",
        test_file="tests/test_legacy.py", select=["tests/test_legacy.py"], p2p=["stopword"],
        tests='''
def test_stopwords_match_case_insensitively():
    from slugify import slugify
    assert slugify("The Quick Brown Fox", stopwords=["The", "Brown"]) == "quick-fox"
    assert slugify("The Quick Fox", stopwords=["The"], lowercase=False) == "Quick-Fox"
''',
    ),
    dict(
        id="slugify-truncate-trailing-separator", pkg=SL, difficulty="medium",
        edits=[("slugify/_legacy.py", "        return string[:max_length].strip(separator)\n", "        return string[:max_length]\n")],
        statement="""max_length can leave a dangling separator at the end of the slug

```python
>>> from slugify import slugify
>>> slugify("hello world again", max_length=6)
'hello-'
```

Expected `'hello'` - a slug should never end with the separator. Same with a custom separator:
`slugify("hello world", max_length=6, separator="_")` gives `'hello_'`.""",
        test_file="tests/test_legacy.py", select=["tests/test_legacy.py"], p2p=["max_length", "truncate"],
        tests='''
def test_max_length_strips_trailing_separator():
    from slugify import slugify
    assert slugify("hello world again", max_length=6) == "hello"
    assert slugify("hello world", max_length=6, separator="_") == "hello"
''',
    ),
]

# The smoke subset for CI: fast packages, one easy task each.
SMOKE = ["toolz-take-nth-offset", "inflection-ordinal-negative", "boltons-one-multiple", "semver-match-less-equal"]
