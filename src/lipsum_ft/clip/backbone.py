"""Build and load open_clip models: hub tags, local checkpoint files, the package's tiny configs.

Every model travels as an open_clip ``local-dir`` folder (``open_clip_config.json`` with
``model_cfg`` + ``preprocess_cfg``, and ``open_clip_model.safetensors``), so an artefact of this
project loads with plain ``open_clip.create_model("local-dir:<folder>")`` too.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.transform import PreprocessCfg
from safetensors.torch import load_file, save_file

from lipsum_ft.atomic import staged_folder

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
HEAD_FILE = "classification_head.safetensors"

open_clip.add_model_config(MODEL_CONFIG_DIR)


@dataclass
class ModelSpec:
    """Everything needed to rebuild a model: architecture, preprocessing and where it came from."""

    model_cfg: dict[str, Any]
    preprocess_cfg: dict[str, Any]
    name: str
    pretrained: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model_cfg": self.model_cfg,
            "preprocess_cfg": self.preprocess_cfg,
            "lipsum_ft": {"name": self.name, "pretrained": self.pretrained, **self.extra},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        info = dict(data.get("lipsum_ft", {}))
        return cls(
            model_cfg=data["model_cfg"],
            preprocess_cfg=data.get("preprocess_cfg", {}),
            name=info.pop("name", "unknown"),
            pretrained=info.pop("pretrained", None),
            extra=info,
        )

    @property
    def image_size(self) -> int:
        size = self.model_cfg["vision_cfg"]["image_size"]
        return size if isinstance(size, int) else size[0]

    @property
    def context_length(self) -> int:
        return self.model_cfg["text_cfg"].get("context_length", 77)


def model_config(name: str) -> dict[str, Any]:
    """The architecture config of a built-in or packaged open_clip model, naming valid choices if unknown."""
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(
            f"unknown open_clip model {name!r}; known: {', '.join(sorted(open_clip.list_models()))}"
        )
    return copy.deepcopy(cfg)


def _json_native(preprocess: dict[str, Any]) -> dict[str, Any]:
    """Tuples become lists so a spec equals itself after a JSON round trip."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in preprocess.items()}


def build_model(spec: ModelSpec) -> torch.nn.Module:
    """A randomly initialised model of ``spec``'s architecture (weights come from ``load_weights``)."""
    cfg = copy.deepcopy(spec.model_cfg)
    custom_text = cfg.pop("custom_text", False)
    model_class = open_clip.CustomTextCLIP if custom_text else open_clip.CLIP
    model = model_class(**cfg)
    model.visual.preprocess_cfg = dict(spec.preprocess_cfg)
    return model


def new_model(name: str, seed: int) -> tuple[torch.nn.Module, ModelSpec]:
    """A freshly initialised model of a named config, seeded: the start of tiny-CLIP pretraining."""
    cfg = model_config(name)
    torch.manual_seed(seed)
    spec = ModelSpec(
        model_cfg=cfg,
        preprocess_cfg=_json_native(asdict(PreprocessCfg(size=cfg["vision_cfg"]["image_size"]))),
        name=name,
    )
    return build_model(spec), spec


def load_open_clip(name: str, pretrained: str | None) -> tuple[torch.nn.Module, ModelSpec]:
    """Real weights: ``pretrained`` is an open_clip tag (downloads) or a local checkpoint file (offline)."""
    if pretrained and not open_clip.get_pretrained_cfg(name, pretrained) and not os.path.isfile(pretrained):
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise FileNotFoundError(
            f"pretrained {pretrained!r} is neither an open_clip tag of {name} ({tags}) nor an existing file"
        )
    tag_cfg = open_clip.get_pretrained_cfg(name, pretrained) if pretrained else {}
    quick_gelu = bool(tag_cfg.get("quick_gelu", False))
    model = open_clip.create_model(name, pretrained=pretrained, force_quick_gelu=quick_gelu)
    cfg = model_config(name)
    if quick_gelu:
        cfg["quick_gelu"] = True
    return model, ModelSpec(
        model_cfg=cfg,
        preprocess_cfg=_json_native(model.visual.preprocess_cfg),
        name=name,
        pretrained=str(pretrained) if pretrained else None,
    )


@dataclass
class ClipBundle:
    """A model with its spec and, once fine-tuned, its classification head
    (``weight`` D x K, ``logit_scale``).
    """

    model: torch.nn.Module
    spec: ModelSpec
    head: dict[str, torch.Tensor] | None = None


def save_bundle(bundle: ClipBundle, folder: Path) -> None:
    """Write ``folder`` atomically: a temp sibling folder is filled, then renamed into place."""
    with staged_folder(folder) as staging:
        write_bundle(bundle, staging)


def write_bundle(bundle: ClipBundle, folder: Path) -> None:
    """The files of a bundle into an existing (staging) folder."""
    (folder / CONFIG_FILE).write_text(json.dumps(bundle.spec.to_json(), indent=2, default=str))
    save_file(_cpu(bundle.model.state_dict()), str(folder / WEIGHTS_FILE))
    if bundle.head is not None:
        save_file(_cpu(bundle.head), str(folder / HEAD_FILE))


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def read_spec(folder: Path) -> ModelSpec:
    """The ``ModelSpec`` that ``save_bundle`` wrote into ``folder``, without reading the weights."""
    config_path = Path(folder) / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} is missing: {folder} is not a saved open_clip model folder")
    return ModelSpec.from_json(json.loads(config_path.read_text()))


def load_bundle(folder: Path) -> ClipBundle:
    """Rebuild what ``save_bundle`` wrote (strict: every tensor must match the architecture)."""
    folder = Path(folder)
    spec = read_spec(folder)
    model = build_model(spec)
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    head = load_file(str(folder / HEAD_FILE)) if (folder / HEAD_FILE).is_file() else None
    return ClipBundle(model=model, spec=spec, head=head)


def freeze(modules: Iterable[torch.nn.Module]) -> None:
    """Exclude modules from training: no gradients, eval mode (no dropout)."""
    for module in modules:
        module.eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
