import os
import textwrap

import pytest

from treefix.tools.view import ViewError, outline, view


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg/long.py").write_text("".join(f"x{i} = {i}\n" for i in range(1, 251)))
    (root / "pkg/shapes.py").write_text(
        textwrap.dedent(
            """\
            class Shape:
                def area(self) -> float:
                    raise NotImplementedError


            class Square(Shape):
                def __init__(self, side: float) -> None:
                    self.side = side

                def area(self) -> float:
                    return self.side**2


            def largest(shapes: list[Shape]) -> Shape:
                return max(shapes, key=lambda s: s.area())
            """
        )
    )
    return root


def test_window_with_line_numbers_and_hints(repo):
    text = view(repo, "pkg/long.py", start=101, window=50)
    lines = text.splitlines()
    assert lines[0] == "pkg/long.py (lines 101-150 of 250)"
    assert lines[1] == "101 | x101 = 101" and lines[50] == "150 | x150 = 150"
    assert lines[-1] == "[100 lines above; 100 lines below: view from line 151]"
    assert (
        view(repo, "pkg/long.py", start=240, end=300).splitlines()[0] == "pkg/long.py (lines 240-250 of 250)"
    )
    assert "(lines 1-100 of 250)" in view(repo, "pkg/long.py")


def test_outline_lists_signatures_with_ranges(repo):
    text = outline(repo, "pkg/shapes.py")
    assert text.splitlines() == [
        "pkg/shapes.py (15 lines, python): 6 definitions",
        "1-3│class Shape:",
        "2-3│    def area(self) -> float:",
        "6-11│class Square(Shape):",
        "7-8│    def __init__(self, side: float) -> None:",
        "10-11│    def area(self) -> float:",
        "14-15│def largest(shapes: list[Shape]) -> Shape:",
    ]


def test_errors_are_messages_for_the_model(repo, tmp_path):
    (tmp_path / "secret.txt").write_text("s")
    os.symlink(tmp_path / "secret.txt", repo / "leak.txt")
    with pytest.raises(ViewError, match="outside the repository"):
        view(repo, "../secret.txt")
    with pytest.raises(ViewError, match="symlink"):
        view(repo, "leak.txt")
    with pytest.raises(ViewError, match="Did you mean: pkg/shapes.py"):
        view(repo, "shapes.py")
    with pytest.raises(ViewError, match="is a directory; it holds: long.py, shapes.py"):
        view(repo, "pkg")
    (repo / "blob.bin").write_bytes(b"\0\1\2")
    with pytest.raises(ViewError, match="binary"):
        view(repo, "blob.bin")


def test_outline_of_unsupported_file(repo):
    (repo / "notes.md").write_text("# Notes\n")
    assert (
        outline(repo, "notes.md")
        == "notes.md: no outline for this file type (1 lines); view it in windows instead."
    )
