"""Real dataset layouts in miniature: DomainNet's official splits (+ a carved val split)
and the ImageNet family.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lipsum_ft.data.errors import DataInputError
from lipsum_ft.data.imagenet import (
    FOLDER_TO_OBJECTNET_LABEL,
    IMAGENET_2012_LABELS,
    IMAGENET_MANIFEST_COLUMNS,
    NO_GROUP,
    OBJECTNET_BORDER,
    OBJECTNET_TO_IMAGENET_1K,
    PYTORCH_TO_IMAGENET_2012_ID,
    ImageNetFamily,
    crop_border,
    read_imagenet_family,
)
from lipsum_ft.data.layout import MANIFEST_COLUMNS, FolderLayout, read_manifest
from lipsum_ft.data.splits import carve_validation, rows_to_carve

SIDE = 8  # tiny real images


def write_image(path: Path, color: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.new("RGB", (SIDE, SIDE), color).save(path, fmt)
    return path


# ---------------------------------------------------------------- DomainNet ---------------------------------

DOMAINS = ("clipart", "sketch")
CLASSES = ("apple", "bee", "cat")  # sorted folder order = DomainNet labels 0, 1, 2
TRAIN_COUNTS = {"apple": 10, "bee": 2, "cat": 1}
TEST_COUNT = 2


@pytest.fixture
def domainnet(tmp_path: Path) -> FolderLayout:
    """DomainNet's official layout: <root>/<domain>/<class>/<file>.jpg and <domain>_{train,test}.txt."""
    root = tmp_path / "domainnet"
    for domain in DOMAINS:
        lines = {"train": [], "test": []}
        for label, cls in enumerate(CLASSES):
            counts = {"train": TRAIN_COUNTS[cls], "test": TEST_COUNT}
            for split, count in counts.items():
                for i in range(count):
                    relative = f"{domain}/{cls}/{domain}_{label:03d}_{split}{i:06d}.jpg"
                    write_image(root / relative)
                    lines[split].append(f"{relative} {label}")
        for split, split_lines in lines.items():
            (root / f"{domain}_{split}.txt").write_text("\n".join(split_lines) + "\n")
    return FolderLayout(root=root, domains=DOMAINS, splits=("train", "test"), classnames_from="folders")


def test_domainnet_official_splits_read(domainnet):
    manifest = read_manifest(domainnet)
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    per_domain = sum(TRAIN_COUNTS.values()) + TEST_COUNT * len(CLASSES)
    assert len(manifest) == per_domain * len(DOMAINS)
    assert (manifest["label"] == manifest["class_name"].map(CLASSES.index)).all()
    assert manifest["path"].map(lambda p: Path(p).is_file()).all()
    assert manifest["source"].iloc[0] == f"{domainnet.root / 'clipart_train.txt'}:1"


def test_rounding_is_half_up_and_keeps_one_row():
    assert rows_to_carve(1, 0.5) == 0  # a lone row never leaves
    assert rows_to_carve(2, 0.25) == 1  # 0.5 rounds up
    assert rows_to_carve(2, 0.2) == 0  # 0.4 rounds down
    assert rows_to_carve(10, 0.25) == 3  # 2.5 rounds up
    assert rows_to_carve(10, 0.99) == 9  # at least one row stays


def test_carve_validation_is_stratified_disjoint_and_deterministic(domainnet):
    manifest = read_manifest(domainnet)
    carved = carve_validation(manifest, "clipart", fraction=0.25, seed=3)
    assert carved.index.equals(manifest.index) and carved["path"].equals(manifest["path"])  # order stable
    val = carved[(carved["domain"] == "clipart") & (carved["split"] == "val")]
    train = carved[(carved["domain"] == "clipart") & (carved["split"] == "train")]
    assert val.groupby("class_name").size().to_dict() == {"apple": 3, "bee": 1}  # cat (1 row) stays in train
    assert train.groupby("class_name").size().to_dict() == {"apple": 7, "bee": 1, "cat": 1}
    assert set(val["path"]).isdisjoint(train["path"])
    assert val["source"].str.contains(r"clipart_train\.txt:\d+ \(carved into 'val'").all()
    untouched = carved["domain"] != "clipart"
    assert carved[untouched].equals(manifest[untouched])
    assert carved[carved["split"] == "test"].equals(manifest[manifest["split"] == "test"])
    again = carve_validation(manifest, "clipart", fraction=0.25, seed=3)
    assert again.equals(carved)
    other = carve_validation(manifest, "clipart", fraction=0.25, seed=4)
    assert set(other.loc[other["split"] == "val", "path"]) != set(
        val["path"]
    )  # seed matters (10 choose 3 picks)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_carve_rejects_bad_fraction(domainnet, fraction):
    with pytest.raises(DataInputError, match=r"fraction must lie in \(0, 1\).*clipart"):
        carve_validation(read_manifest(domainnet), "clipart", fraction=fraction)


def test_carve_rejects_missing_domain_or_split(domainnet):
    manifest = read_manifest(domainnet)
    with pytest.raises(DataInputError, match="domain 'painting' has no rows in split 'train'"):
        carve_validation(manifest, "painting")
    with pytest.raises(DataInputError, match="domain 'clipart' has no rows in split 'trainval'"):
        carve_validation(manifest, "clipart", from_split="trainval")
    with pytest.raises(DataInputError, match="domain 'clipart' already has rows in split 'test'"):
        carve_validation(manifest, "clipart", to_split="test")


# ---------------------------------------------------------------- ImageNet family ---------------------------

WNIDS = [f"n{i:08d}" for i in range(1000)]
IMAGENET_CLASSES_PRESENT = (0, 1, 2)
V2_FOLDERS = (0, 5, 999)
R_CLASSES = (7, 1)
A_CLASSES = (500, 3)
SKETCH_CLASSES = (2, 42)
# ObjectNet, in the release's format. Real ImageNet-1k indices of the ImageNet classes named below:
ANALOG_CLOCK, DIGITAL_CLOCK, MOUNTAIN_BIKE = 409, 530, 671
OBJECTNET_FOLDERS = {"alarm_clock": "Alarm clock", "bicycle": "Bicycle", "squeegee": "Squeegee"}
OBJECTNET_OVERLAP = {
    "Alarm clock": "analog clock; digital clock",
    "Bicycle": "mountain bike, all-terrain bike, off-roader",
}


def ilsvrc_2012_id(index: int) -> int:
    """The fake files' permutation between ILSVRC-2012 ids and ImageNet-1k indices
    (the real one is not identity either).
    """
    return 999 - index


def write_objectnet(root: Path) -> None:
    mappings = root / "mappings"
    mappings.mkdir(parents=True)
    (mappings / FOLDER_TO_OBJECTNET_LABEL).write_text(json.dumps(OBJECTNET_FOLDERS, indent=2))
    (mappings / OBJECTNET_TO_IMAGENET_1K).write_text(json.dumps(OBJECTNET_OVERLAP, indent=2))
    (mappings / PYTORCH_TO_IMAGENET_2012_ID).write_text(
        json.dumps({str(i): ilsvrc_2012_id(i) for i in range(1000)}, indent=2)
    )
    names = [f"fake class {i}" for i in range(1000)]
    names[ilsvrc_2012_id(ANALOG_CLOCK)] = "analog clock"
    names[ilsvrc_2012_id(DIGITAL_CLOCK)] = "digital clock"
    names[ilsvrc_2012_id(MOUNTAIN_BIKE)] = "mountain bike, all-terrain bike, off-roader"
    (mappings / IMAGENET_2012_LABELS).write_text("\n".join(names) + "\n")
    for folder in OBJECTNET_FOLDERS:
        for i in range(2):
            write_image(root / "images" / folder / f"{folder}_{i}.png")


@pytest.fixture
def family(tmp_path: Path) -> ImageNetFamily:
    imagenet = tmp_path / "imagenet"
    for index in IMAGENET_CLASSES_PRESENT:
        for i in range(2):
            write_image(imagenet / "train" / WNIDS[index] / f"{WNIDS[index]}_{i}.JPEG")
        write_image(imagenet / "val" / WNIDS[index] / f"ILSVRC2012_val_{index:08d}.JPEG")
    for index in V2_FOLDERS:
        write_image(tmp_path / "imagenetv2" / str(index) / "0a1b.jpeg")
    for name, classes in (("imagenet-r", R_CLASSES), ("imagenet-a", A_CLASSES)):
        for index in classes:
            write_image(tmp_path / name / WNIDS[index] / f"{name}_{index}.jpg")
        (tmp_path / name / "README.txt").write_text("stray files beside the class folders are ignored\n")
    for index in SKETCH_CLASSES:
        write_image(tmp_path / "sketch-root" / "sketch" / WNIDS[index] / "sketch_1.JPEG")
    write_objectnet(tmp_path / "objectnet-1.0")
    return ImageNetFamily(
        imagenet=imagenet,
        imagenet_v2=tmp_path / "imagenetv2",
        imagenet_r=tmp_path / "imagenet-r",
        imagenet_a=tmp_path / "imagenet-a",
        imagenet_sketch=tmp_path / "sketch-root",
        objectnet=tmp_path / "objectnet-1.0",
        wnids=WNIDS,
    )


def test_imagenet_family_manifest(family):
    import open_clip

    manifest, classnames, groups = read_imagenet_family(family)
    assert tuple(manifest.columns) == IMAGENET_MANIFEST_COLUMNS
    assert classnames == list(open_clip.IMAGENET_CLASSNAMES) and len(classnames) == 1000
    assert (manifest["class_name"] == manifest["label"].map(classnames.__getitem__)).all()
    assert manifest["path"].map(lambda p: Path(p).is_file()).all()

    def labels(domain: str, split: str = "test") -> list[int]:
        rows = manifest[(manifest["domain"] == domain) & (manifest["split"] == split)]
        return sorted(rows["label"])

    assert labels("imagenet", "train") == [0, 0, 1, 1, 2, 2]
    assert labels("imagenet") == [0, 1, 2]
    assert labels("imagenet_v2") == list(V2_FOLDERS)
    assert labels("imagenet_r") == sorted(R_CLASSES)
    assert labels("imagenet_a") == sorted(A_CLASSES)
    assert labels("imagenet_sketch") == sorted(SKETCH_CLASSES)
    assert set(manifest.loc[manifest["domain"] != "imagenet", "split"]) == {"test"}

    assert set(groups) == {"imagenet_r", "imagenet_a", "objectnet"}  # the rest are scored over all 1000
    assert groups["imagenet_r"] == [[1], [7]]
    assert groups["imagenet_a"] == [[3], [500]]
    for domain in ("imagenet_r", "imagenet_a"):
        rows = manifest[manifest["domain"] == domain]
        assert [groups[domain][g] for g in rows["group"]] == [[label] for label in rows["label"]]
    full = manifest["domain"].isin(["imagenet", "imagenet_v2", "imagenet_sketch"])
    assert (manifest.loc[full, "group"] == NO_GROUP).all()


def test_objectnet_groups_follow_the_mapping_files(family):
    manifest, classnames, groups = read_imagenet_family(family)
    assert groups["objectnet"] == [
        [ANALOG_CLOCK, DIGITAL_CLOCK],
        [MOUNTAIN_BIKE],
    ]  # folder order: alarm_clock, bicycle
    assert classnames[ANALOG_CLOCK] == "analog clock" and classnames[MOUNTAIN_BIKE] == "mountain bike"
    rows = manifest[manifest["domain"] == "objectnet"]
    assert len(rows) == 4  # squeegee does not overlap ImageNet -> skipped
    assert not rows["path"].str.contains("squeegee").any()
    clocks = rows[rows["path"].str.contains("alarm_clock")]
    assert set(clocks["group"]) == {0} and set(clocks["label"]) == {ANALOG_CLOCK}
    assert clocks["source"].str.contains("Alarm clock").all()
    bikes = rows[rows["path"].str.contains("bicycle")]
    assert set(bikes["group"]) == {1} and set(bikes["label"]) == {MOUNTAIN_BIKE}
    assert rows["path"].str.endswith(".png").all()


def test_sketch_without_subfolder_and_wnids_from_train_folders(family, tmp_path):
    sketch = tmp_path / "flat-sketch"
    shutil.copytree(family.imagenet_sketch / "sketch", sketch)
    for wnid in WNIDS:  # a full train tree of folders lets wnids default to them
        (family.imagenet / "train" / wnid).mkdir(exist_ok=True)
    only = ImageNetFamily(imagenet=family.imagenet, imagenet_sketch=sketch)
    manifest, _, groups = read_imagenet_family(only)
    assert sorted(manifest.loc[manifest["domain"] == "imagenet_sketch", "label"]) == sorted(SKETCH_CLASSES)
    assert groups == {}


def test_crop_border_removes_the_frame():
    image = Image.new("RGB", (SIDE, SIDE), (255, 0, 0))
    image.paste(
        (0, 0, 255), (OBJECTNET_BORDER, OBJECTNET_BORDER, SIDE - OBJECTNET_BORDER, SIDE - OBJECTNET_BORDER)
    )
    cropped = crop_border(image, OBJECTNET_BORDER)
    assert cropped.size == (SIDE - 2 * OBJECTNET_BORDER,) * 2
    assert [color for _, color in cropped.getcolors()] == [(0, 0, 255)]
    with pytest.raises(DataInputError, match="cannot crop a 4-pixel border from a 8x8 image"):
        crop_border(image, SIDE // 2)


# ---------------------------------------------------------------- bad ImageNet-family layouts ---------------


def test_missing_root_is_named(family, tmp_path):
    with pytest.raises(DataInputError, match=r"imagenet_r folder .*nowhere does not exist"):
        read_imagenet_family(ImageNetFamily(imagenet_r=tmp_path / "nowhere", wnids=WNIDS))
    shutil.rmtree(family.imagenet / "val")
    with pytest.raises(DataInputError, match=r"imagenet test folder .*imagenet/val does not exist"):
        read_imagenet_family(ImageNetFamily(imagenet=family.imagenet, wnids=WNIDS))


@pytest.mark.parametrize("domain", ["imagenet_r", "imagenet_a", "imagenet_sketch"])
def test_unknown_wnid_folder_is_named(family, domain):
    root = getattr(family, domain)
    classes = root / "sketch" if domain == "imagenet_sketch" else root
    write_image(classes / "n99999999" / "x.jpg")
    with pytest.raises(
        DataInputError, match=rf"{domain}: folder .*n99999999 is not one of the 1000 ImageNet wnids"
    ):
        read_imagenet_family(ImageNetFamily(**{domain: root}, wnids=WNIDS))


def test_sketch_folders_beside_the_sketch_subfolder_are_named(family):
    write_image(family.imagenet_sketch / WNIDS[5] / "x.JPEG")
    with pytest.raises(
        DataInputError, match=rf"imagenet_sketch: folder .*{WNIDS[5]} lies beside .*sketch-root/sketch"
    ):
        read_imagenet_family(ImageNetFamily(imagenet_sketch=family.imagenet_sketch, wnids=WNIDS))


@pytest.mark.parametrize("folder", ["1000", "abc", "007", "-1"])
def test_bad_imagenet_v2_folder_is_named(family, folder):
    write_image(family.imagenet_v2 / folder / "x.jpeg")
    with pytest.raises(
        DataInputError, match=rf"imagenet_v2: folder .*/{folder} is not a class index in \[0, 1000\)"
    ):
        read_imagenet_family(ImageNetFamily(imagenet_v2=family.imagenet_v2))


@pytest.mark.parametrize(
    "name",
    [FOLDER_TO_OBJECTNET_LABEL, OBJECTNET_TO_IMAGENET_1K, PYTORCH_TO_IMAGENET_2012_ID, IMAGENET_2012_LABELS],
)
def test_missing_objectnet_mapping_file_is_named(family, name):
    (family.objectnet / "mappings" / name).unlink()
    with pytest.raises(DataInputError, match=rf"mapping file .*mappings/{name} is missing"):
        read_imagenet_family(ImageNetFamily(objectnet=family.objectnet))


def test_objectnet_layout_errors_are_named(family):
    write_image(family.objectnet / "images" / "spaceship" / "x.png")
    with pytest.raises(
        DataInputError,
        match=rf"objectnet: folder .*images/spaceship is not listed in {FOLDER_TO_OBJECTNET_LABEL}",
    ):
        read_imagenet_family(ImageNetFamily(objectnet=family.objectnet))
    shutil.rmtree(family.objectnet / "mappings")
    with pytest.raises(
        DataInputError, match=r"objectnet mappings folder .*objectnet-1.0/mappings does not exist"
    ):
        read_imagenet_family(ImageNetFamily(objectnet=family.objectnet))


def test_objectnet_name_missing_from_the_2012_labels_is_named(family):
    labels = family.objectnet / "mappings" / IMAGENET_2012_LABELS
    labels.write_text(labels.read_text().replace("digital clock\n", "digital watch\n"))
    with pytest.raises(
        DataInputError,
        match=rf"'digital clock' \(for 'Alarm clock'\) is not a line of .*{IMAGENET_2012_LABELS}",
    ):
        read_imagenet_family(ImageNetFamily(objectnet=family.objectnet))


def test_bad_wnid_lists_are_rejected(family):
    with pytest.raises(DataInputError, match="ImageNetFamily.wnids: 3 wnids, expected 1000"):
        read_imagenet_family(ImageNetFamily(imagenet_r=family.imagenet_r, wnids=WNIDS[:3]))
    with pytest.raises(DataInputError, match="not in sorted order"):
        read_imagenet_family(ImageNetFamily(imagenet_r=family.imagenet_r, wnids=WNIDS[::-1]))
    with pytest.raises(DataInputError, match=r"wnid folders of .*imagenet/train: 3 wnids, expected 1000"):
        read_imagenet_family(ImageNetFamily(imagenet=family.imagenet))
    with pytest.raises(DataInputError, match="imagenet_r: wnid folders under .* need the wnid list"):
        read_imagenet_family(ImageNetFamily(imagenet_r=family.imagenet_r))
    with pytest.raises(DataInputError, match="no dataset root is set"):
        read_imagenet_family(ImageNetFamily())
