"""The embedded CLIP's pretraining loss: soft targets over same-class captions, weighted by domain."""

from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.params.pretrain import PretrainParams
from lipsum_ft.params.shared import ParameterError, parse
from lipsum_ft.training.pretraining import PretrainConfig, caption_bank, pretrain_clip, soft_clip_loss

LABELS = torch.tensor([0, 0, 0, 1, 0, 1])
DOMAINS = torch.tensor([0, 1, 0, 0, 2, 0])


def unit(rows: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(rows, 8, generator=torch.Generator().manual_seed(seed)), dim=-1)


def written_loss(images, texts, scale, weight):
    """The loss from its definition: target of pair (i, j) = [same class] * (1 if same domain else w),
    each row normalised; the mean of image->text and text->image soft cross-entropies."""
    n = len(LABELS)
    positives = torch.zeros(n, n)
    for i in range(n):
        for j in range(n):
            if LABELS[i] == LABELS[j]:
                positives[i, j] = 1.0 if DOMAINS[i] == DOMAINS[j] else weight
    logits = scale * images @ texts.T
    per_image = positives / positives.sum(dim=1, keepdim=True)  # image i's targets over texts
    per_text = positives.T / positives.T.sum(dim=1, keepdim=True)  # text j's targets over images
    image_to_text = -(per_image * logits.log_softmax(dim=1)).sum(dim=1).mean()
    text_to_image = -(per_text * logits.T.log_softmax(dim=1)).sum(dim=1).mean()
    return 0.5 * (image_to_text + text_to_image)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_soft_targets_weigh_other_domains_by_the_cross_domain_weight(weight):
    images, texts, scale = unit(6, 0), unit(6, 1), torch.tensor(7.3)
    loss = soft_clip_loss(images, texts, LABELS, scale, domains=DOMAINS, cross_domain_weight=weight)
    torch.testing.assert_close(loss, written_loss(images, texts, scale, weight))


def test_weight_one_is_the_class_positive_loss_bit_for_bit():
    # the default must leave the committed pretraining untouched
    images, texts, scale = unit(6, 2), unit(6, 3), torch.tensor(11.0)
    plain = soft_clip_loss(images, texts, LABELS, scale)
    assert torch.equal(soft_clip_loss(images, texts, LABELS, scale, domains=DOMAINS), plain)
    assert not torch.equal(
        soft_clip_loss(images, texts, LABELS, scale, domains=DOMAINS, cross_domain_weight=0.5), plain
    )


def test_weight_zero_pulls_an_image_toward_its_own_domain_caption_only():
    # image 0's captions of its class: 0 and 2 share its domain, 1 and 4 do not. Gradient descent raises
    # a logit whose d loss / d logit is negative: the own-domain ones at w = 0, all four at w = 1.
    images, texts = unit(6, 4), unit(6, 5)
    for weight, pulled in ((0.0, {0, 2}), (1.0, {0, 1, 2, 4})):
        logits = (5.0 * images @ texts.T).requires_grad_(True)
        scale = torch.tensor(1.0)
        soft_clip_loss(  # image features = the logits, text features = I: the loss sees these logits
            logits, torch.eye(6), LABELS, scale, domains=DOMAINS, cross_domain_weight=weight
        ).backward()
        assert {j for j in range(6) if logits.grad[0, j] < 0} == pulled


def test_pretraining_passes_domains_and_weight_to_the_loss():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    size = spec.image_size
    images = torch.randint(0, 256, (24, 3, size, size), generator=g, dtype=torch.uint8)
    labels, domains = torch.arange(24) % 2, (torch.arange(24) // 2) % 3
    tokens, index = caption_bank(
        open_clip.get_tokenizer(spec.name),
        ["photo", "sketch", "clipart"],
        ["zero", "one"],
        ["a {domain} of the digit {name}."],
        {},
        {},
    )

    def first_loss(weight: float) -> float:
        model.load_state_dict(initial)
        config = PretrainConfig(
            steps=1, batch_size=12, lr=1e-3, weight_decay=0.1, warmup_fraction=0.0, seed=0,
            cross_domain_weight=weight,
        )  # fmt: skip
        mean, std = spec.preprocess_cfg["mean"], spec.preprocess_cfg["std"]
        return pretrain_clip(model, images, labels, domains, tokens, index, mean, std, config, False)[0][
            "loss"
        ]

    # same batch, same init: only the targets differ, and the cell-only targets are harder to meet
    assert first_loss(0.0) > first_loss(1.0) + 1e-3


def test_cross_domain_weight_outside_zero_one_is_refused_by_name():
    params = {"source": "open_clip", "model": "ViT-B-16", "cross_domain_weight": 1.5}
    with pytest.raises(ParameterError, match=r"pretrain\.cross_domain_weight.*1\.5"):
        parse(PretrainParams, params)
