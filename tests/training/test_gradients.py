"""Gradients: each regulariser adds the gradient it should to the trainable parts, frozen parts get none.

Checked in float64 against central finite differences along a random direction (the regulariser as a
function of every trainable tensor), so a term that is computed right but detached, or weighted
wrongly, fails; then one real AdamW step shows the frozen zero-shot model, the text tower and the
logit scale do not move.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.training.objectives import lipsum_regulariser
from lipsum_ft.training.schedule import adamw, decay_groups
from tests.training.objective_helpers import build_objective

CLASSNAMES = ["zero", "one", "two", "three"]
TEMPLATES = ["a photo of the digit {}.", "a sketch of the digit {}."]
REGULARISED = ["lipsum", "kd", "l2sp", "carft"]
COEFFICIENT = 0.7  # not 1: a dropped or doubled weight shows


@pytest.fixture(scope="module")
def zero_shot():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = F.normalize(torch.randn(128, len(CLASSNAMES), generator=torch.Generator().manual_seed(1)), dim=0)
    return model.eval(), spec, head


def objective(zero_shot, method: str, dtype=torch.float64):
    model, spec, head = zero_shot
    built = build_objective(
        method,
        model,
        head,
        14.0,
        spec=spec,
        classnames=CLASSNAMES,
        coefficient=COEFFICIENT,
        num_texts=12,  # Lipsum-FT: 12 random-token texts
        templates=TEMPLATES,
    ).to(dtype)
    with torch.no_grad():  # move theta away from theta_0, where every regulariser is flat
        g = torch.Generator().manual_seed(7)
        for p in built.classifier.visual.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return built


def batch(dtype=torch.float64):
    g = torch.Generator().manual_seed(3)
    images = torch.randn(6, 3, 32, 32, generator=g).to(dtype)
    return images, torch.randint(0, len(CLASSNAMES), (6,), generator=g)


def test_lipsum_regulariser_passes_gradcheck():
    g = torch.Generator().manual_seed(0)
    v_theta = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    v_zero = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lipsum_regulariser, (v_theta, v_zero))
    # and the gradient is the closed form (v_theta - v_0) / (B * M)
    (grad,) = torch.autograd.grad(lipsum_regulariser(v_theta, v_zero), v_theta)
    torch.testing.assert_close(grad, (v_theta - v_zero).detach() / 15)


@pytest.mark.parametrize("method", REGULARISED)
def test_regulariser_gradient_matches_finite_differences_on_the_image_tower(zero_shot, method):
    built = objective(zero_shot, method)
    images, _ = batch()
    trainable = [p for p in built.parameters() if p.requires_grad]

    def reg() -> torch.Tensor:
        return built.regulariser(images, built.classifier.features(images), 2)

    grads = torch.autograd.grad(reg(), trainable, allow_unused=True)
    g = torch.Generator().manual_seed(11)
    direction = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in trainable]
    eps = 1e-6
    with torch.no_grad():
        for p, d in zip(trainable, direction, strict=True):
            p.add_(eps * d)
        plus = reg()
        for p, d in zip(trainable, direction, strict=True):
            p.sub_(2 * eps * d)
        minus = reg()
        for p, d in zip(trainable, direction, strict=True):
            p.add_(eps * d)
    numeric = (plus - minus) / (2 * eps)
    analytic = sum((gr * d).sum() for gr, d in zip(grads, direction, strict=True) if gr is not None)
    assert abs(numeric.item()) > 1e-3  # the direction does move R
    assert analytic.item() == pytest.approx(numeric.item(), rel=1e-5)
    visual = [gr for (name, _), gr in zip(built.named_parameters(), grads, strict=False) if "visual" in name]
    assert any(gr is not None and gr.abs().sum() > 0 for gr in visual)  # R reaches the image tower


@pytest.mark.parametrize("method", REGULARISED)
def test_the_loss_gradient_is_cross_entropy_plus_the_weighted_regulariser(zero_shot, method):
    built = objective(zero_shot, method)
    images, labels = batch()
    trainable = [p for p in built.parameters() if p.requires_grad]
    loss, terms = built(images, labels, 2)
    total = torch.autograd.grad(loss, trainable, allow_unused=True)
    features = built.classifier.features(images)
    ce = F.cross_entropy(built.classifier.logits_from_features(features), labels)
    ce_grad = torch.autograd.grad(ce, trainable, allow_unused=True)
    reg_grad = torch.autograd.grad(
        built.regulariser(images, built.classifier.features(images), 2), trainable, allow_unused=True
    )
    torch.testing.assert_close(terms["ce"], ce.detach())
    zero = torch.zeros(())
    for t, c, r in zip(total, ce_grad, reg_grad, strict=True):
        expected = (c if c is not None else zero) + COEFFICIENT * (r if r is not None else zero)
        torch.testing.assert_close(t if t is not None else torch.zeros_like(expected), expected)


TERMS = {"ft": {"ce"}, "lp": {"ce"}, "lpft": {"ce"}, "flyp": {"contrastive"}} | {
    m: {"ce", "reg"} for m in REGULARISED
}


@pytest.mark.parametrize("method", sorted(TERMS))
def test_a_step_moves_the_trainable_parts_and_nothing_frozen(zero_shot, method):
    built = objective(zero_shot, method, dtype=torch.float32)
    reference = {k: v.clone() for k, v in built.reference.state_dict().items()}
    scale = built.classifier.logit_scale.clone()
    names = {n for n, p in built.named_parameters() if p.requires_grad}
    assert not any(n.startswith("reference.") for n in names)  # the zero-shot CLIP is frozen
    assert not any("logit_scale" in n for n in names)  # so is the logit scale
    if method != "flyp":  # only the image tower and the head train; FLYP also trains its text tower
        assert all(n == "classifier.head" or n.startswith("classifier.visual.") for n in names)
    visual_before = {k: v.clone() for k, v in built.classifier.visual.state_dict().items()}
    optimizer = adamw(decay_groups(built, 0.1), lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    images, labels = batch(torch.float32)
    built.train()
    loss, terms = built(images, labels, 2)
    assert terms.keys() == TERMS[method]
    optimizer.zero_grad()
    loss.backward()
    assert all(p.grad is None for p in built.reference.parameters())
    if method == "flyp":
        assert built.student.logit_scale.grad is None
        assert built.student.token_embedding.weight.grad.abs().sum() > 0
    optimizer.step()
    assert all(torch.equal(v, built.reference.state_dict()[k]) for k, v in reference.items())
    assert torch.equal(built.classifier.logit_scale, scale) and scale.item() == pytest.approx(14.0)
    if method == "flyp":
        assert built.student.logit_scale.item() == reference["logit_scale"].item()
    after = built.classifier.visual.state_dict()
    changed = any(not torch.equal(visual_before[k], after[k]) for k in after)
    assert changed == (method != "lp")  # the linear probe's tower stays put


def moved(zero_shot, method: str):
    return objective(zero_shot, method, dtype=torch.float32)


def test_l2sp_and_kd_values_written_out(zero_shot):
    model = zero_shot[0]
    images, _ = batch(torch.float32)
    l2sp = moved(zero_shot, "l2sp")
    start = dict(model.visual.named_parameters())
    expected = sum(((p - start[n]) ** 2).sum() for n, p in l2sp.classifier.visual.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(l2sp.regulariser(images, None, 0), expected)
        kd = moved(zero_shot, "kd")
        tuned = F.normalize(kd.classifier.visual(images), dim=1)
        zero = F.normalize(model.visual(images), dim=1)
        per_image = [((tuned[i] - zero[i]) ** 2).sum() for i in range(len(images))]
        torch.testing.assert_close(
            kd.regulariser(images, tuned, 0), sum(per_image) / len(images), rtol=1e-4, atol=1e-7
        )


def test_carft_value_written_out(zero_shot):
    import open_clip

    model, spec, _ = zero_shot
    carft = moved(zero_shot, "carft")
    images, _ = batch(torch.float32)
    tokenizer = open_clip.get_tokenizer(spec.name)
    with torch.no_grad():
        contexts = []
        for template in TEMPLATES:  # a context: the template's prompts over every class, averaged
            prompts = F.normalize(
                model.encode_text(tokenizer([template.format(c) for c in CLASSNAMES])), dim=1
            )
            mean = prompts.mean(dim=0)
            contexts.append(mean / mean.norm())
        contexts = torch.stack(contexts)
        tuned = F.normalize(carft.classifier.visual(images), dim=1)
        zero = F.normalize(model.visual(images), dim=1)
        p = (14.0 * tuned @ contexts.T).softmax(dim=1)
        p0 = (14.0 * zero @ contexts.T).softmax(dim=1)
        expected = (p0 * (p0.log() - p.log())).sum() / len(images)  # KL(p0 || p), mean over images
        torch.testing.assert_close(carft.regulariser(images, tuned, 0), expected, rtol=1e-4, atol=1e-7)


def test_flyp_loss_written_out(zero_shot):
    import open_clip

    from lipsum_ft.seeding import step_generator

    model, spec, _ = zero_shot
    flyp = moved(zero_shot, "flyp")
    images, labels = batch(torch.float32)
    tokenizer = open_clip.get_tokenizer(spec.name)
    picks = torch.randint(len(TEMPLATES), (len(labels),), generator=step_generator(0, 5))
    prompts = [
        TEMPLATES[t].format(CLASSNAMES[y]) for y, t in zip(labels.tolist(), picks.tolist(), strict=True)
    ]
    with torch.no_grad():
        image = F.normalize(flyp.student.visual(images), dim=1)
        text = F.normalize(flyp.student.encode_text(tokenizer(prompts)), dim=1)
        logits = 14.0 * image @ text.T
        same = (labels[:, None] == labels[None, :]).float()
        targets = same / same.sum(dim=1, keepdim=True)
        expected = 0.5 * (
            -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()
            - (targets * logits.T.log_softmax(dim=1)).sum(dim=1).mean()
        )
        loss, terms = flyp(images, labels, 5)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-6)
    assert terms.keys() == {"contrastive"}


def test_a_restored_trainable_state_is_the_saved_one(zero_shot):
    for method in ("ft", "flyp"):
        source, target = moved(zero_shot, method), objective(zero_shot, method, dtype=torch.float32)
        state = {k: v.clone() for k, v in source.trainable_state().items()}
        target.load_trainable_state(state)
        after = target.trainable_state()
        assert all(torch.equal(after[k], state[k]) for k in state)
