"""The ``pretrain`` node hands the pretraining exactly the images and caption classes that
``pretrain.domain_shares`` and ``pretrain.caption_noise`` say (issue 23), and today's at their defaults."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import lipsum_ft.pipelines.pretrain.nodes as nodes

REPO = Path(__file__).resolve().parents[3]
CLASSNAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DOMAINS = ["photo", "sketch", "clipart"]


def manifest(per_cell: int) -> pd.DataFrame:
    """``per_cell`` pretrain rows of every (domain, class), shuffled, plus a train row each."""
    rows = [
        {"path": f"{d}/{CLASSNAMES[k]}/{d}_{i:04d}.png", "label": k, "domain": d, "split": split}
        for d in DOMAINS
        for k in range(10)
        for i, split in enumerate(["pretrain"] * per_cell + ["train"])
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


def pretrained_on(frame: pd.DataFrame, monkeypatch, **knobs) -> dict:
    """What the node decodes and passes to ``pretrain_clip`` under conf/base's pretrain with ``knobs``."""
    seen = {}

    def decode(paths, size, **_):
        seen["paths"] = list(paths)
        return torch.zeros(len(paths), 3, size, size, dtype=torch.uint8)

    def pretrain(model, images, labels, domain_ids, *args, **kwargs):
        seen.update(labels=labels.clone(), domain_ids=domain_ids.clone())
        return [{"loss": 0.0, "logit_scale": 1.0}]

    monkeypatch.setattr(nodes, "decode_images", decode)
    monkeypatch.setattr(nodes, "pretrain_clip", pretrain)
    params = yaml.safe_load((REPO / "conf/base/parameters_pretrain.yml").read_text())["pretrain"]
    nodes.pretrain_model(frame, CLASSNAMES, params | {"progress": False, **knobs})
    return seen


@pytest.mark.parametrize("shares", [{}, None])
def test_without_design_knobs_every_pretrain_row_passes_with_its_own_label(monkeypatch, shares):
    frame = manifest(4)
    seen = pretrained_on(frame, monkeypatch, caption_noise=0.0, domain_shares=shares)
    rows = frame[frame["split"] == "pretrain"]
    assert seen["paths"] == rows["path"].tolist()
    assert torch.equal(seen["labels"], torch.tensor(rows["label"].to_numpy()))


def test_the_calibrated_defaults_never_show_pretraining_the_reference_domain(monkeypatch):
    frame = manifest(4)
    seen = pretrained_on(frame, monkeypatch)  # conf/base as committed (reports/calibration/wide)
    rows = frame[(frame["split"] == "pretrain") & (frame["domain"] != "photo")]
    assert seen["paths"] == rows["path"].tolist()
    assert torch.equal(seen["labels"], torch.tensor(rows["label"].to_numpy()))


@pytest.mark.parametrize("env", ["domainnet", "imagenet"])
def test_real_weights_envs_null_the_embedded_design_and_setting_it_is_refused(env):
    from kedro.config import OmegaConfigLoader

    from lipsum_ft.params.pretrain import PretrainParams
    from lipsum_ft.params.shared import parse
    from lipsum_ft.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(REPO / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env})
    params = loader["parameters"]["pretrain"]
    assert parse(PretrainParams, params).domain_shares == {}
    with pytest.raises(ValueError, match="pretrain.caption_noise and pretrain.domain_shares"):
        parse(PretrainParams, {**params, "domain_shares": {"real": 0.5}})


def test_share_zero_decodes_no_reference_image_and_keeps_domain_indices(monkeypatch):
    frame = manifest(4)
    seen = pretrained_on(frame, monkeypatch, domain_shares={"photo": 0.0})
    assert seen["paths"] and not any(p.startswith("photo/") for p in seen["paths"])
    assert len(seen["paths"]) == 2 * 10 * 4
    # the caption bank keeps every domain of the split: sketch is still domain 2 of [clipart, photo, sketch]
    sketch = [i for i, p in enumerate(seen["paths"]) if p.startswith("sketch/")]
    assert set(seen["domain_ids"][sketch].tolist()) == {2}


def test_share_half_decodes_half_of_the_reference_images(monkeypatch):
    seen = pretrained_on(manifest(6), monkeypatch, domain_shares={"photo": 0.5})
    assert sum(p.startswith("photo/") for p in seen["paths"]) == 10 * 3
    assert sum(p.startswith("sketch/") for p in seen["paths"]) == 10 * 6


def test_caption_noise_relabels_its_fraction_of_the_captions(monkeypatch):
    frame = manifest(40)
    rows = frame[frame["split"] == "pretrain"]
    seen = pretrained_on(frame, monkeypatch, caption_noise=0.3, domain_shares={})
    assert seen["paths"] == rows["path"].tolist()
    wrong = (seen["labels"].numpy() != rows["label"].to_numpy()).mean()
    assert abs(wrong - 0.3) <= 4 * math.sqrt(0.3 * 0.7 / len(rows))  # 1,200 captions: within 0.053
    again = pretrained_on(frame, monkeypatch, caption_noise=0.3, domain_shares={})
    assert torch.equal(again["labels"], seen["labels"])
    other_seed = pretrained_on(frame, monkeypatch, caption_noise=0.3, domain_shares={}, seed=1)
    assert not np.array_equal(other_seed["labels"].numpy(), seen["labels"].numpy())


def test_a_share_of_a_domain_outside_the_split_is_refused_by_name(monkeypatch):
    with pytest.raises(ValueError, match=r"pretrain\.domain_shares.*'quickdraw'"):
        pretrained_on(manifest(2), monkeypatch, domain_shares={"quickdraw": 0.5})
