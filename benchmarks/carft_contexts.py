"""Does CAR-FT's context distribution carry information for this zero-shot model?

CAR-FT regularises KL(p_0(context|x) || p_theta(context|x)) over prompt-template contexts
(``finetune.carft.templates``). When the zero-shot text tower maps every template to nearly the same
feature, p_0 is uniform, the KL stays near zero whatever the image tower does, and CAR-FT reduces to
FT. This script measures that on a reproduced project (run `make run` first) and on any other project
folder: how far apart the context features are, how peaked p_0 is on the reference domain's training
images, and the KL that each fine-tuned model of the project reaches there.

    .venv/bin/python benchmarks/carft_contexts.py [--project .] [--env base] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from lipsum_ft.atomic import atomic_path
from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import parse
from lipsum_ft.training.runs import reference_data, run_objective
from project_session import project_session

ROOT = Path(__file__).resolve().parents[1]


def context_statistics(
    contexts: torch.Tensor,
    zero_features: torch.Tensor,
    finetuned_features: dict[str, torch.Tensor],
    scale: float,
) -> dict:
    """Spread of the T unit context features, and p_0(context|x) and KL(p_0 || p_m) over the images.

    ``zero_features`` and each of ``finetuned_features`` are unit image features (N, dim) of the same
    images. The entropy is reported as a fraction of log T: 1 means p_0 is uniform.
    """
    count = contexts.shape[0]
    cosine = contexts @ contexts.T
    off_diagonal = cosine[~torch.eye(count, dtype=torch.bool)]
    log_p0 = F.log_softmax(scale * zero_features @ contexts.T, dim=-1)
    entropy = -(log_p0.exp() * log_p0).sum(dim=-1)
    kl = {}
    for name, features in sorted(finetuned_features.items()):
        log_p = F.log_softmax(scale * features @ contexts.T, dim=-1)
        kl[name] = F.kl_div(log_p, log_p0, log_target=True, reduction="batchmean").item()
    return {
        "contexts": count,
        "context_cosine_min": off_diagonal.min().item(),
        "context_cosine_max": off_diagonal.max().item(),
        "p0_max_prob_mean": log_p0.exp().max(dim=-1).values.mean().item(),
        "p0_entropy_fraction_of_uniform": (entropy.mean() / math.log(count)).item(),
        "kl_p0_to_finetuned": kl,
    }


@torch.inference_mode()
def unit_features(visual: torch.nn.Module, batches) -> torch.Tensor:
    return torch.cat([F.normalize(visual(x), dim=-1) for x in batches])


def measure(project: Path, env: str, batch_size: int) -> dict:
    """Load the project's artefacts through its catalog and measure ``context_statistics``."""
    logging.disable(logging.INFO)  # Kedro logs to stdout from its import on; keep stdout for the JSON
    with project_session(project, env) as session:
        context = session.load_context()
        catalog = context.catalog
        clip, head = catalog.load("pretrained_clip"), catalog.load("zeroshot_head")
        classnames, manifest = catalog.load("classnames"), catalog.load("manifest")
        finetuned = catalog.load("finetuned_clip")
        params = parse(FinetuneParams, context.params["finetune"])
        spec = clip.spec
        # the manifest's image paths are relative to the project
        train, _ = reference_data(manifest, params, spec)
    scale = float(head["logit_scale"])
    # the contexts a run builds: the objective comes from the same function as in finetune_one
    objective = run_objective("carft", params, clip, head, classnames)
    clip.model.eval()
    zero = unit_features(clip.model.visual, train.eval_batches(batch_size))
    tuned = {
        name: unit_features(bundle.model.eval().visual, train.eval_batches(batch_size))
        for name, bundle in finetuned.items()
    }
    figures = context_statistics(objective.contexts, zero, tuned, scale)
    figures.update(
        project=str(project),
        images=len(zero),
        reference_domain=params.reference_domain,
        templates=list(params.carft.templates),
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--env", default="base")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--output", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    figures = measure(args.project.resolve(), args.env, args.batch)
    text = json.dumps(figures, indent=2)
    if args.output:
        with atomic_path(args.output) as temporary:
            temporary.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
