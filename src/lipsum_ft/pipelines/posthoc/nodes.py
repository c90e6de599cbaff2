"""Nodes of the ``posthoc`` pipeline: classifier states (image tower + head) for WiSE and TPGM."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch

from lipsum_ft.clip.backbone import ClipBundle
from lipsum_ft.clip.zeroshot import classifier_for
from lipsum_ft.data.images import load_split_for
from lipsum_ft.params.posthoc import PosthocParams
from lipsum_ft.params.shared import parse
from lipsum_ft.posthoc.tpgm import learn_tpgm
from lipsum_ft.posthoc.variant_names import tpgm_name
from lipsum_ft.posthoc.wise_grid import wise_grid

log = logging.getLogger(__name__)

State = dict[str, torch.Tensor]


def _states(
    pretrained_clip: ClipBundle, zeroshot_head: dict[str, torch.Tensor], finetuned_clip: dict[str, ClipBundle]
) -> tuple[State, dict[str, State]]:
    zero = classifier_for(pretrained_clip.model, zeroshot_head).state_dict()
    tuned = {m: classifier_for(b.model, b.head).state_dict() for m, b in finetuned_clip.items()}
    return zero, tuned


def wise_models(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    finetuned_clip: dict[str, ClipBundle],
    posthoc: dict[str, Any],
) -> Mapping[str, State]:
    """WiSE(method, alpha) for every fine-tuned method and every alpha of the grid, each made as the
    catalog writes it: one merged state in memory, whatever the size of the grid."""
    params = parse(PosthocParams, posthoc)
    zero, tuned = _states(pretrained_clip, zeroshot_head, finetuned_clip)
    return wise_grid(zero, tuned, params.wise.alphas)


def tpgm_models(
    pretrained_clip: ClipBundle,
    zeroshot_head: dict[str, torch.Tensor],
    finetuned_clip: dict[str, ClipBundle],
    manifest: pd.DataFrame,
    posthoc: dict[str, Any],
) -> tuple[dict[str, State], dict[str, Any]]:
    """TPGM projection of every fine-tuned method, radii learned on the reference domain's val split."""
    params = parse(PosthocParams, posthoc)
    spec = pretrained_clip.spec
    val = load_split_for(
        manifest, params.val_split, spec, params.loader, params.progress, [params.reference_domain]
    )[params.reference_domain]

    zero, tuned = _states(pretrained_clip, zeroshot_head, finetuned_clip)
    projected, summary = {}, {}
    for method, state in tuned.items():
        scratch = classifier_for(copy.deepcopy(pretrained_clip.model), zeroshot_head)
        projected[tpgm_name(method)], projection = learn_tpgm(
            scratch,
            zero,
            state,
            val.sample_batches(params.tpgm.batch_size, params.tpgm.seed),
            params.tpgm.steps,
            params.tpgm.lr,
            params.tpgm.norm,
            params.tpgm.exclude,
            params.progress,
            params.device,
        )
        ratios = torch.cat([projection.ratio(n).detach().flatten() for n in projection.names])
        summary[method] = {
            "norm": params.tpgm.norm,
            "tensors": len(projection.names),
            "mean_ratio": ratios.mean().item(),
            "min_ratio": ratios.min().item(),
            "max_ratio": ratios.max().item(),
        }
        log.info("TPGM %s: mean projection ratio %.3f", method, summary[method]["mean_ratio"])
    return projected, summary
