"""CLIP-side helpers: models, prompts and the embedded DigitDomains dataset."""
