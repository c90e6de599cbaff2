"""The Great Expectations suite over the manifest: a valid tree passes, each bad input is named."""

from __future__ import annotations

import os
import re

import pytest

from lipsum_ft.data.layout import read_classnames, read_manifest
from lipsum_ft.data.validation import ManifestValidationError, ValidationRules, validate_manifest


def rules_for(layout, **overrides) -> ValidationRules:
    settings = dict(
        classnames=tuple(read_classnames(layout)),
        domains=layout.domains,
        splits=layout.splits,
        image_size=32,
        min_rows_per_domain_split=2,
    )
    settings.update(overrides)
    return ValidationRules(**settings)


def failure_message(layout) -> str:
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(read_manifest(layout), rules_for(layout), progress=False)
    assert caught.value.report["success"] is False
    return str(caught.value)


def edit_line(layout, domain: str, split: str, number: int, edit) -> str:
    """Apply ``edit`` to line ``number`` (1-based) of a split file; return the original line."""
    path = layout.split_path(domain, split)
    lines = path.read_text().splitlines()
    original = lines[number - 1]
    lines[number - 1] = edit(original)
    path.write_text("\n".join(lines) + "\n")
    return original


def test_valid_tree_passes_and_reports_every_expectation(digit_tree):
    report = validate_manifest(read_manifest(digit_tree), rules_for(digit_tree), progress=False)
    assert report["success"] is True
    assert len(report["results"]) >= 15
    assert all(item["success"] for item in report["results"])


def test_line_whose_file_is_missing(digit_tree):
    original = edit_line(digit_tree, "photo", "train", 4, lambda line: line)
    (digit_tree.root / original.split()[0]).unlink()
    message = failure_message(digit_tree)
    assert "every listed file exists" in message
    assert re.search(r"photo_train\.txt:4 -> file_exists=False", message)


def test_label_out_of_range(digit_tree):
    edit_line(digit_tree, "sketch", "test", 2, lambda line: line.split()[0] + " 42")
    message = failure_message(digit_tree)
    assert "labels lie in [0, 10)" in message
    assert re.search(r"sketch_test\.txt:2 -> label=42", message)


def test_label_disagreeing_with_class_folder(digit_tree):
    original = edit_line(digit_tree, "photo", "test", 1, lambda line: line)
    wrong = (int(original.split()[1]) + 1) % 10
    edit_line(digit_tree, "photo", "test", 1, lambda line: f"{line.split()[0]} {wrong}")
    message = failure_message(digit_tree)
    assert "each label matches its class folder" in message
    assert "photo_test.txt:1" in message


def test_class_missing_from_one_domain(digit_tree):
    for split in digit_tree.splits:
        path = digit_tree.split_path("sketch", split)
        kept = [line for line in path.read_text().splitlines() if "/three/" not in line]
        path.write_text("\n".join(kept) + "\n")
    message = failure_message(digit_tree)
    assert "sketch/train (domain/split) has every class: missing 'three'" in message
    assert "sketch/test (domain/split) has every class: missing 'three'" in message


def test_class_missing_from_one_split_of_one_domain(digit_tree):
    # the domain as a whole still has every class, so a per-domain rule would pass this
    path = digit_tree.split_path("photo", "test")
    kept = [line for line in path.read_text().splitlines() if "/seven/" not in line]
    path.write_text("\n".join(kept) + "\n")
    message = failure_message(digit_tree)
    assert "photo/test (domain/split) has every class: missing 'seven'" in message
    assert "photo/train" not in message and "sketch/" not in message


def test_corrupt_png(digit_tree):
    original = edit_line(digit_tree, "sketch", "train", 3, lambda line: line)
    (digit_tree.root / original.split()[0]).write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    message = failure_message(digit_tree)
    path = digit_tree.root / original.split()[0]
    # the rule names the file, its split-file line and PIL's own message, not a size
    assert re.search(
        rf"sampled files decode .*sketch_train\.txt:3 -> decode_error={re.escape(str(path))}: "
        r"UnidentifiedImageError: cannot identify image file",
        message,
    )
    assert "decoded_width" not in message


def test_path_spelled_two_ways_in_two_splits(digit_tree):
    train_line = digit_tree.split_path("photo", "train").read_text().splitlines()[0]
    relative, label = train_line.split()
    domain, folder, name = relative.split("/")
    other = "zero" if folder != "zero" else "one"
    test_file = digit_tree.split_path("photo", "test")
    test_file.write_text(test_file.read_text() + f"{domain}/{other}/../{folder}/{name} {label}\n")
    message = failure_message(digit_tree)
    assert "no path is in two splits" in message
    assert "photo_train.txt:1" in message and "photo_test.txt:" in message


def test_path_in_two_splits(digit_tree):
    leaked = digit_tree.split_path("photo", "train").read_text().splitlines()[0]
    test_file = digit_tree.split_path("photo", "test")
    test_file.write_text(test_file.read_text() + leaked + "\n")
    message = failure_message(digit_tree)
    assert "no path is in two splits" in message
    assert "photo_train.txt:1" in message and "photo_test.txt:" in message


def test_too_few_rows_in_a_domain_split(digit_tree):
    with pytest.raises(ManifestValidationError, match=r"at least 1000 rows"):
        validate_manifest(
            read_manifest(digit_tree), rules_for(digit_tree, min_rows_per_domain_split=1000), progress=False
        )


def test_files_exist_agrees_with_isfile_for_files_folders_links_and_missing_paths(tmp_path):
    from lipsum_ft.data.validation import files_exist

    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "a.jpg").write_bytes(b"x")
    (tmp_path / "cls" / "sub").mkdir()
    (tmp_path / "cls" / "link.jpg").symlink_to(tmp_path / "cls" / "a.jpg")
    (tmp_path / "cls" / "broken.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tmp_path / "plain").write_bytes(b"x")
    names = [
        "cls/a.jpg",
        "cls/b.jpg",
        "cls/sub",
        "cls/link.jpg",
        "cls/broken.jpg",
        "gone/a.jpg",
        "plain/a.jpg",
    ]
    paths = [str(tmp_path / n) for n in names] + [str(tmp_path / "cls") + "/", str(tmp_path / "cls/a.jpg")]
    assert files_exist(paths) == [os.path.isfile(p) for p in paths]
    assert files_exist(paths) == [True, False, False, True, False, False, False, False, True]


def test_files_exist_finds_a_bare_file_name_in_the_working_folder(tmp_path, monkeypatch):
    """A path with no folder part is looked up in the current folder, as ``os.path.isfile`` does."""
    from lipsum_ft.data.validation import files_exist

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.jpg").write_bytes(b"x")
    assert files_exist(["a.jpg", "b.jpg"]) == [True, False]
