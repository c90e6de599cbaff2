r"""Ingestion at DomainNet size: the ``data`` pipeline's manifest building and GX validation on ~600k files.

Writes a DomainNet-format tree (6 domains x 345 class folders, ``<domain>_{train,test}.txt`` split
files) of tiny valid JPEGs to a temporary folder, then times the nodes of the ``data`` pipeline
under the ``domainnet`` settings (``conf/base`` + ``conf/domainnet``, with ``layout.root`` pointed at
the tree): ``build_manifest`` (split files -> table, validation carved out of ``real/train``),
``validate_dataset`` (file checks, sampled decodes, the Great Expectations suite) and the Parquet
save of the manifest. The tree is removed afterwards (unless ``--keep``).

    .venv/bin/python benchmarks/ingest_scale.py [--files 600000] [--profile 25] [--root /tmp/x --keep]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from lipsum_ft.data.ingest import read_dataset, validation_rules
from lipsum_ft.data.validation import validate_manifest
from lipsum_ft.io.files import AtomicParquetDataset
from lipsum_ft.params.data import DataParams
from lipsum_ft.params.shared import parse

REPO = Path(__file__).resolve().parents[1]
DOMAINS = ("real", "painting", "clipart", "infograph", "sketch", "quickdraw")
CLASSES = 345
TEST_SHARE = 0.3  # DomainNet's train/test files hold about 70/30 of each domain


def tiny_jpeg() -> bytes:
    """A valid 16x16 JPEG (~0.6 kB); a class folder's files are hard links to one copy of it."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 128, dtype=np.uint8)).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def write_tree(root: Path, files: int) -> int:
    """``files`` images spread evenly over domains and classes, plus the split files; returns the count."""
    payload, per_folder = tiny_jpeg(), max(2, files // (len(DOMAINS) * CLASSES))
    classes = [
        f"class_{c:03d}" for c in range(CLASSES)
    ]  # sorted order = label order (classnames_from: folders)
    written = 0
    with tqdm(
        total=per_folder * len(DOMAINS) * CLASSES, desc="write tree", unit="file", mininterval=2
    ) as bar:
        for domain in DOMAINS:
            lines = {"train": [], "test": []}
            for label, name in enumerate(classes):
                folder = root / domain / name
                folder.mkdir(parents=True)
                test_from = per_folder - max(1, int(TEST_SHARE * per_folder))
                for i in range(per_folder):
                    relative = f"{domain}/{name}/{domain}_{label:03d}_{i:06d}.jpg"
                    if i == 0:
                        first = root / relative
                        first.write_bytes(payload)
                    else:  # a hard link: a directory entry per image, much faster to make than a file
                        os.link(first, root / relative)
                    lines["test" if i >= test_from else "train"].append(f"{relative} {label}")
                written += per_folder
                bar.update(per_folder)
            for split, rows in lines.items():
                (root / f"{domain}_{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return written


def domainnet_data_params(root: Path) -> dict:
    """``params:data`` as Kedro resolves it for ``--env domainnet``, with the layout root set."""
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        conf_source=str(REPO / "conf"), base_env="base", default_run_env="domainnet", env="domainnet"
    )
    data = loader["parameters"]["data"]
    data["layout"]["root"] = str(root)
    return data


def run_nodes(data: dict, out: Path) -> dict[str, float]:
    """What the pipeline's nodes do, in order, each timed (``prepare_dataset`` only describes a folder
    source)."""
    seconds = {}
    params = parse(DataParams, data)
    started = time.perf_counter()
    manifest, classnames, groups = read_dataset(params)
    seconds["build_manifest_s"] = time.perf_counter() - started
    started = time.perf_counter()
    report = validate_manifest(manifest, validation_rules(params, manifest, classnames, groups))
    seconds["validate_dataset_s"] = time.perf_counter() - started
    started = time.perf_counter()
    AtomicParquetDataset(filepath=str(out / "manifest.parquet")).save(manifest)
    seconds["write_parquet_s"] = time.perf_counter() - started
    seconds["total_s"] = sum(seconds.values())
    seconds["rows"] = len(manifest)
    seconds["valid"] = bool(report["success"])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=600_000)
    parser.add_argument("--root", type=Path, default=None, help="reuse (or create) the tree here")
    parser.add_argument("--keep", action="store_true", help="leave the tree on disk")
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions (cProfile)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="ingest-scale-"))
    try:
        results: dict = {}
        if not (root / f"{DOMAINS[0]}_train.txt").is_file():
            started = time.perf_counter()
            results["files_written"] = write_tree(root, args.files)
            results["write_tree_s"] = round(time.perf_counter() - started, 1)
        with tempfile.TemporaryDirectory() as out:
            data = domainnet_data_params(root)
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            timings = run_nodes(data, Path(out))
            if profiler:
                profiler.disable()
        results.update({k: round(v, 2) if isinstance(v, float) else v for k, v in timings.items()})
        results["cpu_count"] = os.cpu_count()
        print(json.dumps(results, indent=2))
        if profiler:
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(args.profile)
            print(text.getvalue())
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
