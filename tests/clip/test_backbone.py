"""Model artefacts: exact round trips, plain open_clip compatibility, real architectures from local files."""

from __future__ import annotations

import open_clip
import pytest
import torch

from lipsum_ft.clip.backbone import (
    WEIGHTS_FILE,
    ClipBundle,
    load_bundle,
    load_open_clip,
    new_model,
    read_spec,
    save_bundle,
)


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_round_trip_is_exact_and_loads_in_plain_open_clip(tmp_path):
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=1)
    head = {"weight": torch.randn(128, 10), "logit_scale": torch.tensor(14.2)}
    save_bundle(ClipBundle(model, spec, head), tmp_path / "m")
    loaded = load_bundle(tmp_path / "m")
    assert_same_state(model, loaded.model)
    assert torch.equal(loaded.head["weight"], head["weight"])
    assert loaded.spec.to_json() == spec.to_json()
    assert_same_state(model, open_clip.create_model(f"local-dir:{tmp_path / 'm'}"))


def test_the_spec_reads_back_without_the_weights_and_a_missing_config_is_named(tmp_path):
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=1)
    spec.extra["finetune"] = {"peak_memory_gib": 17.25}  # run metadata travels in the config
    save_bundle(ClipBundle(model, spec), tmp_path / "m")
    (tmp_path / "m" / WEIGHTS_FILE).unlink()  # read_spec must not touch the weights
    assert read_spec(tmp_path / "m").to_json() == spec.to_json()
    assert read_spec(tmp_path / "m").extra["finetune"]["peak_memory_gib"] == 17.25
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty/open_clip_config.json is missing"):
        read_spec(tmp_path / "empty")


def test_failed_save_leaves_the_old_folder_intact(tmp_path, monkeypatch):
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=1)
    save_bundle(ClipBundle(model, spec), tmp_path / "m")
    before = (tmp_path / "m" / "open_clip_model.safetensors").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("lipsum_ft.clip.backbone.save_file", broken)
    other, _ = new_model("TinyCLIP-ViT-P8-32", seed=2)
    with pytest.raises(OSError, match="disk full"):
        save_bundle(ClipBundle(other, spec), tmp_path / "m")
    assert (tmp_path / "m" / "open_clip_model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_real_architecture_from_a_local_checkpoint_file(tmp_path):
    reference = open_clip.create_model("ViT-S-32")
    checkpoint = tmp_path / "vit_s_32.pt"
    torch.save(reference.state_dict(), checkpoint)
    model, spec = load_open_clip("ViT-S-32", str(checkpoint))
    assert_same_state(reference, model)
    assert spec.pretrained == str(checkpoint) and spec.image_size == 224


def test_unknown_model_and_missing_checkpoint_are_named():
    with pytest.raises(ValueError, match="unknown open_clip model 'ViT-Nope'"):
        new_model("ViT-Nope", seed=0)
    with pytest.raises(FileNotFoundError, match="no_such_file.pt"):
        load_open_clip("ViT-S-32", "/tmp/no_such_file.pt")
