"""The model side of CLIP: building and loading open_clip models, prompts, text encoding,
the zero-shot head.
"""
