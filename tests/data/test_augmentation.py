"""Training crops: the in-memory batches are pinned to a computation written here; the streamed
crops are torchvision's RandomResizedCrop + flip draws, keyed by (seed, step, image), decoded at
reduced JPEG scale only when the crop spans twice the output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lipsum_ft.data.images import (
    Augment,
    InMemoryImages,
    LoaderSettings,
    StreamedImages,
    crop_key,
    crop_params,
    decode_train_crop,
    decoded_box,
    draft_factor,
)
from tests.data.jpeg_files import MEAN, STD, jpegs, smooth_jpeg


def test_in_memory_training_batches_are_pinned_to_a_computation_written_here():
    # DigitDomains trains on this path: its batches (and so the committed reports) must not move.
    g = torch.Generator().manual_seed(5)
    n, batch, seed, size = 11, 4, 3, 16
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 7, (n,), generator=g)
    augment = Augment((0.3, 0.9), (0.6, 1.5), True, seed)
    stream = InMemoryImages(images, labels, MEAN, STD).train_batches(0, batch, augment)
    got = [next(stream) for _ in range(4)]  # 16 images: steps 2 and 3 cross the epoch boundary

    order = torch.cat(
        [
            torch.randperm(n, generator=torch.Generator().manual_seed((seed + 7919) * 1_000_003 + e))
            for e in (0, 1)
        ]
    )
    for step, (x, y) in enumerate(got):
        idx = order[step * batch : (step + 1) * batch]
        mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
        normed = (images[idx].float() / 255.0 - mean) / std
        u = torch.rand(
            (batch, 5), generator=torch.Generator().manual_seed((seed + 104729) * 1_000_003 + step)
        )
        area = 0.3 + 0.6 * u[:, 0]
        aspect = torch.exp(math.log(0.6) + (math.log(1.5) - math.log(0.6)) * u[:, 1])
        width, height = torch.sqrt(area * aspect).clamp(max=1.0), torch.sqrt(area / aspect).clamp(max=1.0)
        theta = torch.zeros((batch, 2, 3))
        theta[:, 0, 0] = width * torch.where(u[:, 4] < 0.5, -1.0, 1.0)
        theta[:, 0, 2] = (1 - width) * (2 * u[:, 2] - 1)
        theta[:, 1, 1] = height
        theta[:, 1, 2] = (1 - height) * (2 * u[:, 3] - 1)
        grid = F.affine_grid(theta, [batch, 3, size, size], align_corners=False)
        want = F.grid_sample(normed, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        assert torch.equal(x, want) and torch.equal(y, labels[idx])


@pytest.mark.parametrize(
    ("height", "width", "scale", "ratio"),
    [
        (375, 500, (0.08, 1.0), (3 / 4, 4 / 3)),
        (480, 310, (0.5, 1.0), (0.75, 1.3333)),
        (40, 400, (0.9, 1.0), (0.9, 1.1)),
    ],
)
def test_crop_draws_are_torchvisions_random_resized_crop_and_flip_seeded_alike(height, width, scale, ratio):
    # The last case (a 10:1 strip, near-full area, square-ish ratio) exhausts the ten tries: the fallback.
    from torchvision.transforms import v2

    rrc = v2.RandomResizedCrop(224, scale=scale, ratio=ratio)
    image = Image.new("RGB", (width, height))
    fallbacks = 0
    for key in range(200):
        torch.manual_seed(key)
        want = rrc.make_params([image])
        flip = bool(torch.rand(1) < 0.5)  # v2.RandomHorizontalFlip applies when rand < p
        got = crop_params(height, width, Augment(scale, ratio, True), torch.Generator().manual_seed(key))
        assert got == (want["top"], want["left"], want["height"], want["width"], flip)
        fallbacks += (want["height"], want["width"]) == (height, width) or want["height"] == height
    if width / height > 5:
        assert fallbacks == 200


def test_no_flip_when_disabled_and_crops_keyed_by_seed_step_and_image():
    g = torch.Generator
    no_flip = [crop_params(300, 400, Augment(flip=False), g().manual_seed(k))[4] for k in range(50)]
    assert not any(no_flip)
    keys = {crop_key(s, t, i) for s in range(3) for t in range(40) for i in range(200)}
    assert len(keys) == 3 * 40 * 200  # no two (seed, step, image) share a crop


def test_draft_only_when_the_crop_spans_twice_the_output_and_pixels_stay_close(tmp_path):
    assert [draft_factor(h, w, 224) for h, w in [(447, 900), (448, 449), (900, 1000), (1792, 1800)]] == [
        1,
        2,
        4,
        8,
    ]
    path = tmp_path / "big.jpg"
    smooth_jpeg(path, 1000, 1200, seed=0)
    augment = Augment((0.6, 1.0), (0.9, 1.1), False)
    for key in range(6):  # crops of >= 0.6 of 1000x1200: every one is decoded at 1/2 or 1/4 scale
        top, left, h, w, _ = crop_params(1000, 1200, augment, torch.Generator().manual_seed(key))
        factor = draft_factor(h, w, 224)
        assert factor >= 2
        y0, x0, y1, x1 = decoded_box(top, left, h, w, factor)
        # the decoded region's edges, in full-size pixels, within half a decoded pixel of the drawn crop
        edges = np.array([y0, x0, y1, x1]) * factor
        assert np.abs(edges - [top, left, top + h, left + w]).max() <= factor / 2
        with Image.open(path) as image:  # that region resampled by PIL from the full-size decode
            full = image.convert("RGB").resize((224, 224), Image.BICUBIC, box=tuple(edges[[1, 0, 3, 2]]))
        got = decode_train_crop(str(path), 224, augment, key)
        want = torch.from_numpy(np.asarray(full).copy())
        assert got.dtype == torch.uint8 and got.shape == (224, 224, 3)
        assert (got.float() - want.float()).abs().mean() < 1.0  # same region; DCT-domain downscale


def test_an_undrafted_crop_is_pils_bicubic_resample_of_the_drawn_region_flipped_when_drawn(tmp_path):
    path = tmp_path / "small.jpg"
    smooth_jpeg(path, 331, 457, seed=3)
    augment = Augment((0.08, 1.0), (3 / 4, 4 / 3), True)
    with Image.open(path) as image:
        full = image.convert("RGB")
    flips = 0
    for key in range(12):
        top, left, h, w, flip = crop_params(331, 457, augment, torch.Generator().manual_seed(key))
        assert draft_factor(h, w, 224) == 1  # the image is under 448 px a side
        want = full.resize((224, 224), Image.BICUBIC, box=(left, top, left + w, top + h))
        if flip:
            want = want.transpose(Image.FLIP_LEFT_RIGHT)
        flips += flip
        got = decode_train_crop(str(path), 224, augment, key).float()
        # torch's uint8 antialiased bicubic is PIL's filter; rounding of overshoot differs by a level or so
        assert (got - torch.from_numpy(np.asarray(want).copy()).float()).abs().mean() < 0.2
    assert 0 < flips < 12


def test_streamed_batches_are_uint8_crops_normalised_at_the_end_and_resume_exactly(tmp_path):
    paths = jpegs(tmp_path, 6, base=(300, 420), step=(37, -23))
    augment = Augment((0.2, 1.0), (3 / 4, 4 / 3), True, seed=9)
    images = StreamedImages(paths, list(range(6)), 32, MEAN, STD, LoaderSettings(), border=[0, 0, 3, 0, 0, 0])
    straight = images.train_batches(0, 4, augment)
    first = [next(straight) for _ in range(3)]
    resumed = next(images.train_batches(2, 4, augment))
    assert torch.equal(first[2][0], resumed[0]) and torch.equal(first[2][1], resumed[1])
    from lipsum_ft.data.images import global_indices

    index = int(global_indices(6, 1, 4, 9)[0])
    raw = decode_train_crop(paths[index], 32, augment, crop_key(9, 1, index), border=3 if index == 2 else 0)
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    torch.testing.assert_close(
        first[1][0][0], (raw.permute(2, 0, 1).float() / 255 - mean) / std, rtol=0, atol=1e-6
    )


def test_streamed_eval_batches_are_clips_eval_transform_normalised_where_they_are_used(tmp_path):
    """Workers ship the resized centre crop as uint8; the batch is normalised on the consumer's device.
    Written out here: PIL's bicubic resize of the shorter side to 256/224 of the size, the centre crop
    (ObjectNet's border cropped first), then ``(x / 255 - mean) / std``, in file order."""
    paths = jpegs(tmp_path, 5, base=(300, 420), step=(37, -23))
    border = [0, 4, 0, 0, 0]
    images = StreamedImages(paths, [3, 1, 4, 1, 5], 32, MEAN, STD, LoaderSettings(), border=border)
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    expected = []
    for path, cut in zip(paths, border, strict=True):
        image = Image.open(path).convert("RGB")
        image = image.crop((cut, cut, image.width - cut, image.height - cut))
        short = 37  # round(32 * 256 / 224)
        scale = short / min(image.size)
        image = image.resize(
            (max(short, int(image.width * scale)), max(short, int(image.height * scale))), Image.BICUBIC
        )
        left, top = round((image.width - 32) / 2), round((image.height - 32) / 2)
        pixels = torch.from_numpy(np.array(image.crop((left, top, left + 32, top + 32)))).permute(2, 0, 1)
        expected.append((pixels.float() / 255 - mean) / std)
    shipped, _ = images._eval_files()[1]  # what a worker puts through shared and pinned memory
    assert shipped.dtype == torch.uint8 and shipped.shape == (3, 32, 32)
    batches = list(images.eval_batches(2))
    assert [len(b) for b in batches] == [2, 2, 1] and {b.dtype for b in batches} == {torch.float32}
    torch.testing.assert_close(torch.cat(batches), torch.stack(expected), rtol=0, atol=1e-6)
    sampled, labels = next(images.sample_batches(3, seed=0))  # TPGM's batches: the same transform
    for row, label in zip(sampled, labels, strict=True):
        match = [k for k, e in enumerate(expected) if torch.allclose(row, e, rtol=0, atol=1e-6)]
        assert [images.labels[k] for k in match] == [label]


def test_torchvisions_decoder_and_pils_give_the_same_crops(tmp_path, monkeypatch):
    # torchvision's image decoders are deprecated (0.29); without them PIL decodes, to the same bytes.
    import lipsum_ft.data.images as images

    assert images.decode_jpeg is not None  # the pinned torchvision has them: both paths are compared
    path = tmp_path / "photo.jpg"
    smooth_jpeg(path, 333, 401, seed=4)
    augment = Augment((0.08, 1.0), (3 / 4, 4 / 3), True)
    with_torchvision = [decode_train_crop(str(path), 224, augment, key) for key in range(5)]
    monkeypatch.setattr(images, "decode_jpeg", None)
    for key, crop in enumerate(with_torchvision):
        assert torch.equal(crop, decode_train_crop(str(path), 224, augment, key))
