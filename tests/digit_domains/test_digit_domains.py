"""Tests for the embedded DigitDomains generator: determinism, domain shift, splits, layout, atomicity."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lipsum_ft.digit_domains import (
    CLASS_NAMES,
    DOMAINS,
    DigitDomainsConfig,
    assign_splits,
    preview_grid,
    render_image,
    write_digit_domains,
)
from lipsum_ft.digit_domains import tree as tree_writer  # `tree` is the shared-tree fixture below
from lipsum_ft.digit_domains.render import image_rng
from lipsum_ft.digit_domains.splits import source_digits

FRACTIONS = {"pretrain": 0.5, "train": 0.2, "val": 0.1, "test": 0.2}
MAX_DIGITS = 60
MIN_STAT_GAP = 0.1  # every pair of domains must differ by this much in at least one statistic
FILE_INDEX = re.compile(r"_(\d{4})\.png$")


def _config(root: Path, **overrides) -> DigitDomainsConfig:
    """A tiny full-domain config so each test writes 360 small PNGs at most."""
    params = dict(root=root, domains=DOMAINS, split_fractions=FRACTIONS, max_digits=MAX_DIGITS)
    params.update(overrides)
    return DigitDomainsConfig(**params)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> DigitDomainsConfig:
    """One shared tree for the read-only tests (writing is the slow part)."""
    config = _config(tmp_path_factory.mktemp("dd") / "digit_domains")
    write_digit_domains(config, progress=False)
    return config


def _tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root (images, split files, stamp), keyed by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _split_lines(root: Path, domain: str, split: str) -> list[tuple[str, int]]:
    """Parse ``<relpath> <label>`` lines of one split file."""
    rows = []
    for line in (root / f"{domain}_{split}.txt").read_text(encoding="utf-8").splitlines():
        path, label = line.split(" ")
        rows.append((path, int(label)))
    return rows


# --- determinism ------------------------------------------------------------------------
def test_same_seed_gives_identical_bytes_and_other_seed_differs(tree, tmp_path: Path) -> None:
    again = _config(tmp_path / "again")
    write_digit_domains(again, progress=False)
    first, second = _tree_bytes(tree.root), _tree_bytes(again.root)
    assert first.keys() == second.keys()
    assert first == second
    assert any(name.endswith(".png") for name in first)

    other = _config(tmp_path / "other", seed=1)
    write_digit_domains(other, progress=False)
    third = _tree_bytes(other.root)
    shared_pngs = [n for n in first.keys() & third.keys() if n.endswith(".png")]
    changed_pngs = sum(first[n] != third[n] for n in shared_pngs)
    assert changed_pngs == len(shared_pngs)
    assert any(first[f"photo_{s}.txt"] != third[f"photo_{s}.txt"] for s in FRACTIONS)


def test_render_image_does_not_depend_on_other_images() -> None:
    """Per-image generators: rendering order (or a subset of domains) cannot change pixels."""
    images, _ = source_digits()
    a = render_image(images[3], "painting", image_rng(0, "painting", 3), 32)
    render_image(images[4], "photo", image_rng(0, "photo", 4), 32)
    b = render_image(images[3], "painting", image_rng(0, "painting", 3), 32)
    assert a.dtype == np.uint8 and a.shape == (32, 32, 3)
    assert np.array_equal(a, b)
    assert render_image(images[3], "photo", image_rng(0, "photo", 3), 48).shape == (48, 48, 3)


# --- domains differ ----------------------------------------------------------------------
def _domain_stats(images: np.ndarray) -> dict[str, float]:
    """Cheap global statistics (all in [0, 1]) that characterise a visual style."""
    x = images.astype(np.float64) / 255.0
    high, low = x.max(-1), x.min(-1)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-9), 0.0)
    luma = x @ np.array([0.299, 0.587, 0.114])
    dx = np.abs(np.diff(luma, axis=2))
    dy = np.abs(np.diff(luma, axis=1))
    mx, my = dx.mean(axis=(1, 2)), dy.mean(axis=(1, 2))
    return {
        "mean_r": x[..., 0].mean(),
        "mean_g": x[..., 1].mean(),
        "mean_b": x[..., 2].mean(),
        "saturation": saturation.mean(),
        "near_white": (low >= 0.94).mean(),
        "pure_black_or_white": ((high <= 0.02) | (low >= 0.98)).mean(),
        "edge_density": (dx > 0.25).mean(),
        "grain": np.median(dx, axis=(1, 2)).mean(),  # sensor noise / paper grain
        "anisotropy": (np.abs(mx - my) / (mx + my + 1e-9)).mean(),  # brush streaks
    }


def test_domains_differ_statistically(tree) -> None:
    stats = {}
    for domain in tree.domains:
        files = sorted((tree.root / domain).rglob("*.png"))
        stats[domain] = _domain_stats(np.stack([np.asarray(Image.open(f)) for f in files]))
    for a, b in itertools.combinations(tree.domains, 2):
        gaps = {k: abs(stats[a][k] - stats[b][k]) for k in stats[a]}
        best = max(gaps, key=gaps.get)
        assert gaps[best] >= MIN_STAT_GAP, f"{a} vs {b} too similar: {gaps}"


def test_quickdraw_is_binary_and_sketch_is_grey_on_paper(tree) -> None:
    doodle = np.asarray(Image.open(next((tree.root / "quickdraw").rglob("*.png"))))
    assert set(np.unique(doodle)) <= {0, 255}
    sketch = np.asarray(Image.open(next((tree.root / "sketch").rglob("*.png")))).astype(int)
    assert np.abs(sketch - sketch.mean(-1, keepdims=True)).max() < 40  # nearly grey
    assert np.percentile(sketch, 90) > 200  # mostly light paper


# --- splits ------------------------------------------------------------------------------
def test_splits_are_disjoint_by_source_digit_and_stratified(tree) -> None:
    owner: dict[str, str] = {}
    per_split: dict[str, set[str]] = {s: set() for s in FRACTIONS}
    classes: dict[str, set[int]] = {s: set() for s in FRACTIONS}
    for domain, split in itertools.product(tree.domains, FRACTIONS):
        for path, label in _split_lines(tree.root, domain, split):
            index = FILE_INDEX.search(path).group(1)
            assert owner.setdefault(index, split) == split, f"digit {index} in two splits"
            per_split[split].add(index)
            classes[split].add(label)
    assert len(owner) == MAX_DIGITS
    for split, fraction in FRACTIONS.items():
        assert per_split[split], f"split {split} is empty"
        assert abs(len(per_split[split]) / MAX_DIGITS - fraction) <= 0.1
    # Stratified: a class with at least one digit per split appears in every split.
    _, labels = source_digits()
    per_class = Counter(int(labels[int(i)]) for i in owner)
    plentiful = {label for label, n in per_class.items() if n >= len(FRACTIONS)}
    assert len(plentiful) >= 5  # the seeded 60-digit sample (7 such classes) is not degenerate
    for split in FRACTIONS:
        assert plentiful <= classes[split]


def test_assign_splits_fractions_stratification_and_key_order() -> None:
    labels = np.repeat(np.arange(10), 100)
    splits = assign_splits(labels, FRACTIONS, seed=3)
    counts = Counter(splits.tolist())
    for name, fraction in FRACTIONS.items():
        assert abs(counts[name] - fraction * len(labels)) <= 10  # at most one per class off
        for label in range(10):
            assert abs(np.sum((labels == label) & (splits == name)) - fraction * 100) <= 1
    reordered = dict(reversed(list(FRACTIONS.items())))
    assert np.array_equal(splits, assign_splits(labels, reordered, seed=3))
    assert not np.array_equal(splits, assign_splits(labels, FRACTIONS, seed=4))


# --- layout ------------------------------------------------------------------------------
def test_layout_matches_domainnet(tree) -> None:
    root = tree.root
    assert (root / "classnames.txt").read_text(encoding="utf-8").splitlines() == list(CLASS_NAMES)
    total = 0
    for domain, split in itertools.product(tree.domains, FRACTIONS):
        rows = _split_lines(root, domain, split)
        assert [p for p, _ in rows] == sorted(p for p, _ in rows)
        for path, label in rows:
            parts = Path(path).parts
            assert len(parts) == 3 and parts[0] == domain and parts[2].startswith(f"{domain}_")
            assert parts[1] == CLASS_NAMES[label]
            assert (root / path).is_file()
        total += len(rows)
    assert total == MAX_DIGITS * len(tree.domains) == len(list(root.rglob("*.png")))


def test_return_value_and_stamp(tmp_path: Path) -> None:
    config = _config(tmp_path / "dd", domains=("sketch", "photo"), max_digits=12)
    result = write_digit_domains(config, progress=False)
    assert result == {
        "root": str(config.root),
        "domains": ["sketch", "photo"],
        "splits": list(FRACTIONS),
        "classnames": list(CLASS_NAMES),
        "num_images": 24,
        "regenerated": True,
    }
    assert "root" not in (config.root / "digit_domains.json").read_text(encoding="utf-8")


def test_preview_grid_shape() -> None:
    grid = preview_grid(_config(Path("unused"), image_size=16), per_domain=4)
    assert grid.shape == (16 * len(DOMAINS), 16 * 4, 3) and grid.dtype == np.uint8


# --- skip and atomicity -------------------------------------------------------------------
def test_second_write_is_skipped_and_changed_config_regenerates(tmp_path: Path) -> None:
    config = _config(tmp_path / "dd", max_digits=20)
    write_digit_domains(config, progress=False)
    mtimes = {p: p.stat().st_mtime_ns for p in config.root.rglob("*")}
    again = write_digit_domains(config, progress=False)
    assert again["regenerated"] is False and again["num_images"] == 20 * len(DOMAINS)
    assert {p: p.stat().st_mtime_ns for p in config.root.rglob("*")} == mtimes

    changed = write_digit_domains(_config(tmp_path / "dd", max_digits=20, seed=5), progress=False)
    assert changed["regenerated"] is True

    (config.root / "photo_val.txt").unlink()  # a missing split file forces regeneration
    assert write_digit_domains(_config(tmp_path / "dd", max_digits=20, seed=5), progress=False)["regenerated"]


def test_failure_midway_leaves_existing_root_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    config = _config(tmp_path / "dd", max_digits=10)
    write_digit_domains(config, progress=False)
    before = _tree_bytes(config.root)

    real_render = tree_writer.render_image
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 15:
            raise RuntimeError("boom")
        return real_render(*args, **kwargs)

    monkeypatch.setattr(tree_writer, "render_image", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        write_digit_domains(_config(tmp_path / "dd", max_digits=10, seed=9), progress=False)
    assert calls["n"] > 15
    assert _tree_bytes(config.root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dd"]


def test_failure_without_existing_root_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(tree_writer, "render_image", broken)
    with pytest.raises(RuntimeError):
        write_digit_domains(_config(tmp_path / "dd", max_digits=5), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    """A mistyped root (e.g. ``data/01_raw``) must not be wiped by the swap."""
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "precious.csv").write_text("keep me", encoding="utf-8")
    with pytest.raises(FileExistsError, match="precious.csv"):
        write_digit_domains(_config(tmp_path / "raw", max_digits=5), progress=False)
    assert (tmp_path / "raw" / "precious.csv").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


# --- bad config ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"domains": ("photo", "cartoon")}, "cartoon"),
        ({"split_fractions": {"train": 0.5, "test": 0.4}}, "0.9"),
        ({"split_fractions": {"train": 1.2, "test": -0.2}}, "-0.2"),
        ({"split_fractions": {"train": 1.0, "test": 0.0}}, "test"),
    ],
)
def test_bad_config_raises_naming_the_value(tmp_path: Path, overrides: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        _config(tmp_path / "dd", **overrides)


def test_unknown_domain_lists_valid_ones() -> None:
    with pytest.raises(ValueError) as info:
        render_image(np.zeros((8, 8)), "cartoon", np.random.default_rng(0), 32)
    assert all(name in str(info.value) for name in DOMAINS)
