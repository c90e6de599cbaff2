"""Text guidance of Lipsum-FT: each strategy's texts, their seeding, and the fixed pool's single encoding."""

from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from lipsum_ft.clip.backbone import new_model
from lipsum_ft.clip.text import EOT_TOKEN, SOT_TOKEN, clip_tokenizer, encode_tokens, word_vocabulary
from lipsum_ft.params.registry import validate_parameters
from lipsum_ft.params.shared import ParameterError
from lipsum_ft.seeding import step_generator
from lipsum_ft.training import objectives
from lipsum_ft.training.guidance import (
    STRATEGIES,
    ClassFreeCaptions,
    FixedPool,
    RandomTokens,
    RandomWords,
    build_guidance,
)
from tests.training.objective_helpers import build_objective

TEMPLATES = ["a photo of the digit {}.", "a doodle of the digit {}.", "itap of a {}."]


@pytest.fixture(scope="module")
def model():
    clip, spec = new_model("TinyCLIP-ViT-P8-32", seed=0)
    return clip.eval()


def body(row: torch.Tensor) -> list[int]:
    """The ids between SOT and EOT of one (possibly zero-padded) text."""
    ids = row.tolist()
    assert ids[0] == SOT_TOKEN and EOT_TOKEN in ids
    end = ids.index(EOT_TOKEN)
    assert all(i == 0 for i in ids[end + 1 :]), "only zero padding may follow EOT"
    return ids[1:end]


def test_random_tokens_follow_the_paper():
    guidance = RandomTokens(num_texts=80, length=8, seed=5)
    tokens = guidance.tokens(step=0)
    assert tokens.shape == (80, 10)
    assert (tokens[:, 0] == SOT_TOKEN).all() and (tokens[:, -1] == EOT_TOKEN).all()
    inner = tokens[:, 1:-1]
    assert inner.min() >= 0 and inner.max() < SOT_TOKEN
    assert len(inner.unique()) > 600  # uniform over ~49k ids: 640 draws are nearly all distinct
    assert not torch.equal(tokens, guidance.tokens(step=1))  # fresh each step
    assert torch.equal(
        tokens, RandomTokens(80, 8, seed=5).tokens(step=0)
    )  # same on every rank / after resume
    assert (
        build_guidance("random_tokens", num_texts=80, length=8, seed=5) == guidance
    )  # the default strategy is this recipe


def test_random_token_ids_cover_exactly_the_ids_below_sot():
    # 4 million draws over 49406 ids: every id, 0 and SOT - 1 included, is drawn (each is missed with
    # probability ~e^-81), so a range one id too wide (SOT or EOT inside a text) or too narrow shows.
    inner = RandomTokens(num_texts=4000, length=1000, seed=1).tokens(step=3)[:, 1:-1]
    assert inner.min() == 0 and inner.max() == SOT_TOKEN - 1
    assert torch.bincount(inner.flatten(), minlength=SOT_TOKEN).count_nonzero() == SOT_TOKEN


def test_random_words_are_whole_words_that_tokenize_back_to_themselves():
    guidance = RandomWords(num_texts=40, length=6, seed=2)
    tokens = guidance.tokens(step=7)
    assert tokens.shape == (40, 8)
    assert (tokens[:, 0] == SOT_TOKEN).all() and (tokens[:, -1] == EOT_TOKEN).all()
    words = set(word_vocabulary()[0])
    tokenizer = clip_tokenizer()
    for row in tokens:
        ids = body(row)
        assert set(ids) <= words
        text = tokenizer.decode(ids)
        assert all(w.isalpha() for w in text.split()) and len(text.split()) == 6
        assert tokenizer.encode(text) == ids  # real words: the text round-trips through the tokenizer
    assert torch.equal(tokens, RandomWords(40, 6, seed=2).tokens(7))
    assert not torch.equal(tokens, guidance.tokens(8))


def test_every_word_of_the_vocabulary_can_be_drawn():
    # 4 million draws over 32,875 words: each word, the first and the last included, is missed with
    # probability ~e^-120, so a range that skips the first word (or adds one past the last) shows.
    inner = RandomWords(num_texts=4000, length=1000, seed=1).tokens(step=3)[:, 1:-1]
    assert set(inner.unique().tolist()) == set(word_vocabulary()[0])


def test_class_free_captions_are_the_templates_with_random_words_in_the_slot():
    guidance = ClassFreeCaptions.from_templates(TEMPLATES, num_texts=60, seed=3, slot_words=(1, 3))
    tokens = guidance.tokens(step=4)
    assert tokens.shape[0] == 60 and tokens.max() <= EOT_TOKEN and tokens.min() >= 0
    tokenizer = open_clip.get_tokenizer("TinyCLIP-ViT-P8-32")
    prefixes = [t.split("{}")[0] for t in TEMPLATES]
    used, slot_counts = set(), set()
    for row in tokens:
        text = clip_tokenizer().decode(body(row)).strip()
        template = next(
            t for t, prefix in zip(TEMPLATES, prefixes, strict=True) if text.startswith(prefix.strip())
        )
        used.add(template)
        slot = text[len(template.split("{}")[0]) :].rstrip(" .").split()
        slot_counts.add(len(slot))
        assert all(w.isalpha() for w in slot)
        # the ids equal what open_clip's tokenizer gives for the filled-in caption
        assert body(row) == body(tokenizer([template.format(" ".join(slot))])[0])
    assert used == set(TEMPLATES) and slot_counts == {1, 2, 3}
    lengths = (tokens != 0).sum(1)
    assert (
        lengths.max() == tokens.shape[1] and lengths.min() < lengths.max()
    )  # padded to the longest caption only
    assert torch.equal(tokens, ClassFreeCaptions.from_templates(TEMPLATES, 60, 3, (1, 3)).tokens(4))
    assert not torch.equal(tokens[:, :5], guidance.tokens(5)[:, :5])


def slot_lengths(guidance: ClassFreeCaptions, tokens: torch.Tensor, template: str) -> list[int]:
    """Words in the slot of each caption of one template (each slot word is one id)."""
    before, after = (clip_tokenizer().encode(part) for part in template.split("{}"))
    lengths = []
    for row in tokens:
        ids = body(row)
        assert ids[: len(before)] == before and ids[len(ids) - len(after) :] == after
        lengths.append(len(ids) - len(before) - len(after))
    return lengths


def test_a_slot_of_fixed_width_holds_exactly_that_many_words():
    # low == high is a valid setting (the parameter check allows it), and the width reaches the texts.
    template = "itap of a {}."
    guidance = ClassFreeCaptions.from_templates([template], num_texts=50, seed=2, slot_words=(2, 2))
    assert guidance.slot_words == (2, 2)
    assert slot_lengths(guidance, guidance.tokens(step=6), template) == [2] * 50


def test_slot_word_counts_are_uniform_over_low_to_high():
    # 3000 captions, counts uniform over {2, 3, 4}: each share is 1/3 within ~0.009 (one sd), so a
    # draw over a wider range folded onto the top count (share 1/2) or a narrower one shows.
    template = "itap of a {}."
    guidance = ClassFreeCaptions.from_templates([template], num_texts=3000, seed=4, slot_words=(2, 4))
    lengths = torch.tensor(slot_lengths(guidance, guidance.tokens(step=1), template))
    shares = torch.bincount(lengths, minlength=6)[2:5].double() / 3000
    assert set(lengths.tolist()) == {2, 3, 4}
    torch.testing.assert_close(shares, torch.full((3,), 1 / 3, dtype=torch.double), rtol=0, atol=0.05)


def test_every_word_of_the_vocabulary_can_fill_a_slot():
    # 1.2 million slot words over 32,875: the first word is missed with probability ~e^-36.
    template = "itap of a {}."
    guidance = ClassFreeCaptions.from_templates([template], num_texts=4000, seed=5, slot_words=(300, 300))
    before = len(clip_tokenizer().encode("itap of a"))
    slots = guidance.tokens(step=2)[:, 1 + before : 1 + before + 300]
    assert set(slots.unique().tolist()) == set(word_vocabulary()[0])


def test_padded_captions_encode_like_open_clips_full_context(model):
    tokens = ClassFreeCaptions.from_templates(TEMPLATES, num_texts=9, seed=1).tokens(0)
    padded = torch.cat(
        [tokens, torch.zeros(9, model.context_length - tokens.shape[1], dtype=torch.long)], dim=1
    )
    with torch.no_grad():
        torch.testing.assert_close(
            encode_tokens(model, tokens), model.encode_text(padded), rtol=1e-5, atol=1e-5
        )


def test_unpadded_text_encoding_equals_open_clips_padded_one(model):
    tokens = RandomTokens(7, 8, seed=1).tokens(0)
    padded = torch.cat([tokens, torch.zeros(7, model.context_length - 10, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(
            encode_tokens(model, tokens), model.encode_text(padded), rtol=1e-5, atol=1e-5
        )


def test_fixed_pool_draws_its_texts_once():
    pool = build_guidance("fixed_pool", num_texts=80, length=8, seed=4, pool_size=80)
    assert isinstance(pool, FixedPool) and torch.equal(pool.pool, RandomTokens(80, 8, seed=4).tokens(0))
    assert torch.equal(pool.tokens(0), pool.tokens(123))  # M >= N: the whole pool every step
    sub = build_guidance(
        "fixed_pool", num_texts=16, length=8, seed=4, pool_size=64, pool_source="random_words"
    )
    rows = {tuple(r) for r in sub.pool.tolist()}
    a, b = sub.tokens(1), sub.tokens(2)
    assert (
        a.shape == (16, 10)
        and {tuple(r) for r in a.tolist()} <= rows
        and {tuple(r) for r in b.tolist()} <= rows
    )
    assert not torch.equal(a, b)  # M < N: a fresh subset of the same pool each step


def test_the_rows_a_step_takes_from_the_pool_depend_only_on_seed_and_step():
    # Every rank and a resumed run must take the same rows, wherever the global generator stands.
    def make(seed):
        return FixedPool(RandomTokens(64, 8, seed=4), num_texts=16, seed=seed)

    torch.manual_seed(0)
    a = make(9).indices(5)
    torch.manual_seed(1)
    assert torch.equal(make(9).indices(5), a)
    assert torch.equal(a, torch.randperm(64, generator=step_generator(9, 5))[:16])
    assert not torch.equal(make(10).indices(5), a)  # the seed counts


# Every setting differs from its default (and num_texts from pool_size), so a setting the builder drops
# or swaps shows.
SETTINGS = {
    "num_texts": 12,
    "length": 5,
    "seed": 7,
    "templates": TEMPLATES,
    "slot_words": (2, 4),
    "pool_size": 30,
}


@pytest.mark.parametrize(
    ("strategy", "pool_source", "expected"),
    [
        ("random_tokens", "random_tokens", lambda: RandomTokens(12, 5, 7)),
        ("random_words", "random_tokens", lambda: RandomWords(12, 5, 7)),
        (
            "class_free_captions",
            "random_tokens",
            lambda: ClassFreeCaptions.from_templates(TEMPLATES, 12, 7, (2, 4)),
        ),
        ("fixed_pool", "random_tokens", lambda: FixedPool(RandomTokens(30, 5, 7), 12, 7)),
        ("fixed_pool", "random_words", lambda: FixedPool(RandomWords(30, 5, 7), 12, 7)),
        (
            "fixed_pool",
            "class_free_captions",
            lambda: FixedPool(ClassFreeCaptions.from_templates(TEMPLATES, 30, 7, (2, 4)), 12, 7),
        ),
    ],
)
def test_the_builder_passes_every_setting_to_the_strategy(strategy, pool_source, expected):
    guidance = build_guidance(strategy, pool_source=pool_source, **SETTINGS)
    assert guidance == expected()
    assert torch.equal(guidance.tokens(3), expected().tokens(3))


@pytest.mark.parametrize(
    ("strategy", "encodes"), [("fixed_pool", 1), ("random_tokens", 5), ("class_free_captions", 5)]
)
def test_only_the_fixed_pool_skips_the_text_tower_after_the_first_step(model, monkeypatch, strategy, encodes):
    calls = []

    def counting(clip, tokens):
        calls.append(tokens.shape)
        return encode_tokens(clip, tokens)

    monkeypatch.setattr(objectives, "encode_tokens", counting)
    settings = dict(num_texts=12, length=8, templates=TEMPLATES, pool_size=12)
    guidance = build_guidance(strategy, seed=0, **settings)
    head = F.normalize(torch.randn(128, 4, generator=torch.Generator().manual_seed(1)), dim=0)
    lipsum = build_objective(
        "lipsum", model, head, 14.0, classnames=["a", "b", "c", "d"], seed=0, guidance=strategy, **settings
    )
    assert lipsum.guidance == guidance  # finetune.lipsum's settings and the run's seed give this guidance
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in lipsum.classifier.visual.parameters():
            p.add_(0.01 * torch.randn_like(p))
    values = [lipsum.regulariser(images, lipsum.classifier.features(images), step) for step in range(5)]
    assert len(calls) == encodes
    assert all(v > 0 for v in values)
    if strategy == "fixed_pool":  # the cached features are the pool's own
        with torch.no_grad():
            expected = F.normalize(encode_tokens(model, guidance.pool), dim=-1)
        torch.testing.assert_close(lipsum.text_features(3), expected)


def test_bad_guidance_settings_name_the_fault():
    with pytest.raises(ValueError, match="unknown guidance strategy 'captions'"):
        build_guidance("captions")
    with pytest.raises(ValueError, match="at least one prompt template"):
        build_guidance("class_free_captions")
    with pytest.raises(ValueError, match="pool_source must be another strategy"):
        build_guidance("fixed_pool", pool_source="fixed_pool")
    assert set(STRATEGIES) == {"random_tokens", "random_words", "class_free_captions", "fixed_pool"}


@pytest.mark.parametrize(
    ("lipsum", "message"),
    [
        ({"guidance": "lorem"}, "finetune.lipsum.guidance"),
        ({"guidance": "class_free_captions"}, "needs finetune.lipsum.templates"),
        ({"guidance": "fixed_pool", "pool_source": "class_free_captions"}, "needs finetune.lipsum.templates"),
        ({"slot_words": [3, 1]}, "low <= high"),
    ],
)
def test_guidance_parameters_are_checked_before_a_run(lipsum, message):
    finetune = {
        "methods": ["lipsum"],
        "reference_domain": "photo",
        "steps": 1,
        "batch_size": 1,
        "lr": 1e-4,
        "carft": {"templates": TEMPLATES},
        "flyp": {"templates": TEMPLATES},
        "lipsum": lipsum,
    }
    with pytest.raises(ParameterError, match=message):
        validate_parameters({"finetune": finetune})
