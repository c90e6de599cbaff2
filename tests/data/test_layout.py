"""Reading DomainNet-layout folders into a manifest, and the reader's errors."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from lipsum_ft.data.errors import DataInputError
from lipsum_ft.data.layout import MANIFEST_COLUMNS, read_classnames, read_manifest
from lipsum_ft.digit_domains import CLASS_NAMES


def test_manifest_lists_every_split_file_line(digit_tree):
    manifest = read_manifest(digit_tree)
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    lines = sum(
        len(digit_tree.split_path(d, s).read_text().splitlines())
        for d in digit_tree.domains
        for s in digit_tree.splits
    )
    assert len(manifest) == lines == 140  # 70 digits x 2 domains
    assert set(manifest["domain"]) == {"photo", "sketch"}
    assert set(manifest["split"]) == {"train", "test"}
    first = manifest.iloc[0]
    assert first["path"].startswith(str(digit_tree.root))
    assert first["class_name"] == CLASS_NAMES[first["label"]]
    assert first["source"].endswith(f"{first['domain']}_{first['split']}.txt:1")


def test_classnames_from_file_and_from_folders_agree_in_order(digit_tree):
    from_file = read_classnames(digit_tree)
    from_folders = read_classnames(replace(digit_tree, classnames_from="folders"))
    assert from_file == list(CLASS_NAMES)
    assert from_folders == sorted(CLASS_NAMES)  # DomainNet convention: sorted folder names


def test_missing_root_is_named(tmp_path, digit_tree):
    layout = replace(digit_tree, root=tmp_path / "nowhere")
    with pytest.raises(DataInputError, match="nowhere.*does not exist"):
        read_manifest(layout)


def test_missing_split_file_is_named(digit_tree):
    digit_tree.split_path("sketch", "test").unlink()
    with pytest.raises(DataInputError, match=r"sketch_test\.txt is missing"):
        read_manifest(digit_tree)


def test_malformed_line_names_file_and_line(digit_tree):
    split_file = digit_tree.split_path("photo", "train")
    lines = split_file.read_text().splitlines()
    lines[2] = lines[2].split()[0] + " seven"
    split_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataInputError, match=r"photo_train\.txt:3: label 'seven' is not an integer"):
        read_manifest(digit_tree)


def _append_line(layout, line: str) -> int:
    """Append ``line`` to photo_train.txt; return its 1-based line number."""
    path = layout.split_path("photo", "train")
    lines = path.read_text().splitlines() + [line]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("../outside/zero/x.png", "leaves the dataset root"),
        ("photo/../../outside/zero/x.png", "leaves the dataset root"),
        ("/etc/zero/passwd", "is absolute"),
    ],
)
def test_paths_outside_the_root_are_refused_with_the_line(digit_tree, relative, reason):
    number = _append_line(digit_tree, f"{relative} 0")
    with pytest.raises(DataInputError, match=rf"photo_train\.txt:{number}: path .* {reason}"):
        read_manifest(digit_tree)


def test_symlink_pointing_out_of_the_root_is_refused(digit_tree, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"not yours")
    (digit_tree.root / "photo" / "zero" / "link.png").symlink_to(outside / "secret.png")
    number = _append_line(digit_tree, "photo/zero/link.png 0")
    with pytest.raises(DataInputError, match=rf"photo_train\.txt:{number}: .*outside the dataset root"):
        read_manifest(digit_tree)


def test_manifest_paths_are_normalised_so_a_respelt_line_is_a_repeat(digit_tree, caplog):
    first_line = digit_tree.split_path("photo", "train").read_text().splitlines()[0]
    first, label = first_line.split()
    domain, folder, name = first.split("/")
    before = read_manifest(digit_tree)
    number = _append_line(digit_tree, f"{domain}/zero/../{folder}/./{name} {label}")
    with caplog.at_level("WARNING", logger="lipsum_ft.data.layout"):
        manifest = read_manifest(digit_tree)
    assert len(manifest) == len(before)  # the same file, the same label: listed once
    assert f"line {number} (= line 1)" in caplog.text
    photo_train = manifest[(manifest["split"] == "train") & (manifest["domain"] == "photo")]
    assert photo_train["path"].iloc[0] == str(digit_tree.root / first)
    other = (int(label) + 1) % 10
    _append_line(digit_tree, f"{domain}/./{folder}/{name} {other}")  # the same file, another label
    conflict = rf"photo_train\.txt:{number + 1}: .* is labelled {other}, but line 1 gave the same file label"
    with pytest.raises(DataInputError, match=rf"{conflict} {label}$"):
        read_manifest(digit_tree)


def test_real_paths_equal_os_realpath_with_linked_files_folders_and_missing_files(tmp_path):
    from lipsum_ft.data.layout import RealPaths

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    root = tmp_path / "root"
    (root / "real" / "cat").mkdir(parents=True)
    (root / "real" / "cat" / "a.png").write_bytes(b"x")
    (root / "real" / "cat" / "link.png").symlink_to(outside / "secret.png")  # a file link out of the root
    (root / "real" / "dog").symlink_to(outside, target_is_directory=True)  # a folder link out of the root
    paths = [
        root / "real" / "cat" / "a.png",
        root / "real" / "cat" / "link.png",
        root / "real" / "dog" / "secret.png",
        root / "real" / "cat" / "missing.png",
        root / "nowhere" / "b.png",
    ]
    realpath = RealPaths()
    for path in [*paths, *paths]:  # the second pass answers from the folder cache
        assert realpath(str(path)) == os.path.realpath(path)
    assert realpath(str(paths[1])) == str(outside.resolve() / "secret.png")
