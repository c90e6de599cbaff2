"""The text tower on short token sequences, and the facts of CLIP's tokenizer the project relies on."""

from __future__ import annotations

import functools

import torch
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import text_global_pool
from torch import nn

SOT_TOKEN = 49406  # open_clip's start-of-text id
EOT_TOKEN = 49407  # end-of-text id; the text tower pools at the highest id, so random ids stay below SOT
WORD_END = "</w>"  # CLIP's BPE marks the sub-word unit that ends a word with this suffix


def encode_tokens(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's ``encode_text`` for sequences shorter than the context, without padding them.

    The text tower is causal and pools at the end token, so the features equal those of the padded
    sequence; skipping the padding makes 10-token texts cheap. Zero padding after the end token
    (texts of different lengths in one batch) is allowed for the same reason.
    """
    n = tokens.shape[1]
    if n > model.positional_embedding.shape[0]:
        raise ValueError(
            f"texts of {n} tokens exceed the model's context length {model.positional_embedding.shape[0]}"
        )
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:n].to(cast_dtype)
    mask = model.attn_mask[:n, :n] if model.attn_mask is not None else None
    x = model.ln_final(model.transformer(x, attn_mask=mask))
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if model.text_projection is not None:
        x = (
            model.text_projection(x)
            if isinstance(model.text_projection, nn.Linear)
            else x @ model.text_projection
        )
    return x


@functools.cache
def clip_tokenizer() -> SimpleTokenizer:
    """CLIP's byte-pair tokenizer (one vocabulary of 49,408 ids for every OpenAI-style open_clip model)."""
    return SimpleTokenizer()


@functools.cache
def word_vocabulary() -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Ids and spellings of the lower-case a-z units that end a word (``dog</w>``) in CLIP's vocabulary
    (32,875).

    Texts built from them tokenize back to the same ids, so they read as (odd) language, unlike uniform ids,
    which are mostly word fragments, punctuation and byte-level pieces of other scripts and emoji.
    """
    stems = ((i, s[: -len(WORD_END)]) for s, i in clip_tokenizer().encoder.items() if s.endswith(WORD_END))
    words = sorted((i, stem) for i, stem in stems if stem.isascii() and stem.isalpha() and stem.islower())
    return tuple(i for i, _ in words), tuple(s for _, s in words)


def encode_text(text: str) -> list[int]:
    """Token ids of ``text`` without SOT/EOT (open_clip's cleaning: lower case, whitespace collapsed)."""
    return clip_tokenizer().encode(text)
