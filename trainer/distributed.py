"""Data-parallel training across processes and hosts with ``torch.distributed`` (launched by ``torchrun``).

Every rank loads the same data and draws the same seeded batch order; each epoch's batches are dealt out
in groups of ``world_size``, rank ``r`` taking the ``r``-th of each group (:func:`shard`), and the loops
make batches ``world_size`` times smaller so one step of all ranks together covers what one single-process
step covers. Gradients are averaged by :class:`~torch.nn.parallel.DistributedDataParallel`. Rank 0 alone
validates and decides when to stop (:meth:`DistributedContext.broadcast_object`), and, after each fit,
its weights are copied to every rank (:meth:`DistributedContext.broadcast_module`), so all ranks end equal.

Only the command line reads the environment (:meth:`DistributedContext.from_env`, given ``os.environ``);
the loops receive the context.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

_LOGGER = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("gloo", "nccl")
T = TypeVar("T")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a data-parallel run (one process, rank 0 of 1, by default).

    Attributes:
        rank: global rank, 0 .. world_size - 1; rank 0 validates, writes checkpoints and the report.
        world_size: processes training one model together.
        local_rank: rank on this host (picks the GPU under nccl).
        backend: ``gloo`` (CPU tensors) or ``nccl`` (CUDA tensors).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "gloo"

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise ValueError(f"need 0 <= rank < world_size and local_rank >= 0, got {self}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str], backend: str | None = None) -> DistributedContext:
        """The context ``torchrun`` describes in ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (one process without them).

        Args:
            env: the process environment (the CLI passes ``os.environ``).
            backend: ``gloo``, ``nccl``, or None for the default (:func:`default_backend`).

        Raises:
            ValueError: malformed or inconsistent variables.
        """
        if "WORLD_SIZE" not in env:
            return cls()
        try:
            rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0"))
        except (KeyError, ValueError) as error:
            raise ValueError(f"torchrun environment needs integer RANK and WORLD_SIZE: {error}") from None
        return cls(rank, world, local, backend or default_backend())

    @property
    def enabled(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0

    def broadcast_object(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (the value itself when not distributed)."""
        if not self.enabled:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    @torch.no_grad()
    def broadcast_module(self, module: nn.Module) -> None:
        """Overwrite every rank's parameters and buffers with rank 0's."""
        if not self.enabled:
            return
        for tensor in [*module.parameters(), *module.buffers()]:
            torch.distributed.broadcast(tensor.data, src=0)

    def wrap(self, step: nn.Module, trained: Iterable[nn.Parameter]) -> nn.Module:
        """``step`` wrapped in DistributedDataParallel over ``trained`` (``step`` itself when not distributed).

        Parameters of ``step`` outside ``trained`` must not require gradients while the wrapper is used
        (:func:`only_training`), so DDP reduces exactly what the optimiser steps.
        """
        if not self.enabled:
            return step
        del trained  # DDP takes the parameters that require gradients
        device = next(step.parameters()).device  # where the fit placed the model (trainer.devices)
        device_ids = [device] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(step, device_ids=device_ids, find_unused_parameters=True)


SINGLE = DistributedContext()
"""One process: no communication, every batch is this process's."""


def default_backend() -> str:
    """``gloo``: it reduces CPU tensors (and CUDA ones); ``nccl``, CUDA only, is asked for explicitly.

    Under nccl each rank trains on the GPU of its local rank (:func:`trainer.devices.resolve`).
    """
    return "gloo"


def init(context: DistributedContext) -> None:
    """Join the process group ``torchrun`` set up (``MASTER_ADDR``/``MASTER_PORT`` are read by torch).

    Raises:
        RuntimeError: nccl without CUDA, or the rendezvous failed.
    """
    if not context.enabled or torch.distributed.is_initialized():
        return
    if context.backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError("backend nccl needs CUDA; use --dist-backend gloo on CPU hosts")
        torch.cuda.set_device(context.local_rank)
    torch.distributed.init_process_group(context.backend, rank=context.rank, world_size=context.world_size)
    _LOGGER.info("rank %d of %d joined (%s)", context.rank, context.world_size, context.backend)


def shutdown(context: DistributedContext) -> None:
    """Leave the process group (after a barrier, so rank 0's writes finish before anyone exits)."""
    if context.enabled and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def shard(batches: Iterable[T], rank: int, world_size: int) -> Iterator[T]:
    """This rank's batches: the ``rank``-th of each consecutive group of ``world_size``.

    A last, incomplete group is taken by every rank (their averaged gradients are that group's own), so
    every rank steps equally often, as DistributedDataParallel needs, and no batch is dropped.

    Args:
        batches: one epoch's batches in the order every rank draws (same seed on every rank).
        rank: this rank.
        world_size: ranks.
    """
    group: list[T] = []
    for batch in batches:
        group.append(batch)
        if len(group) == world_size:
            yield group[rank]
            group = []
    yield from group


def shard_length(batches: object, world_size: int) -> int | None:
    """Batches one rank gets from :func:`shard` of an epoch of ``len(batches)``, or None without a length."""
    if not hasattr(batches, "__len__"):
        return None
    total = len(batches)  # type: ignore[arg-type]
    return total // world_size + total % world_size


def shard_batch_size(batch_size: int, world_size: int) -> int:
    """Per-rank batch size so that one step of all ranks covers ``batch_size`` examples (rounded up)."""
    return max(1, -(-batch_size // world_size))


def state_digest(module: nn.Module) -> str:
    """A short hash of every parameter and buffer's bytes: equal on ranks holding identical weights."""
    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class ShardLog:
    """What one rank trained on in an epoch: how many batches and examples, and a hash of their first input."""

    def __init__(self) -> None:
        self.batches, self.examples = 0, 0
        self._digest = hashlib.blake2b(digest_size=6)

    def add(self, first_input: torch.Tensor, examples: int) -> None:
        """Count one batch whose first input tensor is ``first_input`` and which holds ``examples`` targets."""
        self.batches += 1
        self.examples += examples
        self._digest.update(first_input.detach().cpu().contiguous().numpy().tobytes())

    def summary(self) -> tuple[int, int, str]:
        """(batches, examples, hex digest of the batches' first inputs in order)."""
        return self.batches, self.examples, self._digest.hexdigest()


def only_training(module: nn.Module, trained: Iterable[nn.Parameter]) -> _Frozen:
    """Context manager: parameters of ``module`` outside ``trained`` stop requiring gradients inside it."""
    return _Frozen(module, trained)


class _Frozen:
    def __init__(self, module: nn.Module, trained: Iterable[nn.Parameter]) -> None:
        keep = {id(p) for p in trained}
        self._frozen = [p for p in module.parameters() if id(p) not in keep and p.requires_grad]

    def __enter__(self) -> None:
        for param in self._frozen:
            param.requires_grad_(False)

    def __exit__(self, *exc: Any) -> None:
        for param in self._frozen:
            param.requires_grad_(True)
