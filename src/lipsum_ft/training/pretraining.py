"""Contrastive pretraining of a tiny CLIP on captioned DigitDomains images (the embedded default).

Captions name the domain and the class ("a sketch of the digit seven."). With ten classes a batch
holds many images of one class, and the plain CLIP loss would treat their captions as negatives;
the loss here makes every caption of the image's class a positive (soft targets), which keeps the
objective contrastive while removing those false negatives.

With every caption of the class weighted alike, nothing rewards the text tower for reading the domain
word, and "a sketch of ..." ends up with the features of "a photo of ...": CAR-FT's contexts then
coincide and it reduces to FT. ``cross_domain_weight`` < 1 weights captions of the image's own domain
above those of the class's other domains.

Two knobs make the pretraining set less like the curated downstream set, as web-scale pretraining
is (``pretraining_selection``): a fraction of captions name another class (alt-text that describes
something else), and each domain keeps only a share of its pretraining images (down to none: a domain
pretraining never shows). At their defaults (noise 0, every share 1) the set is today's, bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from lipsum_ft.clip.text import encode_tokens
from lipsum_ft.data.images import normalize, random_resized_crop_flip
from lipsum_ft.training.live import LiveSettings, curves_for
from lipsum_ft.training.schedule import adamw, decay_groups, warmup_cosine

CAPTION_NOISE_STREAM = 1  # SeedSequence entropy suffix of the caption-noise draws
DOMAIN_SHARE_STREAM = 2  # ... and of the per-image keys that choose which images a domain share keeps


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
    log_every: int = 10  # the live curves keep one point every K steps (the log keeps every step)
    live: LiveSettings | None = None  # DVCLive curves; None: none


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


def caption_labels(labels: np.ndarray, noise: float, num_classes: int, seed: int) -> np.ndarray:
    """The class each pretraining image's caption names: its own, or with probability ``noise`` one of
    the other classes, uniformly (web alt-text often names something the image does not show).

    Fixed per image, as an alt-text is, and drawn from (seed, stream) alone. The flip and the wrong class
    are drawn for every image whatever ``noise`` is, so the images wrong at a lower noise stay wrong (with
    the same class) at a higher one, and noise 0 returns ``labels`` unchanged.
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"pretrain.caption_noise={noise!r} must lie in [0, 1]")
    labels = np.asarray(labels)
    if noise == 0.0:
        return labels.copy()
    if num_classes < 2:
        raise ValueError(f"pretrain.caption_noise={noise!r} needs at least 2 classes, got {num_classes}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, CAPTION_NOISE_STREAM]))
    flip = rng.random(len(labels)) < noise
    other = (labels + rng.integers(1, num_classes, len(labels))) % num_classes  # never the true class
    return np.where(flip, other, labels).astype(labels.dtype)


def kept_for_pretraining(
    labels: np.ndarray, domains: Sequence[str], shares: Mapping[str, float], seed: int
) -> np.ndarray:
    """Which pretraining images stay (a boolean mask): of each (domain, class) cell, round(share x n)
    images, the share from ``shares`` (1 for a domain it does not name).

    Each image gets one seeded key and a cell keeps its lowest keys, so a smaller share keeps a subset of
    a larger one's images and one domain's share never moves another's choice.
    """
    labels, domains = np.asarray(labels), np.asarray(domains, dtype=object)
    unknown = sorted(set(shares) - set(domains.tolist()))
    if unknown:
        raise ValueError(
            f"pretrain.domain_shares names {unknown}, not in the pretrain split; "
            f"domains: {sorted(set(domains.tolist()))}"
        )
    keep = np.ones(len(labels), dtype=bool)
    if all(share == 1.0 for share in shares.values()):
        return keep
    keys = np.random.default_rng(np.random.SeedSequence([seed, DOMAIN_SHARE_STREAM])).random(len(labels))
    for domain, share in sorted(shares.items()):
        for label in np.unique(labels[domains == domain]):
            cell = np.flatnonzero((domains == domain) & (labels == label))
            kept = int(math.floor(share * len(cell) + 0.5))
            keep[cell[np.argsort(keys[cell], kind="stable")[kept:]]] = False
    return keep


def pretraining_selection(
    labels: np.ndarray,
    domains: Sequence[str],
    num_classes: int,
    caption_noise: float,
    domain_shares: Mapping[str, float],
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the pretraining images kept, the class each kept image's caption names).

    Captions are drawn over every pretraining image before the shares choose, so an image's caption
    does not depend on the shares. Refuses a selection that leaves a caption class without images.
    """
    captions = caption_labels(labels, caption_noise, num_classes, seed)
    keep = kept_for_pretraining(labels, domains, domain_shares, seed)
    missing = sorted(set(range(num_classes)) - set(captions[keep].tolist()))
    if missing:
        raise ValueError(
            f"pretrain.domain_shares={dict(domain_shares)} leaves no pretraining image captioned as "
            f"class(es) {missing}; raise a share"
        )
    return keep, captions[keep]


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


class _Batch(NamedTuple):
    """One step's inputs, drawn together so the generator's draws keep their order."""

    images: torch.Tensor  # augmented and normalised
    texts: torch.Tensor  # one caption's tokens per image
    labels: torch.Tensor
    domains: torch.Tensor


class _BalancedCaptions:
    """Class-balanced batches: each class gives as many images (from any domain), each with a random
    caption of its (domain, class) cell; every draw comes from the run's generator, in a fixed order."""

    def __init__(self, images, labels, domain_ids, tokens, caption_index, mean, std, config: PretrainConfig):
        """Index each class's images once; ``draw`` then only samples."""
        self.images, self.labels, self.domain_ids, self.tokens = images, labels, domain_ids, tokens
        self.caption_index, self.mean, self.std, self.config = caption_index, mean, std, config
        num_classes = int(caption_index.shape[1])
        self.by_class = [torch.nonzero(labels == k).flatten() for k in range(num_classes)]
        self.per_class = math.ceil(config.batch_size / num_classes)

    def draw(self, generator: torch.Generator) -> _Batch:
        """One batch: images per class, shuffled and cut to size, a caption each, then crop and flip."""
        config, labels, domain_ids = self.config, self.labels, self.domain_ids
        picks = torch.cat(
            [
                members[torch.randint(len(members), (self.per_class,), generator=generator)]
                for members in self.by_class
            ]
        )
        picks = picks[torch.randperm(len(picks), generator=generator)[: config.batch_size]]
        cells = self.caption_index[domain_ids[picks], labels[picks]]
        choice = torch.randint(cells.shape[1], (len(picks),), generator=generator)
        texts = self.tokens[cells[torch.arange(len(picks)), choice]]
        # drop all-padding columns: causal tower, same features
        texts = texts[:, : int((texts != 0).sum(dim=1).max())]
        batch = random_resized_crop_flip(
            normalize(self.images[picks], self.mean, self.std), generator, config.crop_scale, flip=config.flip
        )
        return _Batch(batch, texts, labels[picks], domain_ids[picks])


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
    domain), each paired with a random caption of its (domain, class) cell. The live curves get the
    same rows (``config.live``), one point every ``config.log_every`` steps.
    """
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    batches = _BalancedCaptions(images, labels, domain_ids, tokens, caption_index, mean, std, config)
    optimizer = adamw(decay_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    scheduler = warmup_cosine(optimizer, config.steps, int(config.warmup_fraction * config.steps))
    model.train()
    log: list[dict[str, float]] = []
    curves = curves_for(config.live, config.log_every, config.steps)
    bar = tqdm(range(config.steps), desc="pretrain CLIP", unit="step", disable=not progress)
    for step in bar:
        started = time.perf_counter()
        batch = batches.draw(generator)
        loss, lr = _pretrain_step(model, optimizer, scheduler, batch, config)
        row = _log_row(model, step, loss, lr, len(batch.labels) / (time.perf_counter() - started))
        log.append(row)
        curves.add([row])
        bar.set_postfix(
            loss=f"{row['loss']:.3f}", scale=f"{row['logit_scale']:.1f}", img_s=f"{row['images_per_s']:.0f}"
        )
    curves.finish({"loss": log[-1]["loss"], "logit_scale": log[-1]["logit_scale"]})
    model.eval()
    return log


def _pretrain_step(model: nn.Module, optimizer, scheduler, batch: _Batch, config: PretrainConfig):
    """Loss, backward, optimizer and scheduler step, then the logit-scale clamp; returns (loss, lr used)."""
    image_features = F.normalize(model.encode_image(batch.images), dim=-1)
    text_features = F.normalize(encode_tokens(model, batch.texts), dim=-1)
    loss = soft_clip_loss(
        image_features,
        text_features,
        batch.labels,
        model.logit_scale.exp(),
        domains=batch.domains,
        cross_domain_weight=config.cross_domain_weight,
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    lr = optimizer.param_groups[0]["lr"]  # the lr this step uses (the scheduler then moves on)
    optimizer.step()
    scheduler.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(config.max_logit_scale))
    return loss, lr


def _log_row(model: nn.Module, step: int, loss: torch.Tensor, lr: float, rate: float) -> dict[str, float]:
    """The step's log row, read from the device every step (the returned log has one row per step)."""
    return {
        "step": step + 1,
        "loss": loss.item(),
        "lr": lr,
        "logit_scale": model.logit_scale.exp().item(),
        "images_per_s": rate,
    }
