"""Text guidance for Lipsum-FT: which texts the regulariser compares the two image towers on.

The paper draws random token ids and leaves "tailored text guidance strategies" to future work;
four strategies make that question testable here:

- ``random_tokens``: the paper's recipe, M texts of L ids uniform over [0, 49406) between SOT and EOT;
- ``random_words``: M texts of L whole words (alphabetic vocabulary units that end a word);
- ``class_free_captions``: the prompt templates with the class slot filled by random words;
- ``fixed_pool``: N texts of another strategy drawn once; their features are computed once per run.

Texts depend only on (seed, step), so every rank draws the same texts and a resumed run draws the
same texts as an uninterrupted one, with no generator state to save.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lipsum_ft.clip.prompts import Template, fill
from lipsum_ft.clip.text import EOT_TOKEN, SOT_TOKEN, encode_text, word_vocabulary
from lipsum_ft.seeding import step_generator

STRATEGIES = ("random_tokens", "random_words", "class_free_captions", "fixed_pool")
POOL_STEP = 0  # a fixed pool is the texts its source strategy draws at this step
SLOT = "{}"


def _wrap(body: torch.Tensor) -> torch.Tensor:
    """SOT + ids + EOT for each row of ``body``."""
    m = body.shape[0]
    return torch.cat([torch.full((m, 1), SOT_TOKEN), body, torch.full((m, 1), EOT_TOKEN)], dim=1)


@functools.cache
def _word_ids() -> torch.Tensor:
    return torch.tensor(word_vocabulary()[0])


@dataclass(frozen=True)
class RandomTokens:
    """The paper's guidance: M texts of L token ids uniform over [0, 49406), wrapped as SOT + ids + EOT."""

    num_texts: int = 80
    length: int = 8
    seed: int = 0
    vocab_high: int = SOT_TOKEN

    def tokens(self, step: int) -> torch.Tensor:
        """(M, L + 2) token ids for ``step``; no padding (as in the official code)."""
        return _wrap(
            torch.randint(
                0, self.vocab_high, (self.num_texts, self.length), generator=step_generator(self.seed, step)
            )
        )


@dataclass(frozen=True)
class RandomWords:
    """M texts of L whole words drawn uniformly from the tokenizer's word-ending units:
    random, but language-like.
    """

    num_texts: int = 80
    length: int = 8
    seed: int = 0

    def tokens(self, step: int) -> torch.Tensor:
        """(M, L + 2) token ids: SOT, L word ids, EOT."""
        words = _word_ids()
        picks = torch.randint(
            0, len(words), (self.num_texts, self.length), generator=step_generator(self.seed, step)
        )
        return _wrap(words[picks])


@dataclass(frozen=True)
class ClassFreeCaptions:
    """Prompt templates whose class slot holds random words: the template context without the label.

    Templates are tokenized once around their slot, so each step only draws ids (and the texts equal
    what the tokenizer gives for the filled-in string).
    """

    parts: tuple[
        tuple[tuple[int, ...], tuple[int, ...]], ...
    ]  # (ids before the slot, ids after) per template
    num_texts: int = 80
    seed: int = 0
    slot_words: tuple[int, int] = (1, 3)  # words in the slot: uniform over [low, high]

    @classmethod
    def from_templates(
        cls,
        templates: Sequence[Template],
        num_texts: int = 80,
        seed: int = 0,
        slot_words: tuple[int, int] = (1, 3),
    ) -> ClassFreeCaptions:
        if not templates:
            raise ValueError(
                "class_free_captions needs at least one prompt template (finetune.lipsum.templates)"
            )
        low, high = slot_words
        if not 1 <= low <= high:
            raise ValueError(f"slot_words must satisfy 1 <= low <= high, got {slot_words}")
        parts = []
        for template in templates:
            filled = fill(template, SLOT)
            if filled.count(SLOT) != 1:
                raise ValueError(f"template {filled!r} must have exactly one class slot")
            before, after = filled.split(SLOT)
            parts.append((tuple(encode_text(before)), tuple(encode_text(after))))
        return cls(tuple(parts), num_texts, seed, (low, high))

    def tokens(self, step: int) -> torch.Tensor:
        """(M, n) token ids, each row SOT + caption + EOT, zero-padded to the longest caption of the step."""
        generator = step_generator(self.seed, step)
        low, high = self.slot_words
        which = torch.randint(0, len(self.parts), (self.num_texts,), generator=generator).tolist()
        counts = torch.randint(low, high + 1, (self.num_texts,), generator=generator).tolist()
        words = _word_ids()
        slots = words[torch.randint(0, len(words), (self.num_texts, high), generator=generator)].tolist()
        rows = [
            [SOT_TOKEN, *self.parts[t][0], *slot[:k], *self.parts[t][1], EOT_TOKEN]
            for t, k, slot in zip(which, counts, slots, strict=True)
        ]
        out = torch.zeros(self.num_texts, max(map(len, rows)), dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row)
        return out


Source = RandomTokens | RandomWords | ClassFreeCaptions


@dataclass(frozen=True)
class FixedPool:
    """N texts drawn once by ``source`` (its ``num_texts`` is N); each step uses M of them (all when M >= N).

    The regulariser encodes the pool once per run and indexes the cached features, so the text tower
    costs nothing per step; the price is that the same directions are constrained throughout.
    """

    source: Source
    num_texts: int = 80  # M per step
    seed: int = 0

    @property
    def pool(self) -> torch.Tensor:
        """(N, n) token ids of the whole pool."""
        return self.source.tokens(POOL_STEP)

    def indices(self, step: int) -> torch.Tensor:
        """Rows of the pool used at ``step``."""
        size = self.source.num_texts
        if self.num_texts >= size:
            return torch.arange(size)
        return torch.randperm(size, generator=step_generator(self.seed, step))[: self.num_texts]

    def tokens(self, step: int) -> torch.Tensor:
        return self.pool[self.indices(step)]


Guidance = RandomTokens | RandomWords | ClassFreeCaptions | FixedPool


def build_guidance(
    strategy: str,
    *,
    num_texts: int = 80,
    length: int = 8,
    seed: int = 0,
    templates: Sequence[Template] = (),
    slot_words: tuple[int, int] = (1, 3),
    pool_size: int = 80,
    pool_source: str = "random_tokens",
) -> Guidance:
    """The guidance named ``strategy`` (one of ``STRATEGIES``); ``pool_*`` apply to ``fixed_pool`` only."""
    if strategy == "fixed_pool":
        if pool_source == "fixed_pool":
            raise ValueError("fixed_pool's pool_source must be another strategy, not fixed_pool")
        source = build_guidance(
            pool_source,
            num_texts=pool_size,
            length=length,
            seed=seed,
            templates=templates,
            slot_words=slot_words,
        )
        return FixedPool(source, num_texts=num_texts, seed=seed)
    if strategy == "random_tokens":
        return RandomTokens(num_texts, length, seed)
    if strategy == "random_words":
        return RandomWords(num_texts, length, seed)
    if strategy == "class_free_captions":
        return ClassFreeCaptions.from_templates(templates, num_texts, seed, slot_words)
    raise ValueError(f"unknown guidance strategy {strategy!r}; valid: {list(STRATEGIES)}")
