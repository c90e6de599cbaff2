"""Prompt templates and class names: named sets shipped by open_clip, or lists from ``conf/``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import open_clip

Template = str | Callable[[str], str]

NAMED_TEMPLATE_SETS: dict[str, Sequence[Template]] = {
    "openai_imagenet": open_clip.OPENAI_IMAGENET_TEMPLATES,  # the 80 templates of the CLIP paper
    "simple_imagenet": open_clip.SIMPLE_IMAGENET_TEMPLATES,
}


def resolve_templates(templates: str | Sequence[str]) -> list[Template]:
    """A named set (``openai_imagenet``, ``simple_imagenet``) or a list of ``{}``-format strings."""
    if isinstance(templates, str):
        if templates not in NAMED_TEMPLATE_SETS:
            raise ValueError(
                f"unknown template set {templates!r}; named sets: {sorted(NAMED_TEMPLATE_SETS)} "
                "(or give a list of strings with '{}')"
            )
        return list(NAMED_TEMPLATE_SETS[templates])
    resolved = list(templates)
    if not resolved:
        raise ValueError("the template list is empty")
    bad = [t for t in resolved if "{}" not in t]
    if bad:
        raise ValueError(f"every template needs a '{{}}' slot for the class name; these have none: {bad[:3]}")
    return resolved


def fill(template: Template, classname: str) -> str:
    """One prompt: a format string or one of open_clip's template callables."""
    return template.format(classname) if isinstance(template, str) else template(classname)
