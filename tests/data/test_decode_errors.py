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


def test_a_truncated_jpeg_in_streamed_training_is_named(tmp_path):
    # Colour JPEGs take torchvision's decoder, which raises RuntimeError rather than PIL's OSError.
    import numpy as np
    from PIL import Image

    from lipsum_ft.data.images import StreamedImages

    rng = np.random.default_rng(1)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.jpg")
        Image.fromarray(rng.integers(0, 255, (300, 360, 3), dtype=np.uint8)).save(paths[-1], quality=90)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    sources = [f"photo_train.txt:{i + 1}" for i in range(3)]
    images = StreamedImages([str(p) for p in paths], [0, 1, 2], 224, MEAN, STD, sources=sources)  # no draft
    expected = (
        rf"cannot decode image {re.escape(str(paths[1]))} \(listed at photo_train\.txt:2\): RuntimeError"
    )
    with pytest.raises(ImageDecodeError, match=expected):
        next(images.train_batches(0, 3, Augment(seed=0)))
