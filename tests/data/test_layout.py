"""Reading DomainNet-layout folders into a manifest, and the reader's errors."""

from __future__ import annotations

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
    assert len(manifest) == lines == 80  # 40 digits x 2 domains
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
