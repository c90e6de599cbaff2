"""Split files with every quirk the README's "Data" section names, fuzzed: the reader returns exactly
what a strict reader written here returns, or stops with a ``DataInputError`` naming the file and the
first bad line, never another exception and never a wrong label.
"""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lipsum_ft.data.errors import DataInputError
from lipsum_ft.data.layout import FolderLayout, read_split_file

FIELD = re.compile(r"[ \t]*(.*?)[ \t]+([^ \t]+)[ \t]*")


def strict_read(raw: bytes, root: str) -> list[tuple[str, int, str]] | int:
    """The rows (path, label, class folder) of a split file, or the number of its first bad line.

    Written independently of the reader, line by line on bytes: UTF-8 with an optional BOM at the
    start; LF or CRLF; no control characters but tab (Unicode category Cc), no line/paragraph
    separator, no BOM after the start; '<path> <label>' split at the last run of spaces/tabs; the
    label ASCII digits; the path relative, inside the root, with a class folder; a repeated file with
    the same label dropped, with another label refused.
    """
    raw = raw.removeprefix(codecs.BOM_UTF8)
    pieces = raw.split(b"\n")
    rows, first_label = [], {}
    for number, piece in enumerate(pieces, start=1):
        terminated = number < len(pieces)
        if terminated and piece.endswith(b"\r"):
            piece = piece[:-1]
        try:
            line = piece.decode("utf-8")
        except UnicodeDecodeError:
            return number
        if any((unicodedata.category(c) == "Cc" and c != "\t") or c in "\u2028\u2029\ufeff" for c in line):
            return number
        if line.strip(" \t") == "":
            continue
        match = FIELD.fullmatch(line)
        if not match or not re.fullmatch(r"[0-9]+", match.group(2)):
            return number
        relative, label = match.group(1), int(match.group(2))
        if relative.startswith("/"):
            return number
        image = os.path.normpath(os.path.join(root, relative))
        parts = os.path.relpath(image, root).split(os.sep)
        if parts[0] == ".." or len(parts) < 2:
            return number
        if image in first_label:
            if first_label[image] != label:
                return number
            continue
        first_label[image] = label
        rows.append((image, label, parts[-2]))
    return rows


def valid_line(folder: str, name: str, label: int, lead: str, sep: str, trail: str, zeros: str) -> str:
    return f"{lead}photo/{folder}/{name}{sep}{zeros}{label}{trail}"


SPACES = st.sampled_from(["", " ", "\t", " \t ", "  "])
VALID = st.builds(
    valid_line,
    folder=st.sampled_from(["zero", "one", "two words"]),
    name=st.sampled_from(["a.png", "b.png", "c d.png"]),
    label=st.integers(0, 12),
    lead=SPACES,
    sep=st.sampled_from([" ", "\t", "  ", " \t\t"]),
    trail=SPACES,
    zeros=st.sampled_from(["", "", "0"]),
).map(str.encode)
QUIRKY = st.sampled_from(
    [
        b"photo/zero/a.png 3.0",
        b"photo/zero/a.png +3",
        b"photo/zero/a.png -1",
        "photo/zero/a.png \u0663".encode(),  # an Arabic-Indic three: int() would take it
        b"photo/zero/a.png 3_0",  # int() would read 30
        b"photo/zero/a.png",
        b"a.png 3",
        b"/etc/zero/a.png 3",
        b"../outside/zero/a.png 3",
        b"photo/./zero//a.png 3",
        b"photo/zero/../one/b.png 4",
        b"photo/ze\x0cro/a.png 3",
        b"photo/zero/a.png\x003",
        "photo/zero/a.png\u20283".encode(),
        "photo/zero/a.png\xa03".encode(),  # a no-break space is part of a path, not a separator
        b"\xef\xbb\xbfphoto/zero/a.png 3",  # a BOM after the start of the file
        b"photo/zero/a.png 3\r",  # with the LF below: CR CR LF
        b"   ",
        b"\t",
        b"",
    ]
)
GARBAGE = st.binary(max_size=12) | st.text(max_size=8).map(str.encode)


@st.composite
def split_files(draw) -> bytes:
    """A file of valid lines, repeats of earlier lines (with their label or another), quirky lines and
    garbage; each line ended by LF or CRLF, the last maybe by nothing, the file maybe after a BOM."""
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["valid", "valid", "valid", "repeat", "quirk", "quirk", "garbage"]))
        if kind == "repeat" and lines:
            line = draw(st.sampled_from(lines))
            if draw(st.booleans()):
                line = re.sub(rb"[0-9]+(\s*)$", lambda m: b"7" + m.group(1), line)
        elif kind == "quirk":
            line = draw(QUIRKY)
        elif kind == "garbage":
            line = draw(GARBAGE)
        else:
            line = draw(VALID)
        lines.append(line)
    ends = [draw(st.sampled_from([b"\n", b"\r\n"])) for _ in lines]
    if lines and draw(st.booleans()):
        ends[-1] = b""
    bom = codecs.BOM_UTF8 if draw(st.booleans()) else b""
    return bom + b"".join(line + end for line, end in zip(lines, ends, strict=True))


def read(tmp_path: Path, raw: bytes):
    layout = FolderLayout(root=tmp_path, domains=("photo",), splits=("train",))
    layout.split_path("photo", "train").write_bytes(raw)
    return layout, read_split_file(layout, "photo", "train")


def check_against_the_strict_reader(tmp_path: Path, raw: bytes) -> None:
    expected = strict_read(raw, str(tmp_path))
    split_file = tmp_path / "photo_train.txt"
    if isinstance(expected, int):
        with pytest.raises(DataInputError) as caught:
            read(tmp_path, raw)
        assert str(caught.value).startswith(f"{split_file}:{expected}: "), (raw, str(caught.value))
        return
    _, rows = read(tmp_path, raw)
    got = list(zip(rows["path"], rows["label"], rows["class_name"], strict=True))
    assert got == expected, raw


@settings(
    max_examples=200,
    deadline=None,
    database=None,  # no .hypothesis folder in the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(raw=split_files())
@example(raw=b"\xef\xbb\xbfphoto/zero/a.png\t3\r\nphoto/one/b.png 4  \r\n")
@example(raw=b"photo/zero/a.png 3\nphoto/zero/a.png 3.0\n")
@example(raw=b"photo/zero/a.png 3\nphoto/one/\xff.png 4\n")
@example(raw=b"photo/zero/a.png 3\nphoto/zero/a.png 5\n")
def test_fuzzed_split_files_parse_as_the_strict_reader_or_fail_naming_file_and_line(tmp_path, raw):
    check_against_the_strict_reader(tmp_path, raw)


A, B = "photo/zero/a.png", "photo/one/b.png"


@pytest.mark.parametrize(
    ("raw", "rows"),
    [
        (b"photo/zero/a.png 3\r\nphoto/one/b.png 4\r\n", [(A, 3), (B, 4)]),  # CRLF
        (codecs.BOM_UTF8 + b"photo/zero/a.png 3\n", [(A, 3)]),  # a BOM at the start
        (b"photo/zero/a.png\t3\n\tphoto/one/b.png \t 4 \t\n", [(A, 3), (B, 4)]),  # tabs, spaces
        (b"photo/zero/a.png 3\n\nphoto/zero/a.png 3\n", [(A, 3)]),  # a repeat, dropped
        (b"photo/zero/a.png 007", [(A, 7)]),  # leading zeros; no line end at the end
    ],
)
def test_accepted_quirks(tmp_path, raw, rows):
    _, frame = read(tmp_path, raw)
    assert list(zip(frame["path"], frame["label"], strict=True)) == [(str(tmp_path / p), k) for p, k in rows]
    assert frame["source"].tolist()[0] == f"{tmp_path / 'photo_train.txt'}:1"


@pytest.mark.parametrize(
    ("raw", "line", "reason"),
    [
        (b"photo/zero/a.png 3\nphoto/one/b.png 3.0\n", 2, r"label '3\.0' is not an integer"),
        ("photo/zero/a.png \u0663\n".encode(), 1, "label '\u0663' is not an integer"),
        (b"photo/zero/a.png 3_0\n", 1, "label '3_0' is not an integer"),
        (
            b"photo/zero/a.png 3\nphoto/one/b.png 4\nphoto/\xff\xfe/c.png 1\n",
            3,
            r"not UTF-8 text \(byte 0xff",
        ),
        (b"photo/zero/a.png 3\nphoto/zero/a.png 5\n", 2, "labelled 5, but line 1 gave the same file label 3"),
        (b"photo/zero/a.png 3\nphoto/one\x00/b.png 4\n", 2, r"character '\\x00' has no place"),
        (b"photo/zero/a.png 3\rphoto/one/b.png 4\n", 1, r"character '\\r' has no place"),
        (b"photo/zero/a.png 3\n" + codecs.BOM_UTF8 + b"photo/one/b.png 4\n", 2, r"character '\\ufeff'"),
        (b"photo/zero/a.png 3\nphoto/x 3.0\nphoto/\xff 1\n", 2, r"label '3\.0'"),  # the first bad line
    ],
)
def test_refused_quirks_name_the_file_and_the_line(tmp_path, raw, line, reason):
    with pytest.raises(
        DataInputError, match=rf"^{re.escape(str(tmp_path))}/photo_train\.txt:{line}: .*{reason}"
    ):
        read(tmp_path, raw)
