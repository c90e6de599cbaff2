"""A file that does not decode is named, with its split-file line and the decoder's own error, wherever
it is decoded: in memory, streamed for training or evaluation, in the main process or a DataLoader worker.
"""

from __future__ import annotations

import re

import pytest

from lipsum_ft.data.images import Augment, ImageDecodeError, LoaderSettings, load_split
from lipsum_ft.data.layout import read_manifest

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


@pytest.fixture
def truncated(digit_tree):
    """The 5th file of photo_train.txt cut in half (a PNG whose stream ends early)."""
    relative = digit_tree.split_path("photo", "train").read_text().splitlines()[4].split()[0]
    path = digit_tree.root / relative
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    line = r"photo_train\.txt:5"
    expected = rf"cannot decode image {re.escape(str(path))} \(listed at .*{line}\): OSError: .*truncated"
    return read_manifest(digit_tree), expected


def test_memory_mode_names_the_file_line_and_decoder_error(truncated):
    manifest, expected = truncated
    with pytest.raises(ImageDecodeError, match=expected):
        load_split(manifest, "train", 32, MEAN, STD, "memory", progress=False, domains=["photo"])


@pytest.mark.parametrize("workers", [0, 1])
def test_stream_mode_names_it_in_training_and_evaluation(truncated, workers):
    manifest, expected = truncated
    data = load_split(
        manifest, "train", 32, MEAN, STD, "stream", LoaderSettings(workers=workers), False, ["photo"]
    )["photo"]
    # a batch that holds every image, so the truncated one is drawn at step 0
    with pytest.raises(ImageDecodeError, match=expected):
        next(data.train_batches(0, len(data), Augment(seed=0)))
    with pytest.raises(ImageDecodeError, match=expected):
        list(data.eval_batches(16))
