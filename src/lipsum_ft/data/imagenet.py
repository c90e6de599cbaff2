"""Read the ImageNet family (ImageNet, -V2, -R, -A, -Sketch, ObjectNet) into one manifest.

Every domain is labelled in one label space, the ImageNet-1k indices 0..999 in sorted-wnid order
(the order of ``open_clip.IMAGENET_CLASSNAMES``, of ImageNet-V2's folder numbers and of the
"pytorch" indices in ObjectNet's mapping files), so one 1000-way zero-shot head scores them all.
Domains whose label space is smaller say how to score them in ``class_groups`` and in the manifest's
extra ``group`` column (see ``read_imagenet_family``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from lipsum_ft.data.errors import DataInputError
from lipsum_ft.data.layout import MANIFEST_COLUMNS

IMAGENET_CLASSES = 1000
GROUP_COLUMN = "group"
IMAGENET_MANIFEST_COLUMNS = (*MANIFEST_COLUMNS, GROUP_COLUMN)
NO_GROUP = -1  # ``group`` of a row whose domain is scored over all 1000 classes

TRAIN_SPLIT, TEST_SPLIT = "train", "test"
IMAGENET_SPLIT_FOLDERS = {TRAIN_SPLIT: "train", TEST_SPLIT: "val"}  # ImageNet's val set is our test split
SKETCH_SUBFOLDER = "sketch"  # the ImageNet-Sketch archive unpacks to <root>/sketch/<wnid>/
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})

# ObjectNet's authors: every image carries a 1-pixel (red) frame to crop before scoring. WiSE-FT and
# the official objectnet-template-pytorch loader crop 2 pixels; the loader passes this constant to
# ``crop_border``.
OBJECTNET_BORDER = 1
OBJECTNET_IMAGES = "images"
OBJECTNET_MAPPINGS = "mappings"
FOLDER_TO_OBJECTNET_LABEL = "folder_to_objectnet_label.json"  # {image folder: ObjectNet class name}
OBJECTNET_TO_IMAGENET_1K = (
    "objectnet_to_imagenet_1k.json"  # {ObjectNet class name: "imagenet name; imagenet name"}
)
PYTORCH_TO_IMAGENET_2012_ID = (
    "pytorch_to_imagenet_2012_id.json"  # {"pytorch index": ILSVRC-2012 id (0-based)}
)
IMAGENET_2012_LABELS = "imagenet_to_label_2012_v2"  # line i: the ImageNet class name of ILSVRC-2012 id i
OBJECTNET_NAME_SEPARATOR = ";"  # separates the ImageNet class names of one ObjectNet class

Row = tuple[str, int, str, str, str, str, int]


@dataclass(frozen=True)
class ImageNetFamily:
    """Where each member of the ImageNet family lives; a ``None`` root leaves that domain out.

    Layouts: ``imagenet`` <root>/{train,val}/<wnid>/*.JPEG (val already sorted into wnid folders);
    ``imagenet_v2`` <root>/<0..999>/*.jpeg (folder name = class index); ``imagenet_r``,
    ``imagenet_a`` <root>/<wnid>/*.jpg (200 wnids each); ``imagenet_sketch`` <root>/<wnid>/*.JPEG or
    <root>/sketch/<wnid>/*.JPEG; ``objectnet`` the release folder with images/<folder>/*.png and
    mappings/. ``wnids`` are the 1000 ImageNet wnids in label order (sorted); by default the sorted
    folders of ``imagenet/train``, which must then be all 1000.
    """

    imagenet: Path | None = None
    imagenet_v2: Path | None = None
    imagenet_r: Path | None = None
    imagenet_a: Path | None = None
    imagenet_sketch: Path | None = None
    objectnet: Path | None = None
    wnids: Sequence[str] | None = None


@dataclass(frozen=True)
class ObjectNetClass:
    """One ObjectNet class that overlaps ImageNet: its image folder, name and ImageNet indices (ascending)."""

    folder: str
    name: str
    imagenet: tuple[int, ...]


@dataclass(frozen=True)
class ObjectNetMapping:
    """ObjectNet's mapping files, resolved: every known image folder, and the overlapping classes
    in group order.
    """

    folders: dict[str, str]
    classes: tuple[ObjectNetClass, ...]


def crop_border(image: Image.Image, pixels: int) -> Image.Image:
    """``image`` without ``pixels`` rows/columns on each edge (ObjectNet: ``OBJECTNET_BORDER``),
    so the frame is not scored.
    """
    width, height = image.size
    if pixels < 0 or 2 * pixels >= min(width, height):
        raise DataInputError(f"cannot crop a {pixels}-pixel border from a {width}x{height} image")
    return image.crop((pixels, pixels, width - pixels, height - pixels))


def imagenet_classnames() -> list[str]:
    """open_clip's cleaned ImageNet-1k class names in label order
    (imported lazily: open_clip pulls in torch).
    """
    import open_clip

    names = list(open_clip.IMAGENET_CLASSNAMES)
    if len(names) != IMAGENET_CLASSES:
        raise DataInputError(
            f"open_clip.IMAGENET_CLASSNAMES has {len(names)} names, expected {IMAGENET_CLASSES}"
        )
    return names


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataInputError(f"{what} folder {path} does not exist or is not a folder")
    return path


def _class_folders(root: Path) -> list[Path]:
    """Sub-folders of ``root`` in sorted order, hidden ones left out
    (stray files such as a README are ignored).
    """
    return sorted(Path(e.path) for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))


def _image_files(folder: Path) -> list[str]:
    """Image file names in ``folder``, sorted, so the manifest order does not depend on the file system."""
    return sorted(
        e.name
        for e in os.scandir(folder)
        if e.is_file()
        and not e.name.startswith(".")
        and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES
    )


def resolve_wnids(family: ImageNetFamily) -> list[str] | None:
    """The 1000 wnids in label order, from ``family.wnids`` or ``imagenet/train``; None when neither is given.

    They must be sorted: open_clip's class names, ImageNet-V2 folder numbers and ObjectNet's
    "pytorch" indices all follow sorted-wnid order, so any other order would mislabel rows.
    """
    if family.wnids is not None:
        wnids, where = [str(w) for w in family.wnids], "ImageNetFamily.wnids"
    elif family.imagenet is not None:
        train = _require_dir(Path(family.imagenet) / IMAGENET_SPLIT_FOLDERS[TRAIN_SPLIT], "imagenet train")
        wnids, where = [p.name for p in _class_folders(train)], f"wnid folders of {train}"
    else:
        return None
    if len(wnids) != IMAGENET_CLASSES:
        raise DataInputError(
            f"{where}: {len(wnids)} wnids, expected {IMAGENET_CLASSES} "
            "(pass ImageNetFamily.wnids for a partial copy)"
        )
    if len(set(wnids)) != len(wnids):
        raise DataInputError(f"{where}: wnids repeat: {sorted({w for w in wnids if wnids.count(w) > 1})[:5]}")
    if wnids != sorted(wnids):
        raise DataInputError(f"{where}: wnids are not in sorted order, the ImageNet-1k label order")
    return wnids


def _rows_of(
    class_dir: Path,
    label: int,
    classnames: Sequence[str],
    domain: str,
    split: str,
    group: int = NO_GROUP,
    note: str = "",
) -> list[Row]:
    source = f"{domain}:{class_dir}" + (f" ({note})" if note else "")
    return [
        (str(class_dir / name), label, classnames[label], domain, split, source, group)
        for name in _image_files(class_dir)
    ]


def _wnid_labels(root: Path, domain: str, label_of: dict[str, int] | None) -> list[tuple[Path, int]]:
    """(folder, label) of every wnid folder under ``root``; a folder that is not a known wnid is an error."""
    if label_of is None:
        raise DataInputError(
            f"{domain}: wnid folders under {root} need the wnid list (set ImageNetFamily.wnids or .imagenet)"
        )
    pairs = []
    for folder in _class_folders(root):
        if folder.name not in label_of:
            raise DataInputError(
                f"{domain}: folder {folder} is not one of the {IMAGENET_CLASSES} ImageNet wnids"
            )
        pairs.append((folder, label_of[folder.name]))
    return pairs


def _wnid_rows(
    folder: Path, domain: str, split: str, label_of: dict[str, int] | None, classnames: Sequence[str]
) -> list[Row]:
    """Rows of every image in the wnid folders under ``folder`` (a domain scored over all 1000 classes)."""
    return [
        r
        for d, label in _wnid_labels(folder, domain, label_of)
        for r in _rows_of(d, label, classnames, domain, split)
    ]


def _non_empty(rows: list[Row], domain: str, root: Path) -> list[Row]:
    if not rows:
        raise DataInputError(f"{domain}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {root}")
    return rows


def read_imagenet(root: Path, label_of: dict[str, int] | None, classnames: Sequence[str]) -> list[Row]:
    """ImageNet-1k: ``train`` from <root>/train and ``test`` from <root>/val, both in wnid folders."""
    _require_dir(root, "imagenet")
    rows: list[Row] = []
    for split, sub in IMAGENET_SPLIT_FOLDERS.items():
        folder = _require_dir(root / sub, f"imagenet {split}")
        rows += _non_empty(_wnid_rows(folder, "imagenet", split, label_of, classnames), "imagenet", folder)
    return rows


def read_imagenet_v2(root: Path, classnames: Sequence[str]) -> list[Row]:
    """ImageNet-V2: folders named by class index (``0`` .. ``999``, no leading zeros)."""
    _require_dir(root, "imagenet_v2")
    rows: list[Row] = []
    for folder in _class_folders(root):
        name = folder.name
        if not (name.isdigit() and str(int(name)) == name and int(name) < IMAGENET_CLASSES):
            raise DataInputError(
                f"imagenet_v2: folder {folder} is not a class index in [0, {IMAGENET_CLASSES})"
            )
        rows += _rows_of(folder, int(name), classnames, "imagenet_v2", TEST_SPLIT)
    return _non_empty(rows, "imagenet_v2", root)


def read_wnid_subset(
    root: Path, domain: str, label_of: dict[str, int] | None, classnames: Sequence[str]
) -> tuple[list[Row], list[list[int]]]:
    """ImageNet-R / -A: wnid folders covering a subset of the classes;
    one single-class group per present class.

    The usual protocol restricts the logits to the present classes (200 for R and A), so the groups
    are ``[[i], [j], ...]`` in label order and each row's ``group`` is its class's position there.
    """
    _require_dir(root, domain)
    pairs = _wnid_labels(root, domain, label_of)
    present = sorted({label for _, label in pairs})
    group_of = {label: g for g, label in enumerate(present)}
    rows = [
        r for d, label in pairs for r in _rows_of(d, label, classnames, domain, TEST_SPLIT, group_of[label])
    ]
    return _non_empty(rows, domain, root), [[label] for label in present]


def read_imagenet_sketch(root: Path, label_of: dict[str, int] | None, classnames: Sequence[str]) -> list[Row]:
    """ImageNet-Sketch: wnid folders directly under <root> or under <root>/sketch
    (how the archive unpacks).
    """
    _require_dir(root, "imagenet_sketch")
    folder = root
    if (root / SKETCH_SUBFOLDER).is_dir():
        folder = root / SKETCH_SUBFOLDER
        beside = [p for p in _class_folders(root) if p != folder]
        if beside:
            raise DataInputError(
                f"imagenet_sketch: folder {beside[0]} lies beside {folder}; "
                "expected wnid folders in one of them only"
            )
    return _non_empty(
        _wnid_rows(folder, "imagenet_sketch", TEST_SPLIT, label_of, classnames), "imagenet_sketch", folder
    )


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataInputError(
            f"objectnet: mapping file {path} is missing "
            f"(expected in the release's {OBJECTNET_MAPPINGS}/ folder)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataInputError(f"objectnet: mapping file {path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise DataInputError(f"objectnet: mapping file {path} should hold a JSON object")
    return data


def _pytorch_index_of_2012_id(path: Path) -> dict[int, int]:
    """Invert ``pytorch_to_imagenet_2012_id.json``: ILSVRC-2012 id -> ImageNet-1k (sorted-wnid) index."""
    index_of: dict[int, int] = {}
    for key, value in _load_json(path).items():
        try:
            index, id_2012 = int(key), int(value)
        except (TypeError, ValueError):
            raise DataInputError(f"objectnet: {path}: entry {key!r}: {value!r} is not 'index': id") from None
        if not (0 <= index < IMAGENET_CLASSES and 0 <= id_2012 < IMAGENET_CLASSES):
            raise DataInputError(
                f"objectnet: {path}: entry {key!r}: {value!r} is outside [0, {IMAGENET_CLASSES})"
            )
        index_of[id_2012] = index
    return index_of


def read_objectnet_mapping(root: Path) -> ObjectNetMapping:
    """Resolve ObjectNet's ``mappings/`` files into ImageNet-1k index groups,
    as the ObjectNet release ships them.

    ``objectnet_to_imagenet_1k.json`` names ImageNet classes by their full ILSVRC name (several
    joined by ';'); ``imagenet_to_label_2012_v2`` gives each name's ILSVRC-2012 id (its 0-based line)
    and ``pytorch_to_imagenet_2012_id.json`` turns that id into the sorted-wnid index used here.
    Classes are ordered by image folder name (as WiSE-FT does), which fixes the group numbering.
    """
    mappings = _require_dir(root / OBJECTNET_MAPPINGS, "objectnet mappings")
    folders = {str(k): str(v) for k, v in _load_json(mappings / FOLDER_TO_OBJECTNET_LABEL).items()}
    overlap = _load_json(mappings / OBJECTNET_TO_IMAGENET_1K)
    index_of_2012 = _pytorch_index_of_2012_id(mappings / PYTORCH_TO_IMAGENET_2012_ID)
    names_path = mappings / IMAGENET_2012_LABELS
    if not names_path.is_file():
        raise DataInputError(
            f"objectnet: mapping file {names_path} is missing "
            f"(expected in the release's {OBJECTNET_MAPPINGS}/ folder)"
        )
    ids_of_name: dict[str, list[int]] = {}
    for id_2012, line in enumerate(names_path.read_text(encoding="utf-8").splitlines()):
        ids_of_name.setdefault(line.strip(), []).append(id_2012)

    folder_of = {name: folder for folder, name in folders.items()}
    classes = []
    for objectnet_name, imagenet_names in overlap.items():
        if objectnet_name not in folder_of:
            raise DataInputError(
                f"objectnet: {mappings / OBJECTNET_TO_IMAGENET_1K}: class {objectnet_name!r} "
                f"has no folder in {FOLDER_TO_OBJECTNET_LABEL}"
            )
        indices = set()
        for imagenet_name in (n.strip() for n in str(imagenet_names).split(OBJECTNET_NAME_SEPARATOR)):
            ids = ids_of_name.get(imagenet_name, [])
            if len(ids) != 1:
                problem = "is not a line of" if not ids else "is ambiguous (several lines) in"
                raise DataInputError(
                    f"objectnet: ImageNet class {imagenet_name!r} (for {objectnet_name!r}) "
                    f"{problem} {names_path}"
                )
            if ids[0] not in index_of_2012:
                raise DataInputError(
                    f"objectnet: ILSVRC-2012 id {ids[0]} ({imagenet_name!r}) "
                    f"is missing from {mappings / PYTORCH_TO_IMAGENET_2012_ID}"
                )
            indices.add(index_of_2012[ids[0]])
        classes.append(ObjectNetClass(folder_of[objectnet_name], objectnet_name, tuple(sorted(indices))))
    return ObjectNetMapping(folders=folders, classes=tuple(sorted(classes, key=lambda c: c.folder)))


def read_objectnet(root: Path, classnames: Sequence[str]) -> tuple[list[Row], list[list[int]]]:
    """ObjectNet images of the classes that overlap ImageNet (the rest are skipped), and their index groups.

    The usual protocol scores an ObjectNet class by the max logit over its ImageNet classes, so each
    overlapping class is one group (113 in the release); a row's ``group`` is its class's group and
    its ``label`` the group's first (smallest) ImageNet index.
    """
    _require_dir(root, "objectnet")
    mapping = read_objectnet_mapping(root)
    images = _require_dir(root / OBJECTNET_IMAGES, "objectnet images")
    group_of = {c.folder: g for g, c in enumerate(mapping.classes)}
    rows: list[Row] = []
    for folder in _class_folders(images):
        if folder.name not in mapping.folders:
            raise DataInputError(f"objectnet: folder {folder} is not listed in {FOLDER_TO_OBJECTNET_LABEL}")
        if folder.name in group_of:
            group = group_of[folder.name]
            label = mapping.classes[group].imagenet[0]
            rows += _rows_of(
                folder, label, classnames, "objectnet", TEST_SPLIT, group, mapping.folders[folder.name]
            )
    return _non_empty(rows, "objectnet (classes overlapping ImageNet)", images), [
        list(c.imagenet) for c in mapping.classes
    ]


def read_imagenet_family(
    family: ImageNetFamily,
) -> tuple[pd.DataFrame, list[str], dict[str, list[list[int]]]]:
    """Every given member of the family as one manifest, the 1000 class names, and per-domain class groups.

    Domains: ``imagenet`` (splits ``train`` and ``test`` = its val folder), ``imagenet_v2``,
    ``imagenet_r``, ``imagenet_a``, ``imagenet_sketch``, ``objectnet`` (split ``test``). ``label``
    is always an ImageNet-1k index and ``class_name`` the open_clip name at that index.

    ``class_groups[domain]`` lists, for a domain whose label space is not the full 1000, the groups
    of ImageNet indices it is scored over: score group g by the max logit over ``groups[g]`` and
    predict the arg-max group; the row is right when that equals its ``group`` column. ImageNet-R
    and -A have one single-class group per present class (restricting logits to those 200);
    ObjectNet has one group per overlapping class. Domains absent from ``class_groups`` are scored
    over all 1000 classes and their rows carry ``group = NO_GROUP`` (-1).
    """
    roots = {
        "imagenet": family.imagenet,
        "imagenet_v2": family.imagenet_v2,
        "imagenet_r": family.imagenet_r,
        "imagenet_a": family.imagenet_a,
        "imagenet_sketch": family.imagenet_sketch,
        "objectnet": family.objectnet,
    }
    if all(root is None for root in roots.values()):
        raise DataInputError("ImageNetFamily: no dataset root is set")
    wnids = resolve_wnids(family)
    label_of = {w: i for i, w in enumerate(wnids)} if wnids is not None else None
    classnames = imagenet_classnames()
    rows: list[Row] = []
    groups: dict[str, list[list[int]]] = {}
    if family.imagenet is not None:
        rows += read_imagenet(Path(family.imagenet), label_of, classnames)
    if family.imagenet_v2 is not None:
        rows += read_imagenet_v2(Path(family.imagenet_v2), classnames)
    for domain in ("imagenet_r", "imagenet_a"):
        if roots[domain] is not None:
            subset_rows, groups[domain] = read_wnid_subset(Path(roots[domain]), domain, label_of, classnames)
            rows += subset_rows
    if family.imagenet_sketch is not None:
        rows += read_imagenet_sketch(Path(family.imagenet_sketch), label_of, classnames)
    if family.objectnet is not None:
        objectnet_rows, groups["objectnet"] = read_objectnet(Path(family.objectnet), classnames)
        rows += objectnet_rows
    manifest = pd.DataFrame(rows, columns=list(IMAGENET_MANIFEST_COLUMNS))
    return manifest.astype({"label": "int64", GROUP_COLUMN: "int64"}), classnames, groups
