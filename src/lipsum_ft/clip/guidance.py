"""Random-text guidance for Lipsum-FT: which texts the regulariser compares the two image towers on.

Texts depend only on (seed, step), so every rank draws the same texts and a resumed run draws the
same texts as an uninterrupted one, with no generator state to save.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from open_clip.transformer import text_global_pool

from lipsum_ft.clip.seeding import step_generator

SOT_TOKEN = 49406  # open_clip's start-of-text id
EOT_TOKEN = 49407  # end-of-text id; the text tower pools at the highest id, so random ids stay below SOT


@dataclass(frozen=True)
class RandomTokens:
    """The paper's guidance: M texts of L token ids uniform over [0, 49406), wrapped as SOT + ids + EOT."""

    num_texts: int = 80
    length: int = 8
    seed: int = 0
    vocab_high: int = SOT_TOKEN

    def tokens(self, step: int) -> torch.Tensor:
        """(M, L + 2) token ids for ``step``; no padding (as in the official code)."""
        body = torch.randint(0, self.vocab_high, (self.num_texts, self.length), generator=step_generator(self.seed, step))
        sot = torch.full((self.num_texts, 1), SOT_TOKEN)
        eot = torch.full((self.num_texts, 1), EOT_TOKEN)
        return torch.cat([sot, body, eot], dim=1)


def encode_tokens(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's ``encode_text`` for sequences shorter than the context, without padding them.

    The text tower is causal and pools at the end token, so the features equal those of the padded
    sequence; skipping the padding makes the 10-token guidance texts cheap.
    """
    n = tokens.shape[1]
    if n > model.positional_embedding.shape[0]:
        raise ValueError(f"texts of {n} tokens exceed the model's context length {model.positional_embedding.shape[0]}")
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:n].to(cast_dtype)
    mask = model.attn_mask[:n, :n] if model.attn_mask is not None else None
    x = model.ln_final(model.transformer(x, attn_mask=mask))
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if model.text_projection is not None:
        x = model.text_projection(x) if isinstance(model.text_projection, nn.Linear) else x @ model.text_projection
    return x
