import os
import shutil
import textwrap
from pathlib import Path

import pytest

from treefix.tools.edit import EditBlock, EditError, apply_blocks, parse_blocks


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def block(path: str, search: str, replace: str) -> EditBlock:
    return EditBlock(path, textwrap.dedent(search), textwrap.dedent(replace))


# ---------------------------------------------------------------- parsing


def test_parse_fenced_blocks_sharing_a_path():
    reply = textwrap.dedent(
        """\
        Here is the fix.

        **pkg/mod.py**
        ```python
        <<<<<<< SEARCH
        def f():
            return 1
        =======
        def f():
            return 2
        >>>>>>> REPLACE
        ```

        ```python
        <<<<<<< SEARCH
        x = 1
        =======
        >>>>>>> REPLACE
        ```

        `docs/new.md`:
        <<<<<<< SEARCH
        =======
        # Title
        >>>>>>> REPLACE
        """
    )
    blocks = parse_blocks(reply)
    assert [b.path for b in blocks] == ["pkg/mod.py", "pkg/mod.py", "docs/new.md"]
    assert blocks[0].search == "def f():\n    return 1\n"
    assert blocks[0].replace == "def f():\n    return 2\n"
    assert blocks[1].replace == ""
    assert blocks[2].search == "" and blocks[2].replace == "# Title\n"


def test_parse_path_in_prose_and_errors():
    reply = "Edit the file src/app.js:\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"
    assert parse_blocks(reply)[0].path == "src/app.js"
    with pytest.raises(EditError, match="no file path"):
        parse_blocks("Here you go:\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n")
    with pytest.raises(EditError, match="======="):
        parse_blocks("a.py\n<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n")
    with pytest.raises(EditError, match="REPLACE"):
        parse_blocks("a.py\n<<<<<<< SEARCH\na\n=======\nb\n")
    assert parse_blocks("no blocks here") == []


# ---------------------------------------------------------------- matching


def test_exact_match_on_a_real_stdlib_file(tmp_path):
    shutil.copy(textwrap.__file__, tmp_path / "textwrap.py")
    search = "def dedent(text):\n"
    report = apply_blocks(tmp_path, [EditBlock("textwrap.py", search, "def dedent(text, strict=False):\n")])
    assert report.ok and report.changed == ["textwrap.py"]
    assert "def dedent(text, strict=False):" in (tmp_path / "textwrap.py").read_text()


def test_leading_whitespace_drift_reindents_the_replacement(tmp_path):
    write(
        tmp_path,
        "m.py",
        """\
        class A:
            def f(self):
                if True:
                    return 1
        """,
    )
    report = apply_blocks(
        tmp_path,
        [
            block(
                "m.py",
                """\
        if True:
            return 1
        """,
                """\
        if False:
            return 2
        return 3
        """,
            )
        ],
    )
    assert report.ok, report.feedback()
    assert (tmp_path / "m.py").read_text() == textwrap.dedent("""\
        class A:
            def f(self):
                if False:
                    return 2
                return 3
        """)


def test_blank_line_drift(tmp_path):
    write(tmp_path, "m.py", "a = 1\n\n\nb = 2\nc = 3\n")
    report = apply_blocks(tmp_path, [block("m.py", "a = 1\nb = 2\n", "a = 10\nb = 20\n")])
    assert report.ok, report.feedback()
    assert (tmp_path / "m.py").read_text() == "a = 10\nb = 20\nc = 3\n"


def test_elision_pairs_pieces_in_order(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(20))
    write(tmp_path, "m.py", f"def f():\n    start = 0\n{body}    return start\n")
    report = apply_blocks(
        tmp_path,
        [
            block(
                "m.py",
                """\
        def f():
            start = 0
            ...
            return start
        """,
                """\
        def f():
            start = 1
            ...
            return start + 1
        """,
            )
        ],
    )
    assert report.ok, report.feedback()
    text = (tmp_path / "m.py").read_text()
    assert "start = 1\n" in text and "return start + 1\n" in text and "x19 = 19" in text


def test_literal_ellipsis_matches_before_elision(tmp_path):
    write(tmp_path, "p.py", "class P:\n    def f(self) -> int:\n        ...\n")
    report = apply_blocks(
        tmp_path,
        [block("p.py", "    def f(self) -> int:\n        ...\n", "    def f(self) -> str:\n        ...\n")],
    )
    assert report.ok and "-> str" in (tmp_path / "p.py").read_text()


def test_ambiguous_match_is_refused_with_candidates(tmp_path):
    original = "def a():\n    return None\n\ndef b():\n    return None\n"
    write(tmp_path, "m.py", original)
    report = apply_blocks(tmp_path, [block("m.py", "    return None\n", "    return 0\n")])
    assert not report.ok
    failure = report.failures[0]
    assert failure.reason.startswith("2 matches (ambiguous) at lines 2, 5")
    assert "2 |     return None" in failure.closest and "5 |     return None" in failure.closest
    assert (tmp_path / "m.py").read_text() == original


def test_no_match_shows_closest_lines_and_other_blocks_apply(tmp_path):
    write(tmp_path, "m.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n")
    report = apply_blocks(
        tmp_path,
        [
            block("m.py", "def sub(a, b):\n    return a - c\n", "def sub(a, b):\n    return b - a\n"),
            block("m.py", "    return a + b\n", "    return b + a\n"),
        ],
    )
    assert report.applied == [1]
    failure = report.failures[0]
    assert failure.index == 0 and failure.reason == "no match"
    assert "5 | def sub(a, b):" in failure.closest
    feedback = report.feedback()
    assert "Applied 1 of 2 edit blocks (blocks: 2)" in feedback
    assert "Block 1 (m.py) failed: no match" in feedback
    assert "return b + a" in (tmp_path / "m.py").read_text()


def test_crlf_and_missing_final_newline_are_preserved(tmp_path):
    (tmp_path / "w.txt").write_bytes(b"one\r\ntwo\r\nthree")
    report = apply_blocks(tmp_path, [block("w.txt", "two\n", "2\n")])
    assert report.ok
    assert (tmp_path / "w.txt").read_bytes() == b"one\r\n2\r\nthree"


# ---------------------------------------------------------------- files


def test_create_and_delete_files(tmp_path):
    write(tmp_path, "old.py", "x = 1\n")
    report = apply_blocks(
        tmp_path,
        [
            block("new/pkg/mod.py", "", "y = 2\n"),
            block("old.py", "", ""),
            block("missing.py", "", ""),
            block("old2.py", "x\n", "y\n"),
        ],
    )
    assert (tmp_path / "new/pkg/mod.py").read_text() == "y = 2\n"
    assert not (tmp_path / "old.py").exists()
    assert sorted(report.changed) == ["new/pkg/mod.py", "old.py"]
    reasons = {f.path: f.reason for f in report.failures}
    assert reasons["missing.py"].startswith("nothing to delete")
    assert reasons["old2.py"].startswith("file not found")


def test_empty_search_on_existing_file_is_refused(tmp_path):
    write(tmp_path, "a.py", "x = 1\n")
    report = apply_blocks(tmp_path, [block("a.py", "", "y = 2\n")])
    assert "already exists" in report.failures[0].reason
    assert (tmp_path / "a.py").read_text() == "x = 1\n"


def test_paths_that_leave_the_repository_are_refused(tmp_path):
    root, outside = tmp_path / "repo", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.py").write_text("x = 1\n")
    os.symlink(outside, root / "link")
    os.symlink(outside / "secret.py", root / "alias.py")
    blocks = [
        block("../outside/secret.py", "x = 1\n", "x = 2\n"),
        block(str(outside / "secret.py"), "x = 1\n", "x = 2\n"),
        block("link/secret.py", "x = 1\n", "x = 2\n"),
        block("alias.py", "x = 1\n", "x = 2\n"),
        block("link/created.py", "", "x = 2\n"),
        block(".git/config", "", "[core]\n"),
        block("a/../../outside/secret.py", "x = 1\n", "x = 2\n"),
    ]
    report = apply_blocks(root, blocks)
    assert report.applied == [] and len(report.failures) == len(blocks)
    assert all("outside" in f.reason or "absolute" in f.reason or ".git" in f.reason for f in report.failures)
    assert (outside / "secret.py").read_text() == "x = 1\n"
    assert not (outside / "created.py").exists() and not (root / ".git").exists()


def test_symlink_inside_the_repository_is_followed(tmp_path):
    write(tmp_path, "real.py", "x = 1\n")
    os.symlink(tmp_path / "real.py", tmp_path / "alias.py")
    report = apply_blocks(tmp_path, [block("alias.py", "x = 1\n", "x = 2\n")])
    assert report.ok and report.changed == ["real.py"]
    assert (tmp_path / "alias.py").is_symlink() and (tmp_path / "real.py").read_text() == "x = 2\n"


def test_binary_files_are_refused(tmp_path):
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    (tmp_path / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    report = apply_blocks(tmp_path, [block("img.png", "PNG\n", "x\n"), block("latin.txt", "caf\n", "x\n")])
    assert [f.reason for f in report.failures] == ["binary file", "binary file (not UTF-8 text)"]


# ---------------------------------------------------------------- syntax gate


def test_syntax_gate_rolls_back_only_the_breaking_block(tmp_path):
    write(tmp_path, "m.py", "def f():\n    return 1\n\n\ndef g():\n    return 2\n")
    write(tmp_path, "other.py", "z = 0\n")
    report = apply_blocks(
        tmp_path,
        [
            block("m.py", "    return 1\n", "    return (1\n"),
            block("m.py", "    return 2\n", "    return 3\n"),
            block("other.py", "z = 0\n", "z = 1\n"),
        ],
    )
    assert report.applied == [1, 2]
    failure = report.failures[0]
    assert failure.index == 0 and failure.reason.startswith("syntax error at line 2")
    assert "return (1" in failure.closest
    assert (tmp_path / "m.py").read_text() == "def f():\n    return 1\n\n\ndef g():\n    return 3\n"
    assert (tmp_path / "other.py").read_text() == "z = 1\n"


def test_syntax_gate_accepts_blocks_that_only_parse_together(tmp_path):
    write(tmp_path, "m.py", "x = 1\ny = 2\n")
    report = apply_blocks(tmp_path, [block("m.py", "x = 1\n", "x = [1,\n"), block("m.py", "y = 2\n", "2]\n")])
    assert report.ok, report.feedback()


def test_syntax_gate_uses_tree_sitter_for_javascript(tmp_path):
    write(tmp_path, "app.js", "function f(a) {\n  return a + 1;\n}\n")
    report = apply_blocks(tmp_path, [block("app.js", "  return a + 1;\n}\n", "  return a + 1;\n")])
    assert "syntax error" in report.failures[0].reason
    assert (tmp_path / "app.js").read_text().endswith("}\n")
    assert apply_blocks(tmp_path, [block("app.js", "a + 1", "a + 2")]).ok


def test_syntax_gate_skips_files_broken_before_and_new_files_are_checked(tmp_path):
    write(tmp_path, "broken.py", "def f(:\n    pass\n")
    report = apply_blocks(
        tmp_path, [block("broken.py", "    pass\n", "    return\n"), block("n.py", "", "def (\n")]
    )
    assert report.applied == [0]
    assert report.failures[0].path == "n.py" and "syntax error at line 1" in report.failures[0].reason
    assert not (tmp_path / "n.py").exists()
    assert apply_blocks(tmp_path, [block("n.py", "", "def (\n")], syntax_check=False).ok
