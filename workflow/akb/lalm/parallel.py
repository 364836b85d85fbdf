"""Data-parallel training: one process per GPU, started by `torchrun`, gradients averaged by DDP.

torchrun (PyTorch's launcher) starts the processes and gives each one RANK, LOCAL_RANK, WORLD_SIZE
and the rendezvous address in its environment; `data_parallel()` joins them into one process group
(NCCL on GPUs, gloo on CPU) and says where this process stands. Without torchrun (WORLD_SIZE unset
or 1) it is a no-op and training runs in one process exactly as before.

Each rank loads the whole audio LLM on its own device (cuda:LOCAL_RANK): the models[].resources
GPUs that otherwise spread one large backbone over several GPUs (device_map auto) are, for a
data-parallel training job, one model copy per GPU. How the ranks share the samples of each global
batch is in akb.lalm.train."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel run; rank 0 of 1 for a plain single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, state and logs."""
        return self.rank == 0

    @classmethod
    def current(cls) -> Ranks:
        """The process group this process has joined (by `data_parallel` or a test), if any."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return cls()
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size()))
        return cls(dist.get_rank(), dist.get_world_size(), local, local_world)

    def threads(self, threads: int | None) -> int | None:
        """CPU threads of this process: the job's `threads` shared by the processes of one node."""
        return None if threads is None else max(1, threads // self.local_world)

    def model_entry(self, entry: dict) -> dict:
        """A backbone's config entry as this rank loads it: the whole model on its own device. In a
        single process the entry is unchanged (its GPUs may still spread a large model)."""
        if self.world == 1:
            return entry
        device = f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        resources = {**(entry.get("resources") or {}), "gpu": 1 if device != "cpu" else 0}
        return {**entry, "device": device, "device_map": None, "resources": resources}


@contextlib.contextmanager
def data_parallel(timeout_minutes: float = 30) -> Iterator[Ranks]:
    """Join the process group torchrun describes in the environment (a no-op without it); leave it
    on exit. `timeout_minutes` bounds a collective waiting for a rank that died."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield Ranks()
        return
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE is set (torchrun) but this torch build has no torch.distributed")
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={world} but {missing} unset: start data-parallel training with torchrun")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        local = int(os.environ["LOCAL_RANK"])
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local} but {torch.cuda.device_count()} GPU(s) visible: "
                             "torchrun --nproc-per-node must not exceed the node's GPUs")
        torch.cuda.set_device(local)
    dist.init_process_group(backend, timeout=timedelta(minutes=timeout_minutes))
    try:
        ranks = Ranks.current()
        if ranks.main:
            log.info("data-parallel training: %d processes, %d per node (%s)", ranks.world, ranks.local_world, backend)
        yield ranks
    finally:
        dist.destroy_process_group()
