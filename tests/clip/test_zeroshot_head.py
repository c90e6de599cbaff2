"""The project's zero-shot head is open_clip's, and the classifier scores with it."""

from __future__ import annotations

import open_clip
import torch

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.clip.prompts import resolve_templates
from lipsum_ft.clip.zeroshot import ClipClassifier, build_zeroshot_weights, classifier_for

CLASSNAMES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]


def test_head_equals_open_clip_build_zero_shot_classifier():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=3)
    model.eval()
    tokenizer = open_clip.get_tokenizer("TinyCLIP-ViT-P8-32")
    templates = ["a photo of the digit {}.", "a sketch of a {}.", "an infographic showing {}."]
    ours = build_zeroshot_weights(model, tokenizer, CLASSNAMES, templates, classes_per_batch=5)
    with torch.no_grad():
        reference = open_clip.build_zero_shot_classifier(
            model, tokenizer, CLASSNAMES, templates, num_classes_per_batch=4
        )
    assert ours.shape == (spec.model_cfg["embed_dim"], len(CLASSNAMES))
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.norm(dim=0), torch.ones(len(CLASSNAMES)))


def test_openai_template_set_is_the_80_clip_templates():
    templates = resolve_templates("openai_imagenet")
    assert len(templates) == 80
    assert templates[0]("dog") == "a bad photo of a dog."


def test_classifier_logits_are_scaled_cosines():
    model, _ = new_model("TinyCLIP-ViT-P8-32", seed=0)
    weight = torch.nn.functional.normalize(torch.randn(128, 4), dim=0)
    classifier = ClipClassifier(model.visual, weight, logit_scale=14.0).eval()
    images = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        features = torch.nn.functional.normalize(model.visual(images), dim=-1)
        torch.testing.assert_close(classifier(images), 14.0 * features @ weight)


def test_head_is_the_renormalised_mean_of_unit_prompt_features_written_out():
    # each prompt feature is normalised before the mean, and the mean renormalised: skipping either
    # step changes the columns (prompt features of a random tower have unequal norms)
    model, _ = new_model("TinyCLIP-ViT-P8-32", seed=5)
    model.eval()
    tokenizer = open_clip.get_tokenizer("TinyCLIP-ViT-P8-32")
    templates = ["a photo of a {}.", "a {} drawn badly.", "{}!"]
    names = CLASSNAMES[:5]
    columns = []
    with torch.no_grad():
        for name in names:
            prompts = model.encode_text(tokenizer([t.format(name) for t in templates]))
            assert prompts.norm(dim=-1).std() > 1e-3  # unequal norms: normalising first matters
            mean = torch.stack([p / p.norm() for p in prompts]).mean(dim=0)
            columns.append(mean / mean.norm())
    expected = torch.stack(columns, dim=1)
    for per_batch in (2, 5):  # batches that split the classes and one that does not
        ours = build_zeroshot_weights(model, tokenizer, names, templates, classes_per_batch=per_batch)
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


def test_classifier_for_shares_the_tower_and_takes_weight_and_scale_from_the_head():
    model, _ = new_model("TinyCLIP-ViT-P8-32", seed=0)
    weight = torch.randn(128, 3)
    classifier = classifier_for(model, {"weight": weight, "logit_scale": torch.tensor(7.5)})
    assert classifier.visual is model.visual
    assert torch.equal(classifier.head, weight) and classifier.logit_scale.item() == 7.5
