"""Contrastive pretraining of a tiny CLIP on captioned DigitDomains images (the embedded default).

Captions name the domain and the class ("a sketch of the digit seven."). With ten classes a batch
holds many images of one class, and the plain CLIP loss would treat their captions as negatives;
the loss here makes every caption of the image's class a positive (soft targets), which keeps the
objective contrastive while removing those false negatives.

With every caption of the class weighted alike, nothing rewards the text tower for reading the domain
word, and "a sketch of ..." ends up with the features of "a photo of ...": CAR-FT's contexts then
coincide and it reduces to FT. ``cross_domain_weight`` < 1 weights captions of the image's own domain
above those of the class's other domains.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from lipsum_ft.clip.text import encode_tokens
from lipsum_ft.data.images import normalize, random_resized_crop_flip
from lipsum_ft.training.schedule import adamw, decay_groups, warmup_cosine


@dataclass(frozen=True)
class PretrainConfig:
    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_fraction: float
    seed: int
    crop_scale: tuple[float, float] = (0.5, 1.0)
    flip: bool = False
    max_logit_scale: float = 100.0
    cross_domain_weight: float = 1.0


def caption_bank(
    tokenizer,
    domains: Sequence[str],
    classnames: Sequence[str],
    templates: Sequence[str],
    domain_words: Mapping[str, Sequence[str]],
    class_aliases: Mapping[str, Sequence[str]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every caption of every (domain, class), tokenised: tokens (N, ctx) and an index (D, K, C) into them.

    ``templates`` use ``{domain}`` and ``{name}``; each (domain, class) gets every combination of
    template, domain word and class alias, so all cells hold the same number C of captions.
    """
    texts, index = [], []
    for domain in domains:
        row = []
        for name in classnames:
            cell = []
            for template in templates:
                for word in domain_words.get(domain, [domain]):
                    for alias in [name, *class_aliases.get(name, [])]:
                        cell.append(len(texts))
                        texts.append(template.format(domain=word, name=alias))
            row.append(cell)
        index.append(row)
    return tokenizer(texts), torch.tensor(index)


def soft_clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    labels: torch.Tensor,
    scale: torch.Tensor,
    domains: torch.Tensor | None = None,
    cross_domain_weight: float = 1.0,
) -> torch.Tensor:
    """Symmetric CLIP loss whose targets spread over every pair that shares the class.

    Given the pairs' ``domains``, a same-class pair from two domains weighs ``cross_domain_weight``
    against 1 for a pair from one domain (0: only the (domain, class) cell is positive).
    """
    logits = scale * image_features @ text_features.T
    positives = (labels[:, None] == labels[None, :]).float()
    if domains is not None and cross_domain_weight != 1.0:
        same_domain = (domains[:, None] == domains[None, :]).float()
        positives = positives * (cross_domain_weight + (1.0 - cross_domain_weight) * same_domain)
    targets = positives / positives.sum(dim=1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


def pretrain_clip(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    domain_ids: torch.Tensor,
    tokens: torch.Tensor,
    caption_index: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    config: PretrainConfig,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` in place; returns one log row per step (loss, lr, logit scale, images/s).

    Batches are class-balanced: each class contributes the same number of images (drawn from any
    domain), each paired with a random caption of its (domain, class) cell.
    """
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    num_classes = int(caption_index.shape[1])
    by_class = [torch.nonzero(labels == k).flatten() for k in range(num_classes)]
    per_class = math.ceil(config.batch_size / num_classes)
    optimizer = adamw(decay_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    scheduler = warmup_cosine(optimizer, config.steps, int(config.warmup_fraction * config.steps))
    max_log_scale = math.log(config.max_logit_scale)
    model.train()
    log: list[dict[str, float]] = []
    bar = tqdm(range(config.steps), desc="pretrain CLIP", unit="step", disable=not progress)
    for step in bar:
        started = time.perf_counter()
        picks = torch.cat(
            [members[torch.randint(len(members), (per_class,), generator=generator)] for members in by_class]
        )
        picks = picks[torch.randperm(len(picks), generator=generator)[: config.batch_size]]
        cells = caption_index[domain_ids[picks], labels[picks]]
        choice = torch.randint(cells.shape[1], (len(picks),), generator=generator)
        texts = tokens[cells[torch.arange(len(picks)), choice]]
        texts = texts[
            :, : int((texts != 0).sum(dim=1).max())
        ]  # drop all-padding columns: causal tower, same features
        batch = random_resized_crop_flip(
            normalize(images[picks], mean, std), generator, config.crop_scale, flip=config.flip
        )
        image_features = F.normalize(model.encode_image(batch), dim=-1)
        text_features = F.normalize(encode_tokens(model, texts), dim=-1)
        loss = soft_clip_loss(
            image_features,
            text_features,
            labels[picks],
            model.logit_scale.exp(),
            domains=domain_ids[picks],
            cross_domain_weight=config.cross_domain_weight,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = optimizer.param_groups[0]["lr"]  # the lr this step uses (the scheduler then moves on)
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, max_log_scale)
        rate = len(picks) / (time.perf_counter() - started)
        row = {
            "step": step + 1,
            "loss": loss.item(),
            "lr": lr,
            "logit_scale": model.logit_scale.exp().item(),
            "images_per_s": rate,
        }
        log.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", scale=f"{row['logit_scale']:.1f}", img_s=f"{rate:.0f}")
    model.eval()
    return log
