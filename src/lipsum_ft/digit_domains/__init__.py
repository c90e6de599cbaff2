"""DigitDomains: a small, embedded multi-domain image dataset in the spirit of DomainNet.

Why it exists: robust fine-tuning experiments need several visual *domains* that share
one label space, so that a model fine-tuned on one domain can be evaluated under
distribution shift on the others. Downloading DomainNet is too heavy for a reproducible,
offline project, so this package renders scikit-learn's bundled 8x8 handwritten digits in
six styles (photo, sketch, clipart, painting, infograph, quickdraw) and writes them in the
DomainNet on-disk layout (``<domain>/<class>/<file>.png`` plus ``<domain>_<split>.txt``).

Everything is seeded: each image's random generator is derived from
``(seed, domain index, digit index)``, so the same configuration always produces
byte-identical files regardless of iteration order. A source digit (one person's
handwriting sample) is assigned to exactly one split, so all its renderings share it.

This package deliberately depends only on numpy, scipy, PIL, scikit-learn and tqdm (no Kedro),
so it can be used from tests, notebooks and pipeline nodes alike.

Modules: ``config`` (names, constants, :class:`DigitDomainsConfig`), ``splits`` (source
digits and their splits), ``canvas`` (shared drawing helpers and the jittered glyph), one
module per style (``photo``, ``sketch``, ``clipart``, ``painting``, ``infograph``,
``quickdraw``), ``render`` (one image) and ``tree`` (the on-disk tree and previews).
"""

from lipsum_ft.digit_domains.config import CLASS_NAMES, DOMAINS, DigitDomainsConfig
from lipsum_ft.digit_domains.render import render_image
from lipsum_ft.digit_domains.splits import assign_splits
from lipsum_ft.digit_domains.tree import preview_grid, write_digit_domains

__all__ = [
    "CLASS_NAMES",
    "DOMAINS",
    "DigitDomainsConfig",
    "assign_splits",
    "preview_grid",
    "render_image",
    "write_digit_domains",
]
