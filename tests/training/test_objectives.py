"""Every fine-tuning objective: the Lipsum-FT regulariser and each baseline's limits."""

from __future__ import annotations

import datetime

import open_clip
import pytest
import torch
import torch.nn.functional as F

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.params import finetune as finetune_params
from lipsum_ft.training.finetuning import make_objective
from lipsum_ft.training.loop import TrainConfig, ddp_options
from lipsum_ft.training.objectives import METHODS, ObjectiveContext, lipsum_regulariser
from tests.training.objective_helpers import build_objective

CLASSNAMES = ["zero", "one", "two", "three"]
TEMPLATES = ["a photo of the digit {}.", "a sketch of the digit {}."]


@pytest.fixture(scope="module")
def zero_shot():
    model, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    head = F.normalize(torch.randn(128, len(CLASSNAMES), generator=torch.Generator().manual_seed(1)), dim=0)
    return model.eval(), spec, head


def objective(zero_shot, method: str, coefficient: float = 1.0, **settings):
    model, spec, head = zero_shot
    return build_objective(
        method,
        model,
        head,
        14.0,
        spec=spec,
        classnames=CLASSNAMES,
        coefficient=coefficient,
        templates=TEMPLATES,
        **settings,
    )


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 3, 32, 32, generator=g), torch.randint(0, len(CLASSNAMES), (6,), generator=g)


def test_lipsum_regulariser_matches_an_independent_computation():
    g = torch.Generator().manual_seed(0)
    v_theta, v_zero = torch.randn(5, 80, generator=g), torch.randn(5, 80, generator=g)
    expected = sum(((v_theta[i] - v_zero[i]) ** 2).sum() / (2 * 80) for i in range(5)) / 5
    torch.testing.assert_close(lipsum_regulariser(v_theta, v_zero), expected)


def test_lipsum_objective_computes_r_from_scaled_scores_of_both_towers(zero_shot):
    lipsum = objective(zero_shot, "lipsum")
    with torch.no_grad():
        for p in lipsum.classifier.visual.parameters():  # move theta away from theta_0
            p.add_(0.01 * torch.randn_like(p))
    images, labels = batch()
    features = lipsum.classifier.features(images)
    reg = lipsum.regulariser(images, features, step=3)
    texts = F.normalize(
        zero_shot[0].encode_text(
            torch.cat([lipsum.guidance.tokens(3), torch.zeros(80, 6, dtype=torch.long)], 1)
        ),
        dim=-1,
    )
    v_theta = 14.0 * features @ texts.T
    v_zero = 14.0 * F.normalize(zero_shot[0].visual(images), dim=-1) @ texts.T
    expected = ((v_theta - v_zero) ** 2).sum(1).mean() / 160
    torch.testing.assert_close(reg, expected, rtol=1e-4, atol=1e-6)
    assert reg > 0


def test_lipsum_r_from_given_features_and_texts_and_its_gradient(zero_shot):
    """The part that gpu_step times without the towers: R and its gradient into the trained features."""
    lipsum = objective(zero_shot, "lipsum")
    g = torch.Generator().manual_seed(4)
    features = F.normalize(torch.randn(5, 32, generator=g), dim=-1).requires_grad_(True)
    zero = F.normalize(torch.randn(5, 32, generator=g), dim=-1)
    texts = F.normalize(torch.randn(7, 32, generator=g), dim=-1)
    reg = lipsum.regulariser_from(features, zero, texts)
    difference = 14.0 * (features - zero).detach() @ texts.T  # (5, 7): v_theta - v_0
    torch.testing.assert_close(reg, (difference**2).sum(1).mean() / (2 * 7))
    (grad,) = torch.autograd.grad(reg, features)
    torch.testing.assert_close(grad, 14.0 * difference @ texts / (5 * 7))


def test_r_is_exactly_zero_at_step_zero(zero_shot):
    images, labels = batch()
    loss, terms = objective(zero_shot, "lipsum")(images, labels, step=0)
    assert terms["reg"].item() == 0.0
    assert loss.item() == terms["ce"].item()


@pytest.mark.parametrize("method", ["l2sp", "kd", "carft", "lipsum"])
def test_regularised_losses_reduce_to_cross_entropy_at_zero_coefficient(zero_shot, method):
    images, labels = batch(1)
    plain = objective(zero_shot, "ft")
    regularised = objective(zero_shot, method, coefficient=0.0)
    with torch.no_grad():
        for a, b in zip(
            plain.classifier.visual.parameters(), regularised.classifier.visual.parameters(), strict=True
        ):
            noise = 0.01 * torch.randn_like(a)
            a.add_(noise)
            b.add_(noise)
    loss, terms = regularised(images, labels, step=2)
    expected, _ = plain(images, labels, step=2)
    torch.testing.assert_close(loss, expected)
    with torch.no_grad():  # the term itself is live: only its weight is zero
        assert regularised.regulariser(images, regularised.classifier.features(images), 2) > 0


def test_linear_probe_leaves_the_image_tower_bit_identical(zero_shot):
    lp = objective(zero_shot, "lp")
    before = {k: v.clone() for k, v in lp.classifier.visual.state_dict().items()}
    head_before = lp.classifier.head.detach().clone()
    optimizer = torch.optim.AdamW([p for p in lp.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    lp.train()
    for step in range(3):
        images, labels = batch(step)
        loss, _ = lp(images, labels, step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = lp.classifier.visual.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(head_before, lp.classifier.head)


def test_lpft_trains_the_head_alone_first(zero_shot):
    lpft = objective(zero_shot, "lpft", steps=4, lp_fraction=0.5)  # lp_steps = int(0.5 * 4) = 2
    assert lpft.lp_steps == 2
    images, labels = batch()
    loss, _ = lpft(images, labels, step=1)
    loss.backward()
    assert all(p.grad is None for p in lpft.classifier.visual.parameters())
    loss, _ = lpft(images, labels, step=2)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lpft.classifier.visual.parameters())


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_declares_whether_a_step_can_leave_a_trainable_parameter_without_gradient(
    zero_shot, method
):
    # DDP skips its per-step search for unused parameters where a method declares there are none; a
    # wrong True breaks multi-GPU runs ("Expected to have finished reduction"), a wrong False slows them
    built = objective(zero_shot, method, steps=4, lp_fraction=0.5)  # LP-FT probes in steps 0 and 1
    built.train()
    without_gradient = set()
    for step in (0, 3):
        built.zero_grad(set_to_none=True)
        images, labels = batch(seed=step)
        loss, _ = built(images, labels, step=step)
        loss.backward()
        without_gradient |= {n for n, p in built.named_parameters() if p.requires_grad and p.grad is None}
    assert any(p.requires_grad for p in built.parameters())
    assert built.uses_every_trainable_each_step == (not without_gradient), sorted(without_gradient)[:3]
    if method == "lpft":
        assert all(n.startswith("classifier.visual.") for n in without_gradient)
    options = ddp_options(built, TrainConfig(steps=4, batch_size=6, lr=1e-3, process_group_timeout_s=12.5))
    assert options == {
        "find_unused_parameters": method == "lpft",
        "timeout": datetime.timedelta(seconds=12.5),
    }


def test_flyp_trains_both_towers_and_its_head_is_the_class_prompts(zero_shot):
    flyp = objective(zero_shot, "flyp")
    images, labels = batch()
    loss, terms = flyp(images, labels, step=0)
    loss.backward()
    assert flyp.student.token_embedding.weight.grad is not None
    assert flyp.classifier.visual is flyp.student.visual
    model, head = flyp.export()
    tokenizer = open_clip.get_tokenizer("TinyCLIP-ViT-P8-32")
    reference = open_clip.build_zero_shot_classifier(model, tokenizer, CLASSNAMES, TEMPLATES)
    torch.testing.assert_close(head, reference, rtol=1e-5, atol=1e-5)


def test_the_objectives_are_the_methods_the_parameters_name():
    # one list of methods: finetune.<method> settings and the objectives cannot drift apart
    assert sorted(METHODS) == sorted(finetune_params.METHODS)
    assert all(cls.name == name for name, cls in METHODS.items())


def test_an_unknown_method_names_the_valid_ones(zero_shot):
    model, spec, head = zero_shot
    context = ObjectiveContext(model, head, 14.0, spec.name, spec.context_length, CLASSNAMES, 1, 0)
    with pytest.raises(ValueError, match=r"unknown fine-tuning method 'sft'; valid: \['carft', 'flyp'"):
        make_objective("sft", None, context)


def test_the_callers_zero_shot_clip_stays_untouched(zero_shot):
    model = zero_shot[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for method in ("ft", "flyp"):
        built = objective(zero_shot, method)
        assert built.reference is not model and built.reference.visual is not model.visual
        with torch.no_grad():
            for p in built.parameters():
                p.add_(0.5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_every_method_exports_a_clip_with_the_fine_tuned_image_tower(zero_shot):
    assert sorted(METHODS) == sorted(["ft", "lp", "lpft", "l2sp", "kd", "carft", "flyp", "lipsum"])
    for method in METHODS:
        model, head = objective(zero_shot, method).export()
        assert head.shape == (128, len(CLASSNAMES))
        assert hasattr(model, "encode_text") and hasattr(model, "visual")


def test_train_mode_trains_the_classifier_and_keeps_the_zero_shot_model_in_eval(zero_shot):
    # `objective.train()` with no argument is how the loop enters training; LP keeps its tower in eval.
    for method in ("ft", "lp", "lipsum"):
        chosen = objective(zero_shot, method).train()
        assert chosen.training and chosen.classifier.training and not chosen.reference.training
        assert chosen.classifier.visual.training == (method != "lp")
        assert not chosen.eval().classifier.training


def test_zero_shot_features_leave_the_attention_fast_path_setting_as_found(zero_shot):
    # The fast path is switched off only inside the call: a caller's setting (on or off) comes back.
    lipsum = objective(zero_shot, "lipsum")
    images, _ = batch()
    before = torch.backends.mha.get_fastpath_enabled()
    try:
        for setting in (True, False):
            torch.backends.mha.set_fastpath_enabled(setting)
            lipsum.zero_shot_features(images)
            assert torch.backends.mha.get_fastpath_enabled() is setting
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


@pytest.mark.parametrize("method", ["ft", "lipsum", "flyp"])
def test_an_exported_model_shares_no_tensor_with_the_objective(zero_shot, method):
    # A shallow copy would share (or, through the module dict, even replace) the frozen reference's towers.
    chosen = objective(zero_shot, method)
    reference_before = {k: v.clone() for k, v in chosen.reference.state_dict().items()}
    live = {id(t) for t in [*chosen.parameters(), *chosen.buffers()]}
    model, head = chosen.export()
    assert all(id(t) not in live for t in [*model.parameters(), *model.buffers(), head])
    assert chosen.reference.visual is not model.visual
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    after = chosen.reference.state_dict()
    assert all(torch.equal(reference_before[k], after[k]) for k in reference_before)


def test_a_pool_larger_than_m_gives_each_step_its_own_m_rows(zero_shot):
    # FixedPool with N = 12 > M = 5: step t uses rows randperm(12, seed * 1_000_003 + t)[:5] of the pool.
    from lipsum_ft.training.guidance import FixedPool, RandomTokens

    seed = 3
    guidance = FixedPool(RandomTokens(num_texts=12, length=4, seed=seed), num_texts=5, seed=seed)
    lipsum = objective(
        zero_shot, "lipsum", seed=seed, guidance="fixed_pool", num_texts=5, length=4, pool_size=12
    )
    assert lipsum.guidance == guidance  # finetune.lipsum's settings and the run's seed build this pool
    pool = guidance.pool
    padded = torch.cat([pool, torch.zeros(len(pool), 16 - pool.shape[1], dtype=torch.long)], 1)
    with torch.no_grad():
        encoded = F.normalize(zero_shot[0].encode_text(padded), dim=-1)
    rows = {}
    for step in (4, 9):
        rows[step] = torch.randperm(12, generator=torch.Generator().manual_seed(seed * 1_000_003 + step))[:5]
        torch.testing.assert_close(lipsum.text_features(step), encoded[rows[step]], rtol=1e-5, atol=1e-6)
    assert not torch.equal(rows[4], rows[9])


def test_flyp_builds_its_head_a_few_classes_at_a_time(zero_shot):
    """Every validation recomputes FLYP's head from all class prompts; in one batch, ImageNet's 1,000 x 80
    prompts need over 100 GB of text-tower activations. The head stays open_clip's."""
    model, spec, _ = zero_shot
    names = [f"class {i}" for i in range(13)]  # more than one batch of classes, the last one short
    head = F.normalize(torch.randn(128, len(names), generator=torch.Generator().manual_seed(2)), dim=0)
    flyp = build_objective("flyp", model, head, 14.0, spec=spec, classnames=names, templates=TEMPLATES)
    batches: list[int] = []
    encode = flyp.student.encode_text
    flyp.student.encode_text = lambda tokens: batches.append(len(tokens)) or encode(tokens)
    flyp.prepare_for_eval()
    assert batches == [10 * len(TEMPLATES), 3 * len(TEMPLATES)]
    tokenizer = open_clip.get_tokenizer("TinyCLIP-ViT-P8-32")
    with torch.no_grad():
        reference = open_clip.build_zero_shot_classifier(model, tokenizer, names, TEMPLATES)
    torch.testing.assert_close(flyp.classifier.head.detach(), reference, rtol=1e-5, atol=1e-5)
