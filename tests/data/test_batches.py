"""The order of training images: per-epoch permutations, sliced into global batches, drawn once per epoch."""

from __future__ import annotations

import torch

from lipsum_ft.data.images import epoch_permutation, global_indices


def test_global_batches_walk_each_epoch_permutation_and_cross_epoch_boundaries():
    n, batch, seed = 10, 4, 3
    stream = torch.cat([global_indices(n, step, batch, seed) for step in range(5)])  # 20 images: two epochs
    assert sorted(stream[:10].tolist()) == list(range(10)) and sorted(stream[10:].tolist()) == list(range(10))
    assert not torch.equal(stream[:10], stream[10:])  # a fresh order each epoch
    assert torch.equal(
        global_indices(n, 2, batch, seed), torch.cat([stream[8:10], stream[10:12]])
    )  # step 2 spans the boundary
    assert torch.equal(
        stream, torch.cat([global_indices(n, step, batch, seed) for step in range(5)])
    )  # a function of (seed, step)


def test_each_epoch_is_permuted_once_not_once_per_step():
    epoch_permutation.cache_clear()
    for step in range(50):
        global_indices(1000, step, 32, seed=0)  # 1,600 images: two epochs
    info = epoch_permutation.cache_info()
    assert info.misses == 2 and info.hits + info.misses == 51  # step 31 spans the boundary: two lookups
