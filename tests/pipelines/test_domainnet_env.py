"""`kedro run --env=domainnet` end to end on CPU over a miniature DomainNet tree
(streamed images, local weights).
"""

from __future__ import annotations

import json

import numpy as np
import open_clip
import pandas as pd
import pytest
import torch
from PIL import Image

from lipsum_ft.clip import backbone  # noqa: F401  (registers the packaged model configs with open_clip)
from tests.kedro_helpers import copy_project, run_in

pytestmark = pytest.mark.slow
DOMAINS = ["real", "painting", "clipart", "infograph", "sketch", "quickdraw"]
CLASSES = ["aircraft_carrier", "bee", "zebra"]


def miniature_domainnet(root):
    """The official layout: <domain>/<class>/<file>.jpg and <domain>_{train,test}.txt
    with 'path label' lines.
    """
    rng = np.random.default_rng(0)
    for domain in DOMAINS:
        lines = {"train": [], "test": []}
        for label, name in enumerate(CLASSES):
            (root / domain / name).mkdir(parents=True)
            for i in range(6):
                relative = f"{domain}/{name}/{domain}_{label:03d}_{i:06d}.jpg"
                pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
                pixels[..., label] = 255  # a class signal a model could pick up
                Image.fromarray(pixels).save(root / relative, quality=90)
                lines["train" if i < 4 else "test"].append(f"{relative} {label}")
        for split, rows in lines.items():
            (root / f"{domain}_{split}.txt").write_text("\n".join(rows) + "\n")


def tiny_domainnet_settings(tmp_path, workers: int, checkpoint_every: int) -> dict:
    """A miniature DomainNet tree under ``tmp_path`` and the conf overrides that run it on CPU in
    seconds: TinyCLIP from a local weights file, streamed images, a handful of steps."""
    root = tmp_path / "domainnet"
    miniature_domainnet(root)
    weights = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model("TinyCLIP-ViT-P8-32").state_dict(), weights)
    loader = {
        "mode": "stream",
        "workers": workers,
        "pin_memory": False,
        "persistent_workers": False,
        "prefetch_factor": 2 if workers else None,
    }
    return {
        "data": {"layout": {"root": str(root)}, "carve_validation": {"fraction": 0.25}},
        "pretrain": {"model": "TinyCLIP-ViT-P8-32", "pretrained": str(weights)},
        "zeroshot": {"device": "cpu", "loader": loader, "batch_size": 16},
        "finetune": {
            "accelerator": "cpu",
            "precision": "32-true",
            "steps": 4,
            "batch_size": 8,
            "eval_every": 2,
            "checkpoint_every": checkpoint_every,
            "loader": loader,
            "progress": False,
            "lipsum": {"num_texts": 8},
        },
        "posthoc": {
            "device": "cpu",
            "loader": loader,
            "wise": {"alphas": [0.0, 0.5, 1.0]},
            "tpgm": {"steps": 2, "batch_size": 4},
        },
        "evaluate": {"device": "cpu", "loader": loader, "batch_size": 16},
    }


def test_domainnet_environment_runs_end_to_end_offline(tmp_path):
    overrides = tiny_domainnet_settings(tmp_path, workers=2, checkpoint_every=0)
    project = copy_project(tmp_path / "project")
    run_in(project, env="domainnet", **overrides)
    manifest = pd.read_parquet(project / "envs/domainnet/data/02_intermediate/manifest.parquet")
    assert set(manifest["domain"]) == set(DOMAINS)
    real = manifest[manifest["domain"] == "real"]
    assert (
        set(real["split"]) == {"train", "val", "test"} and (real["split"] == "val").sum() == 3
    )  # one per class
    assert json.loads(
        (project / "envs/domainnet/data/02_intermediate/classnames.json").read_text()
    ) == sorted(CLASSES)
    results = pd.read_csv(project / "envs/domainnet/reports/results.csv")
    assert set(results["domain"]) == set(DOMAINS)
    assert results.loc[results["role"] == "reference", "domain"].unique().tolist() == ["real"]
    assert {"zeroshot", "ft", "lipsum", "tpgm-lipsum", "wise-ft-0.50"} <= set(results["variant"])
