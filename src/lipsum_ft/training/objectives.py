"""One loss per fine-tuning method, behind one interface (Lipsum-FT paper, appendix B).

An ``Objective`` owns the trainable classifier (image tower + head, initialised from the zero-shot
model) and the frozen zero-shot CLIP it is regularised toward. ``forward(images, labels, step)``
returns the loss and its named terms; ``export()`` gives the fine-tuned CLIP and head.

Each class builds itself with ``from_params(settings, context)``: ``settings`` is its method's own
settings (``finetune.<method>``, read by attribute; None for FT and LP, which have none) and
``context`` the ``ObjectiveContext`` every method shares. ``METHODS`` maps each class's ``name`` to it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from lipsum_ft.clip.backbone import freeze
from lipsum_ft.clip.prompts import Template, fill, resolve_templates
from lipsum_ft.clip.text import encode_tokens
from lipsum_ft.clip.zeroshot import ClipClassifier, class_prompt_weights
from lipsum_ft.seeding import step_generator
from lipsum_ft.training.guidance import FixedPool, Guidance, build_guidance
from lipsum_ft.training.pretraining import soft_clip_loss
from lipsum_ft.transfer import queued_to

Terms = dict[str, torch.Tensor]


@dataclass(frozen=True, eq=False)
class ObjectiveContext:
    """What any objective may need besides its own settings: the zero-shot model and the run."""

    clip: nn.Module  # the zero-shot CLIP (``make_objective`` hands each objective a private copy)
    head: torch.Tensor  # the zero-shot head weight, (dim, classes)
    logit_scale: float
    model_name: str  # open_clip's name of the model, for its tokenizer
    context_length: int
    classnames: list[str]
    steps: int  # the run's total steps
    seed: int  # the run's seed

    def class_prompt_tokens(self, templates: list[Template]) -> torch.Tensor:
        """Tokens of every (class, template) prompt, class-major: row k * T + t."""
        tokenizer = open_clip.get_tokenizer(self.model_name, context_length=self.context_length)
        return tokenizer([fill(t, c) for c in self.classnames for t in templates])


def full_precision(device: torch.device) -> torch.autocast:
    """A region where autocast is off: regularisers' scores, differences and sums stay in float32.

    Under bf16 autocast a matmul returns bf16, so scores of magnitude s ~ 100 keep ~3 significant
    digits and their small differences (what every regulariser measures) are rounded away.
    """
    return torch.autocast(device.type, enabled=False)


def widened(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or kept in float64 (never narrowed: gradient checks run in float64)."""
    return x if x.dtype == torch.float64 else x.float()


def float32_scores(features: torch.Tensor, texts: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``scale * features @ texts.T`` computed in float32 (inputs cast up, autocast off)."""
    with full_precision(features.device):
        return widened(scale) * widened(features) @ widened(texts).T


class Objective(nn.Module):
    """Base: cross-entropy of the classifier; subclasses add a regulariser weighted by ``coefficient``."""

    name = "ft"
    # every trainable parameter gets a gradient at every step, so DDP need not search each step's
    # autograd graph for unused ones (``find_unused_parameters``; PyTorch warns when it finds none)
    uses_every_trainable_each_step = True

    def __init__(self, clip: nn.Module, head: torch.Tensor, logit_scale: float, coefficient: float = 0.0):
        super().__init__()
        self.reference = clip
        freeze([self.reference])
        self.classifier = ClipClassifier(copy.deepcopy(clip.visual), head, logit_scale)
        for parameter in self.classifier.parameters():
            parameter.requires_grad_(True)
        self.coefficient = coefficient

    @classmethod
    def from_params(cls, settings: Any, context: ObjectiveContext) -> Objective:
        """The objective from its settings (FT and LP have none: coefficient 0; L2-SP and KD: theirs)."""
        coefficient = 0.0 if settings is None else settings.coefficient
        return cls(context.clip, context.head, context.logit_scale, coefficient)

    def train(self, mode: bool = True) -> Objective:
        super().train(mode)
        self.reference.eval()  # the zero-shot model never leaves eval mode
        return self

    def regulariser(self, images: torch.Tensor, features: torch.Tensor, step: int) -> torch.Tensor | None:
        return None

    def forward(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> tuple[torch.Tensor, Terms]:
        features = self.classifier.features(images)
        ce = F.cross_entropy(self.classifier.logits_from_features(features), labels)
        reg = self.regulariser(images, features, step)
        if reg is None:
            return ce, {"ce": ce.detach()}
        return ce + self.coefficient * reg, {"ce": ce.detach(), "reg": reg.detach()}

    def zero_shot_features(self, images: torch.Tensor) -> torch.Tensor:
        """F_theta0(x): the frozen zero-shot image tower, without autograd.

        PyTorch's inference fast path of multi-head attention is switched off here so that theta_0
        runs the same kernels as the trained tower: equal weights then give bit-equal features.
        """
        fast_path = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            with torch.no_grad():
                return F.normalize(self.reference.visual(images), dim=-1)
        finally:
            torch.backends.mha.set_fastpath_enabled(fast_path)

    def compile_towers(self) -> None:
        """``torch.compile`` the trained and the frozen image tower in place (``nn.Module.compile``):
        the bulk of every method's FLOPs. State-dict keys stay as they are, so checkpoints, resume and
        ``export`` (whose deep copies run eagerly) are unchanged; the text tower stays eager."""
        self.classifier.visual.compile()
        self.reference.visual.compile()

    def export(self) -> tuple[nn.Module, torch.Tensor]:
        """The fine-tuned CLIP (zero-shot text tower, fine-tuned image tower) and its head weight."""
        model = copy.deepcopy(self.reference)
        model.visual = copy.deepcopy(self.classifier.visual)
        return model.eval(), self.classifier.head.detach().clone()

    def prepare_for_eval(self) -> None:
        """Bring derived parts up to date before the classifier is scored (FLYP recomputes its head)."""

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return self.classifier.state_dict()

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        self.classifier.load_state_dict(state)


class LinearProbe(Objective):
    """LP: the head alone trains, on frozen image features; the image tower stays bit-identical."""

    name = "lp"

    def __init__(self, clip, head, logit_scale, coefficient: float = 0.0):
        super().__init__(clip, head, logit_scale, coefficient)
        freeze([self.classifier.visual])

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.classifier.visual.eval()
        return self

    def forward(self, images, labels, step):
        with torch.no_grad():
            features = self.classifier.features(images)
        ce = F.cross_entropy(self.classifier.logits_from_features(features), labels)
        return ce, {"ce": ce.detach()}


class LinearProbeThenFinetune(Objective):
    """LP-FT: the head alone for the first ``lp_steps`` steps, then everything (FT from the probed head)."""

    name = "lpft"
    uses_every_trainable_each_step = False  # the image tower gets no gradient in the probing steps

    def __init__(self, clip, head, logit_scale, coefficient: float = 0.0, lp_steps: int = 0):
        super().__init__(clip, head, logit_scale, coefficient)
        self.lp_steps = lp_steps

    @classmethod
    def from_params(cls, settings, context):
        """The first ``lp_fraction`` of the run's steps train the head alone."""
        lp_steps = int(settings.lp_fraction * context.steps)
        return cls(context.clip, context.head, context.logit_scale, 0.0, lp_steps=lp_steps)

    def forward(self, images, labels, step):
        if step < self.lp_steps:
            with torch.no_grad():
                features = self.classifier.features(images)
        else:
            features = self.classifier.features(images)
        ce = F.cross_entropy(self.classifier.logits_from_features(features), labels)
        return ce, {"ce": ce.detach()}


class L2SP(Objective):
    """L2-SP: CE + lambda * ||theta - theta_0||^2 over the image tower."""

    name = "l2sp"

    def regulariser(self, images, features, step):
        start = dict(self.reference.visual.named_parameters())
        with full_precision(images.device):
            return sum(
                ((widened(p) - widened(start[n])) ** 2).sum()
                for n, p in self.classifier.visual.named_parameters()
            )


class FeatureDistillation(Objective):
    """KD: CE + lambda * ||F_theta(x) - F_theta0(x)||^2 (mean over the batch)."""

    name = "kd"

    def regulariser(self, images, features, step):
        zero = self.zero_shot_features(images)
        with full_precision(features.device):
            return ((widened(features) - widened(zero)) ** 2).sum(dim=-1).mean()


class ContextAwareRegularisation(Objective):
    """CAR-FT: CE + lambda * KL(p_0(context|x) || p_theta(context|x)) over prompt-template contexts.

    A context's text feature is its template's prompt features averaged over the classes.
    """

    name = "carft"

    def __init__(
        self, clip, head, logit_scale, coefficient: float, context_tokens: torch.Tensor, num_classes: int
    ):
        super().__init__(clip, head, logit_scale, coefficient)
        with torch.no_grad():
            per_prompt = F.normalize(clip.encode_text(context_tokens), dim=-1)
            contexts = F.normalize(
                per_prompt.reshape(-1, num_classes, per_prompt.shape[-1]).mean(dim=1), dim=-1
            )
        self.register_buffer("contexts", contexts)

    @classmethod
    def from_params(cls, settings, context):
        """Contexts from ``settings.templates``, the prompts' tokens reordered template-major."""
        templates = resolve_templates(settings.templates)
        tokens = context.class_prompt_tokens(templates)
        # template-major for the context average: reorder (class, template) rows to (template, class)
        k, t = len(context.classnames), len(templates)
        tokens = tokens.reshape(k, t, -1).transpose(0, 1).reshape(k * t, -1)
        return cls(
            context.clip, context.head, context.logit_scale, settings.coefficient, tokens, num_classes=k
        )

    def regulariser(self, images, features, step):
        scale = self.classifier.logit_scale
        scores = float32_scores(features, self.contexts, scale)
        scores_zero = float32_scores(self.zero_shot_features(images), self.contexts, scale)
        with full_precision(features.device):
            log_p, log_p0 = F.log_softmax(scores, dim=-1), F.log_softmax(scores_zero, dim=-1)
            return F.kl_div(log_p, log_p0, log_target=True, reduction="batchmean")


class Lipsum(Objective):
    """Lipsum-FT: CE + lambda * R, R = mean_x sum_m (v_theta,m(x) - v_0,m(x))^2 / (2M).

    Scores and R are computed in float32 even under bf16 autocast (features cast up first).

    v_m(x) = s * <G(t_m), F(x)> over M texts t_m from the guidance (random tokens, drawn afresh each
    step, in the paper); s is the pre-trained logit scale (the official code's form; the paper writes
    v without s). A fixed pool's text features are computed on the first step and reused.
    """

    name = "lipsum"

    def __init__(self, clip, head, logit_scale, coefficient: float, guidance: Guidance):
        super().__init__(clip, head, logit_scale, coefficient)
        self.guidance = guidance
        self._pool_features: torch.Tensor | None = None  # not state: recomputed after a resume

    @classmethod
    def from_params(cls, settings, context):
        """The guidance ``settings`` describes (``training/guidance.py``), seeded by the run's seed."""
        guidance = build_guidance(
            settings.guidance,
            num_texts=settings.num_texts,
            length=settings.length,
            seed=context.seed,
            templates=resolve_templates(settings.templates) if settings.templates else (),
            slot_words=settings.slot_words,
            pool_size=settings.pool_size,
            pool_source=settings.pool_source,
        )
        return cls(context.clip, context.head, context.logit_scale, settings.coefficient, guidance)

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(
                encode_tokens(self.reference, queued_to(tokens, self.classifier.head.device)), dim=-1
            )

    def text_features(self, step: int) -> torch.Tensor:
        """(M, dim) unit text features of the frozen text tower for ``step``'s guidance texts."""
        if isinstance(self.guidance, FixedPool):
            if self._pool_features is None:
                self._pool_features = self._encode(self.guidance.pool)
            return self._pool_features[queued_to(self.guidance.indices(step), self._pool_features.device)]
        return self._encode(self.guidance.tokens(step))

    def regulariser(self, images, features, step):
        return self.regulariser_from(features, self.zero_shot_features(images), self.text_features(step))

    def regulariser_from(
        self, features: torch.Tensor, zero_features: torch.Tensor, texts: torch.Tensor
    ) -> torch.Tensor:
        """R from the towers' outputs: the scores v_theta and v_0 of both models' image features on
        the texts, pulled together (apart from the towers, so that a profile can time it alone)."""
        scale = self.classifier.logit_scale
        return lipsum_regulariser(
            float32_scores(features, texts, scale), float32_scores(zero_features, texts, scale)
        )


def lipsum_regulariser(v_theta: torch.Tensor, v_zero: torch.Tensor) -> torch.Tensor:
    """R = mean over the batch of sum_m (v_theta - v_0)^2 / (2M), for (batch, M) score matrices,
    in float32 (the scores are cast up and autocast is off)."""
    with full_precision(v_theta.device):
        difference = widened(v_theta) - widened(v_zero)
        return (difference**2).sum(dim=-1).mean() / (2 * v_theta.shape[-1])


class FLYP(Objective):
    """FLYP: fine-tune both towers with the contrastive loss against class prompts, as in pretraining.

    The head is the class-prompt text features of the current text tower (template-averaged).
    """

    name = "flyp"

    def __init__(
        self,
        clip,
        head,
        logit_scale,
        coefficient: float,
        class_tokens: torch.Tensor,
        template_count: int,
        seed: int,
    ):
        super().__init__(clip, head, logit_scale, coefficient)
        self.student = copy.deepcopy(clip)
        for parameter in self.student.parameters():
            parameter.requires_grad_(True)
        self.student.logit_scale.requires_grad_(False)
        self.classifier.visual = self.student.visual
        self.classifier.head.requires_grad_(False)
        self.register_buffer("class_tokens", class_tokens)  # (K * T, ctx): class-major, template-minor
        self.template_count = template_count
        self.seed = seed

    @classmethod
    def from_params(cls, settings, context):
        """Class prompts of ``settings.templates`` (class-major); no regulariser, so coefficient 0."""
        templates = resolve_templates(settings.templates)
        return cls(
            context.clip,
            context.head,
            context.logit_scale,
            0.0,
            context.class_prompt_tokens(templates),
            template_count=len(templates),
            seed=context.seed,
        )

    def head_weight(self) -> torch.Tensor:
        """The zero-shot head of the fine-tuned towers' class prompts (a few classes at a time)."""
        return class_prompt_weights(self.student.encode_text, self.class_tokens, self.template_count)

    def forward(self, images, labels, step):
        picks = queued_to(
            torch.randint(self.template_count, (labels.shape[0],), generator=step_generator(self.seed, step)),
            labels.device,
        )
        texts = self.class_tokens[labels * self.template_count + picks]
        image_features = self.classifier.features(images)
        text_features = F.normalize(self.student.encode_text(texts), dim=-1)
        loss = soft_clip_loss(image_features, text_features, labels, self.classifier.logit_scale)
        return loss, {"contrastive": loss.detach()}

    def prepare_for_eval(self) -> None:
        """Recompute the head from the fine-tuned text tower (before evaluation and export)."""
        with torch.no_grad():
            self.classifier.head.copy_(self.head_weight())

    def export(self):
        self.prepare_for_eval()
        return copy.deepcopy(self.student).eval(), self.classifier.head.detach().clone()

    def trainable_state(self):
        return self.student.state_dict()

    def load_trainable_state(self, state):
        self.student.load_state_dict(state)


# every method's class, by its ``name`` (``make_objective`` looks a method up here)
METHODS: dict[str, type[Objective]] = {
    cls.name: cls
    for cls in (
        Objective,
        LinearProbe,
        LinearProbeThenFinetune,
        L2SP,
        FeatureDistillation,
        ContextAwareRegularisation,
        Lipsum,
        FLYP,
    )
}
