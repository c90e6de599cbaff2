"""Each rule of the manifest suite proven alone: a manifest that breaks exactly that rule.

The failing set must be exactly the broken rule, so removing any rule from the suite makes its test
fail (not only a message check). Two rules are implied by others when broken the plain way; their
fixtures break the smallest set that contains them:
- a path in two splits is also listed twice (spelled two ways, through a symlink, it breaks alone);
- a label outside [0, K) with a known class name also disagrees with its class folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from lipsum_ft.data.validation import (
    ManifestValidationError,
    ValidationRules,
    build_suite,
    decode_check,
    validate_manifest,
    validation_frame,
)

CLASSES = ("cat", "dog")
DOMAINS = ("photo", "sketch")
SPLITS = ("train", "test")
RULES = ValidationRules(
    classnames=CLASSES, domains=DOMAINS, splits=SPLITS, image_size=8, min_rows_per_domain_split=2
)
PARTIAL = ValidationRules(
    classnames=CLASSES,
    domains=DOMAINS,
    splits=SPLITS,
    image_size=8,
    min_rows_per_domain_split=2,
    partial_domains=("sketch",),
)
FILES_EXIST = "every listed file exists"
UNIQUE = "every path is listed once"
TWO_SPLITS = "no path is in two splits"
LABEL_RANGE = "labels lie in [0, 2)"
LABEL_MATCH = "each label matches its class folder (class_name <-> label one-to-one)"
KNOWN_CLASS = "class folders are known class names"
SIZE = "sampled files decode as 8x8 images"
DECODES = "sampled files decode (file: decoder's error)"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """Two domains x two splits x two classes x two 8x8 PNGs (4 rows per domain/split), all valid."""
    root = tmp_path_factory.mktemp("rules")
    rows = []
    for domain in DOMAINS:
        for split in SPLITS:
            for label, name in enumerate(CLASSES):
                for i in range(2):
                    path = root / domain / name / f"{split}{i}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.new("RGB", (8, 8), (40 * i, 90, 200)).save(path)
                    rows.append(
                        (str(path), label, name, domain, split, f"{domain}_{split}.txt:{len(rows) + 1}")
                    )
    for i in range(2):  # valid images no row lists yet
        Image.new("RGB", (8, 8)).save(root / f"extra{i}.png")
    small = root / "small.png"  # decodes, but 4x4
    Image.new("RGB", (4, 4)).save(small)
    Image.new("RGB", (4, 8)).save(root / "narrow.png")  # only the width is wrong (below 8)
    Image.new("RGB", (8, 16)).save(root / "tall.png")  # only the height is wrong (above 8)
    Image.new("RGB", (1, 1)).save(root / "dot.png")  # the smallest image there is
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    (root / "linked").symlink_to(root / "photo", target_is_directory=True)  # photo under a second name
    manifest = pd.DataFrame(rows, columns=["path", "label", "class_name", "domain", "split", "source"])
    return root, manifest


def failed_rules(manifest: pd.DataFrame, rules: ValidationRules = RULES) -> set[str]:
    try:
        validate_manifest(manifest, rules, progress=False)
    except ManifestValidationError as error:
        return {
            item["expectation_config"]["meta"]["rule"]
            for item in error.report["results"]
            if not item["success"]
        }
    return set()


def where(manifest: pd.DataFrame, domain: str, split: str) -> pd.Index:
    return manifest.index[(manifest["domain"] == domain) & (manifest["split"] == split)]


def edit(row: int, **values) -> Callable[[Path, pd.DataFrame], pd.DataFrame]:
    def apply(root: Path, manifest: pd.DataFrame) -> pd.DataFrame:
        for column, value in values.items():
            manifest[column] = manifest[column].astype(object)
            manifest.at[row, column] = value(root) if callable(value) else value
        return manifest

    return apply


def add_rows(
    count: int = 1, new_files: bool = True, **values
) -> Callable[[Path, pd.DataFrame], pd.DataFrame]:
    """``count`` copies of row 0 with ``values`` set; ``new_files``: each lists an unlisted valid image."""

    def apply(root: Path, manifest: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for i in range(count):
            row = manifest.iloc[0].to_dict() | {"source": f"extra.txt:{i + 1}"} | values
            if new_files:
                row["path"] = str(root / f"extra{i}.png")
            rows.append(row)
        return pd.concat([manifest, pd.DataFrame(rows)], ignore_index=True)

    return apply


def drop_class(domain: str, split: str, name: str) -> Callable[[Path, pd.DataFrame], pd.DataFrame]:
    def apply(root: Path, manifest: pd.DataFrame) -> pd.DataFrame:
        gone = (
            (manifest["domain"] == domain) & (manifest["split"] == split) & (manifest["class_name"] == name)
        )
        return manifest[~gone].reset_index(drop=True)

    return apply


def drop_domain_split(domain: str, split: str) -> Callable[[Path, pd.DataFrame], pd.DataFrame]:
    def apply(root: Path, manifest: pd.DataFrame) -> pd.DataFrame:
        return manifest.drop(where(manifest, domain, split)).reset_index(drop=True)

    return apply


def linked_copy_in_test(root: Path, manifest: pd.DataFrame) -> pd.DataFrame:
    """Row 0's file listed again in the test split, through the ``linked`` symlink to its domain folder."""
    row = manifest.iloc[0].to_dict() | {"split": "test", "source": "extra.txt:1"}
    row["path"] = row["path"].replace(str(root / "photo"), str(root / "linked"))
    return pd.concat([manifest, pd.DataFrame([row])], ignore_index=True)


def missing_file(root: Path) -> str:
    return str(root / "nowhere.png")


# one (breakage, the exact set of rules it must fail, the rules) per rule; row 0 is photo/train/cat
CASES = {
    "null class name": (
        edit(0, class_name=None),
        {"column class_name has no missing values", LABEL_MATCH},
        RULES,
    ),
    "null path": (edit(0, path=None), {"column path has no missing values", FILES_EXIST}, RULES),
    "null label": (edit(0, label=None), {"column label has no missing values", LABEL_MATCH}, RULES),
    "null split": (add_rows(1, split=None), {"column split has no missing values"}, RULES),
    "null domain": (add_rows(1, domain=None), {"column domain has no missing values"}, RULES),
    "label out of range": (edit(0, label=7), {LABEL_RANGE, LABEL_MATCH}, RULES),
    # the first label past the range: an off-by-one upper bound (K instead of K - 1) lets it through
    "label equal to K": (edit(0, label=2), {LABEL_RANGE, LABEL_MATCH}, RULES),
    # the label of an unknown class can only be -1 (agreeing) or a known one (disagreeing); in a
    # domain that must hold exactly the classes, the stray name also breaks that rule: use a partial one
    "unknown class name": (edit(8, class_name="cow", label=-1), {KNOWN_CLASS, LABEL_RANGE}, PARTIAL),
    "label of another class": (edit(0, label=1), {LABEL_MATCH}, RULES),
    "unknown split": (add_rows(2, split="val"), {"splits are among ['train', 'test']"}, RULES),
    "unknown domain": (add_rows(2, domain="quickdraw"), {"domains are among ['photo', 'sketch']"}, RULES),
    "path listed twice in one split": (add_rows(1, new_files=False), {UNIQUE}, RULES),
    "path in two splits": (add_rows(1, new_files=False, split="test"), {UNIQUE, TWO_SPLITS}, RULES),
    # two spellings of one file are two paths but one file: only the split rule sees it
    "file in two splits through a symlink": (linked_copy_in_test, {TWO_SPLITS}, RULES),
    # a missing file is reported once, by its own rule (not again as a file that does not decode)
    "missing file": (edit(0, path=missing_file), {FILES_EXIST}, RULES),
    "domain/split without rows": (
        drop_domain_split("sketch", "test"),
        # a required pair with no rows has none of the classes either
        {"every (domain, split) has rows", "sketch/test (domain/split) has every class"},
        RULES,
    ),
    "class missing from one split of a domain": (
        drop_class("sketch", "test", "dog"),
        {"sketch/test (domain/split) has every class"},
        RULES,
    ),
    "image of the wrong size": (edit(0, path=lambda r: str(r / "small.png")), {SIZE}, RULES),
    # one side wrong at a time: the width below the size, the height above it
    "image too narrow": (edit(0, path=lambda r: str(r / "narrow.png")), {SIZE}, RULES),
    "image too tall": (edit(0, path=lambda r: str(r / "tall.png")), {SIZE}, RULES),
    # a file that does not decode has no size: only the decode rule names it
    "file that does not decode": (edit(0, path=lambda r: str(r / "corrupt.png")), {DECODES}, RULES),
}


def test_the_unbroken_manifest_passes_every_rule(tree):
    root, manifest = tree
    assert failed_rules(manifest.copy()) == set()


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_breakage_fails_exactly_its_rules(tree, case):
    root, manifest = tree
    breakage, expected, rules = CASES[case]
    assert failed_rules(breakage(root, manifest.copy()), rules) == expected


def test_too_few_rows_in_one_domain_split_fails_the_row_count(tree):
    root, manifest = tree
    # photo/test keeps one image: photo's train split still has every class, but 1 < 2 rows
    keep = manifest.drop(where(manifest, "photo", "test")[1:]).reset_index(drop=True)
    assert failed_rules(keep) == {
        "every (domain, split) has at least 2 rows",
        "photo/test (domain/split) has every class",  # one image cannot hold every class
    }


def test_required_pairs_limit_the_pairs_that_must_have_rows(tree):
    root, manifest = tree
    dropped = drop_domain_split("sketch", "test")(root, manifest.copy())
    rules = ValidationRules(
        classnames=CLASSES,
        domains=DOMAINS,
        splits=SPLITS,
        image_size=8,
        min_rows_per_domain_split=2,
        required_pairs=("photo/train", "photo/test", "sketch/train"),
    )
    assert failed_rules(dropped, rules) == set()
    assert failed_rules(drop_domain_split("sketch", "train")(root, manifest.copy()), rules) == {
        "every (domain, split) has rows",
        "sketch/train (domain/split) has every class",
    }


def test_a_partial_domain_may_miss_classes(tree):
    root, manifest = tree
    without_dog = drop_class("sketch", "test", "dog")(root, manifest.copy())
    without_dog = drop_class("sketch", "train", "dog")(root, without_dog)
    assert failed_rules(without_dog, PARTIAL) == set()


def test_without_an_image_size_any_decodable_size_passes(tree):
    """``image_size=None`` only asks for a positive size: a 1x1 and an 8x16 image both pass."""
    root, manifest = tree
    manifest = edit(0, path=lambda r: str(r / "dot.png"))(root, manifest.copy())
    manifest = edit(1, path=lambda r: str(r / "tall.png"))(root, manifest)
    rules = ValidationRules(classnames=CLASSES, domains=DOMAINS, splits=SPLITS, min_rows_per_domain_split=2)
    report = validate_manifest(manifest, rules, progress=False)
    size_checks = [
        item["expectation_config"]
        for item in report["results"]
        if item["expectation_config"]["kwargs"].get("column") in ("decoded_width", "decoded_height")
    ]
    assert [c["meta"]["rule"] for c in size_checks] == ["sampled files have a positive size"] * 2


def test_decode_check_gives_minus_one_sizes_and_the_reason(tree):
    """(-1, -1, reason) for a non-path and for an undecodable file; the image's own size otherwise."""
    root, _ = tree
    corrupt = str(root / "corrupt.png")
    assert decode_check(None) == (-1, -1, "None: not a path")
    width, height, reason = decode_check(corrupt)
    assert (width, height) == (-1, -1)
    assert reason.startswith(f"{corrupt}: UnidentifiedImageError: ")
    assert decode_check(str(root / "tall.png")) == (8, 16, "")


def test_each_decoded_size_and_error_lands_on_its_own_row(tree):
    """A missing file is not decoded: the sizes and errors after it must not shift up a row."""
    root, manifest = tree
    names = ["nowhere.png", "narrow.png", "corrupt.png", "tall.png"]
    rows = manifest.head(4).copy()
    rows["path"] = [str(root / n) for n in names]
    frame = validation_frame(rows, RULES, progress=False)
    nan = float("nan")
    assert frame["file_exists"].tolist() == [False, True, True, True]
    pd.testing.assert_series_equal(
        frame["decoded_width"], pd.Series([nan, 4.0, nan, 8.0], name="decoded_width")
    )
    pd.testing.assert_series_equal(
        frame["decoded_height"], pd.Series([nan, 8.0, nan, 16.0], name="decoded_height")
    )
    errors = frame["decode_error"].tolist()
    # rows not decoded (the missing file) hold "" like the files that decoded, not NaN
    assert errors[0] == errors[1] == errors[3] == ""
    assert errors[2].startswith(f"{root / 'corrupt.png'}: UnidentifiedImageError: ")


def test_a_decode_sample_decodes_that_many_distinct_rows_chosen_by_the_seed(tree):
    """10 of the 16 rows, without repeats (a repeat would decode fewer), the same rows for a seed."""
    root, manifest = tree

    def decoded_rows(seed: int) -> list[int]:
        rules = ValidationRules(
            classnames=CLASSES, domains=DOMAINS, splits=SPLITS, image_size=8, decode_sample=10, seed=seed
        )
        frame = validation_frame(manifest.copy(), rules, progress=False)
        decoded = frame.index[frame["decoded_width"].notna()].tolist()
        assert frame.loc[decoded, "decoded_width"].tolist() == [8.0] * len(decoded)
        return decoded

    first = decoded_rows(seed=3)
    assert len(first) == 10
    assert decoded_rows(seed=3) == first
    assert decoded_rows(seed=4) != first  # 8008 subsets of 10 rows: the seed picks one


def test_a_failure_lists_at_most_max_examples_values(tree):
    """Six (domain, split) pairs without rows, ``max_examples=2``: the line names two of them."""
    root, manifest = tree
    extra = ("a", "b", "c")  # domains with no rows at all (partial, so only the row rules fail)
    rules = ValidationRules(
        classnames=CLASSES,
        domains=DOMAINS + extra,
        splits=SPLITS,
        image_size=8,
        partial_domains=extra,
        max_examples=2,
    )
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifest(manifest.copy(), rules, progress=False)
    (line,) = [x for x in str(caught.value).splitlines() if x.startswith("- every (domain, split) has rows")]
    missing = {f"'{d}/{s}'" for d in extra for s in SPLITS}
    named = [part.removeprefix("missing ") for part in line.split(": ", 1)[1].split("; ")]
    assert len(named) == 2 and set(named) <= missing


def test_progress_is_shown_by_default_and_silenced_by_progress_false(tree, capsys):
    """The decode bar is on unless asked off, through ``validate_manifest`` and ``validation_frame``."""
    root, manifest = tree
    validate_manifest(manifest.copy(), RULES)
    assert "decode images" in capsys.readouterr().err
    validation_frame(manifest.copy(), RULES)
    assert "decode images" in capsys.readouterr().err
    validate_manifest(manifest.copy(), RULES, progress=False)
    assert "decode images" not in capsys.readouterr().err


def test_the_suite_and_the_frame_spell_every_column_the_same(tree):
    """GX falls back to a case-insensitive match when a column is missing, so a misspelt column
    (``SPLIT``, ``DECODED_WIDTH``) still passes every rule; the names must agree exactly."""
    root, manifest = tree
    derived = {
        "expected_label",
        "file_exists",
        "real_path",
        "splits_of_path",
        "domain_split",
        "rows_in_domain_split",
        "decoded_width",
        "decoded_height",
        "decode_error",
    }
    frame = validation_frame(manifest.copy(), RULES, progress=False)
    assert set(frame.columns) == set(manifest.columns) | derived
    named = {
        getattr(expectation, field)
        for expectation in build_suite(RULES)
        for field in ("column", "column_A", "column_B")
        if getattr(expectation, field, None) is not None
    }
    checked = {"path", "label", "class_name", "domain", "split"} | derived - {"real_path"}
    assert named == checked
