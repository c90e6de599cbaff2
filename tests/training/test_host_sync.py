"""On a GPU, a fine-tuning step queues its work without waiting for the device.

A host sync inside the step (a blocking copy of this step's random tokens, an ``.item()``) stalls the
host until the GPU's queue drains, so the GPU idles while the host launches the rest of the step;
small launch-bound kernels such as Lipsum-FT's text tower then cost their launch time in full.
``torch.cuda.set_sync_debug_mode("error")`` turns any such sync into an error. Runs where CUDA is
present (the device check); skipped elsewhere.
"""

from __future__ import annotations

import itertools
import signal
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist

from lipsum_ft.data.images import Augment, normalize, normalize_pixel_rows
from lipsum_ft.training.preemption import PreemptionFlag, stop_vote
from lipsum_ft.training.schedule import adamw, decay_groups
from lipsum_ft.transfer import queued_to
from tests.training.loop_helpers import make

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
TEMPLATES = ["a photo of a {}.", "a drawing of a {}."]

STEPS = [  # every objective with per-step host work, and FT as the plain case
    ("ft", {}),
    ("lipsum", {}),
    ("lipsum", {"guidance": "random_words"}),
    ("lipsum", {"guidance": "class_free_captions", "templates": TEMPLATES}),
    ("lipsum", {"guidance": "fixed_pool", "pool_size": 32}),
    ("flyp", {"templates": TEMPLATES}),
    ("carft", {"templates": TEMPLATES}),
    ("kd", {}),
    ("l2sp", {}),
    ("lpft", {"lp_fraction": 0.5}),
]


IDS = [f"{method}-{settings.get('guidance', 'default')}" for method, settings in STEPS]


def train_step(objective, optimizer, images, labels, step: int) -> None:
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss, _ = objective(images, labels, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@cuda
@pytest.mark.parametrize(("method", "settings"), STEPS, ids=IDS)
def test_a_training_step_queues_without_a_host_sync(setup, method, settings):
    objective = make(setup, method, **settings).cuda()
    optimizer = adamw(decay_groups(objective, 0.1), lr=1e-4, betas=(0.9, 0.98), eps=1e-6)
    images = torch.randn(8, 3, 32, 32, device="cuda")
    labels = torch.arange(8, device="cuda") % 4
    train_step(objective, optimizer, images, labels, 0)  # lazy initialisation and caches may sync once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in (1, 2, 3):
            train_step(objective, optimizer, images, labels, step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@cuda
def test_the_ranks_stop_vote_does_not_wait_for_the_gpu(monkeypatch):
    """Under NCCL (a world of one here) the per-step vote goes over its own gloo group on the host;
    reduced over NCCL, reading the flag would wait for the queued step."""
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group(
        "nccl", store=dist.HashStore(), rank=0, world_size=1, device_id=torch.device("cuda", 0)
    )
    try:
        flag, queued = PreemptionFlag(), torch.randn(4096, 4096, device="cuda")
        with stop_vote(timedelta(seconds=60)) as vote:
            torch.cuda.set_sync_debug_mode("error")
            try:
                for _ in range(3):
                    queued = queued @ queued / 64  # the step's work, still running on the GPU
                    answer = vote.any(flag)
            finally:
                torch.cuda.set_sync_debug_mode("default")
            assert answer is False
            flag.signal = signal.SIGTERM
            assert vote.any(flag) is True
    finally:
        dist.destroy_process_group()
    torch.cuda.synchronize()


@cuda
def test_batches_are_normalised_on_the_gpu_without_a_host_sync():
    """The streamed loader ships uint8 bytes and normalises them on the device every step and every
    evaluation batch; its per-channel constants were made with ``torch.tensor(..., device=cuda)``, a
    blocking copy, twice a batch."""
    mean, std = (0.48, 0.46, 0.41), (0.27, 0.26, 0.28)
    g = torch.Generator().manual_seed(3)
    rows = torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8, generator=g)
    planar = rows.permute(0, 3, 1, 2).contiguous()
    on_gpu = rows.cuda(), planar.cuda()
    normalize_pixel_rows(on_gpu[0], mean, std), normalize(on_gpu[1], mean, std)  # pinned pool's first use
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            from_rows = normalize_pixel_rows(on_gpu[0], mean, std)
            from_planar = normalize(on_gpu[1], mean, std)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(from_rows.cpu(), normalize_pixel_rows(rows, mean, std), rtol=0, atol=1e-6)
    torch.testing.assert_close(from_planar.cpu(), normalize(planar, mean, std), rtol=0, atol=1e-6)


@cuda
def test_in_memory_training_batches_are_augmented_on_the_gpu_without_a_host_sync(setup):
    """The embedded benchmark on a GPU: each step's bytes, crop parameters and labels were copied from
    pageable memory (a blocking copy each), after the whole batch was augmented on the CPU."""
    train = setup[3]
    augment = Augment((0.5, 1.0), (3 / 4, 4 / 3), True, seed=4)
    batches = train.train_batches(0, 8, augment, device="cuda")
    next(batches)  # the pinned pool's first use
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        on_gpu = [next(batches) for _ in range(3)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    on_cpu = list(itertools.islice(train.train_batches(1, 8, augment), 3))
    for (images, labels), (cpu_images, cpu_labels) in zip(on_gpu, on_cpu, strict=True):
        assert images.device.type == labels.device.type == "cuda"
        torch.testing.assert_close(images.cpu(), cpu_images, rtol=0, atol=1e-4)
        assert torch.equal(labels.cpu(), cpu_labels)


@cuda
def test_queued_copies_arrive_intact():
    tokens = torch.randint(0, 49406, (80, 10), generator=torch.Generator().manual_seed(0))
    copied = queued_to(tokens, torch.device("cuda"))
    assert copied.device.type == "cuda"
    assert torch.equal(copied.cpu(), tokens)


def test_off_the_gpu_a_queued_copy_is_a_plain_move():
    tokens = torch.arange(6).reshape(2, 3)
    moved = queued_to(tokens, torch.device("cpu"))
    assert moved is tokens  # same device: no copy, as tensor.to
