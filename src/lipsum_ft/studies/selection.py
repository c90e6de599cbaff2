"""Choosing one model among candidates without shift-domain labels.

Criteria, each fixed before any test label is read:
  (a) ``by_reference_accuracy``: the reference domain's val accuracy (the usual practice);
  (b) ``by_energy_gap``: the energy gap to the zero-shot model on the shift domains' unlabelled val images;
  (c) ``by_accuracy_then_energy_gap``: among candidates within ``tolerance`` of the best reference val
      accuracy, the smallest shift energy gap;
  (d) ``oracle``: the best shift test accuracy, a yardstick only.

The shift side of (b) and (c) is computed by ``label_free_energy_gap`` from ``UnlabelledImages``,
which carry no labels: label-freeness is a property of the types, not a promise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import torch

from lipsum_ft.clip.features import encode_images
from lipsum_ft.data.unlabelled import UnlabelledImages
from lipsum_ft.evaluation.metrics import energy_gap

CRITERIA = ("reference_accuracy", "energy_gap", "accuracy_then_energy_gap", "oracle")


def unlabelled_features(
    encode: Callable[[torch.Tensor], torch.Tensor],
    images: Mapping[str, UnlabelledImages],
    batch_size: int,
    device: str = "cpu",
) -> dict[str, torch.Tensor]:
    """Unit image features per domain, from images that have no labels to give."""
    for domain, image_set in images.items():
        if not isinstance(image_set, UnlabelledImages):
            raise TypeError(
                f"domain {domain!r}: label-free selection takes UnlabelledImages, got "
                f"{type(image_set).__name__} (wrap it with lipsum_ft.data.unlabelled.without_labels)"
            )
    return {
        domain: encode_images(encode, image_set, batch_size, progress=False, device=device)
        for domain, image_set in images.items()
    }


def label_free_energy_gap(
    encode: Callable[[torch.Tensor], torch.Tensor],
    images: Mapping[str, UnlabelledImages],
    zero_shot_features: Mapping[str, torch.Tensor],
    text_features: torch.Tensor,
    batch_size: int,
    device: str = "cpu",
) -> float:
    """The energy gap to the zero-shot model, averaged over domains, on images without labels.

    ``zero_shot_features`` are ``unlabelled_features`` of the zero-shot tower on the same images.
    """
    features = unlabelled_features(encode, images, batch_size, device)
    gaps = [energy_gap(features[d], zero_shot_features[d], text_features) for d in images]
    return sum(gaps) / len(gaps)


def by_reference_accuracy(reference_val_acc: pd.Series, reference_val_nll: pd.Series) -> str:
    """(a) The highest reference val accuracy; ties go to the lower reference val NLL, then the name."""
    table = pd.DataFrame({"acc": reference_val_acc, "nll": reference_val_nll})
    return str(table.sort_values(["acc", "nll"], ascending=[False, True], kind="stable").index[0])


def by_energy_gap(shift_val_energy_gap: pd.Series) -> str:
    """(b) The smallest energy gap on the shift domains' unlabelled val images."""
    return str(shift_val_energy_gap.sort_values(kind="stable").index[0])


def by_accuracy_then_energy_gap(
    reference_val_acc: pd.Series, shift_val_energy_gap: pd.Series, tolerance: float
) -> str:
    """(c) Keep the reference accuracy, then stay close to zero-shot: among candidates whose reference
    val accuracy is within ``tolerance`` of the best, the smallest shift energy gap.
    """
    admitted = reference_val_acc[reference_val_acc >= reference_val_acc.max() - tolerance - 1e-12].index
    return by_energy_gap(shift_val_energy_gap.loc[admitted])


def oracle(shift_test_acc: pd.Series) -> str:
    """(d) The best shift test accuracy: reads test labels, so it only measures the others' regret."""
    return str(shift_test_acc.sort_values(ascending=False, kind="stable").index[0])
