"""DDP under torchrun's elastic restarts: each attempt's process group keeps to its own store keys.

torchrun (``--max-restarts``) restarts the whole group when a rank dies, and the new workers join
the agent's store, the one the dead attempt used. With torch 2.14, gloo then reads the addresses
the dead attempt published and dials a port nobody listens on any more ("Gloo connectFullMesh
failed ... Connection refused"), so the restart itself fails. Prefixing the store with the attempt
number (``TORCHELASTIC_RESTART_COUNT``) gives every attempt keys of its own.
"""

from __future__ import annotations

import os

import torch
from lightning_fabric.strategies import DDPStrategy
from lightning_fabric.utilities.distributed import _init_dist_connection
from torch.distributed.rendezvous import rendezvous


def elastic_attempt() -> str | None:
    """The restart count torchrun gave this worker; None when torchrun did not start it."""
    return os.environ.get("TORCHELASTIC_RESTART_COUNT")


class ElasticDDPStrategy(DDPStrategy):
    """``DDPStrategy`` whose process group, under torchrun, lives under a prefix of its attempt."""

    def _setup_distributed(self) -> None:
        attempt = elastic_attempt()
        if attempt is None or torch.distributed.is_initialized():
            super()._setup_distributed()
            return
        self._set_world_ranks()
        self._process_group_backend = self._get_process_group_backend()
        environment = self.cluster_environment
        store, _, _ = next(
            rendezvous("env://", environment.global_rank(), environment.world_size(), timeout=self._timeout)
        )
        kwargs = {
            "timeout": self._timeout,
            "store": torch.distributed.PrefixStore(f"attempt-{attempt}", store),
        }
        if self.root_device.type != "cpu":
            kwargs["device_id"] = self.root_device
        _init_dist_connection(environment, self._process_group_backend, **kwargs)
