"""Where a fit's steps run: the CPU, or a CUDA device.

A fitted model leaves the loops on the CPU, whatever the device: evaluation, checkpoints, export and the
jobs runner read it as they always have. A fit on CUDA steps a copy of the model there
(:class:`TrainingCopy`), and publishes that copy's weights into the caller's model before each
validation and at the end, so the loops' validation, early stopping and best-weight bookkeeping stay on
the CPU model. The batches are built on the CPU and moved per step (:func:`to_device`).

Only the command line picks the device (:func:`resolve`); the loops read it from their configs.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, TypeVar

import torch

from trainer.distributed import DistributedContext
from trainer.models import RatingModel

AUTO = "auto"
"""The GPU when torch sees one (``cuda``, or ``cuda:LOCAL_RANK`` under torchrun), else the CPU."""

CHOICES: tuple[str, ...] = (AUTO, "cpu", "cuda")
T = TypeVar("T")


def resolve(requested: str | None, context: DistributedContext) -> str:
    """The device a run's fits step on: ``cpu``, ``cuda``, or ``cuda:N`` (this rank's GPU under torchrun).

    Args:
        requested: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; None for the default, the CPU, or the GPU
            under the nccl backend. The CPU stays the default until ``bench/gpu_check.sh`` has passed on
            a GPU host, where ``auto`` picks the GPU.
        context: the data-parallel run; under it each rank takes the GPU of its local rank, and nccl
            (which reduces CUDA tensors only) needs one.

    Raises:
        ValueError: an unknown name, CUDA asked for where torch sees none, or nccl on the CPU.
    """
    if requested is None:
        requested = "cuda" if context.backend == "nccl" else "cpu"
    if requested != AUTO and requested != "cpu" and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}; choose one of {', '.join(CHOICES)} (or cuda:N)")
    wants_cuda = requested.startswith("cuda") or (requested == AUTO and torch.cuda.is_available())
    if context.backend == "nccl" and not wants_cuda:
        raise ValueError("--dist-backend nccl reduces CUDA tensors: train with --device cuda (or auto on a GPU host)")
    if not wants_cuda:
        return "cpu"
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise ValueError(
            f"--device {requested}: torch {torch.__version__} ({build}) sees no CUDA device; "
            "train with --device cpu, or install a CUDA build of torch on a GPU host"
        )
    if requested.startswith("cuda:"):
        return requested
    return f"cuda:{context.local_rank}" if context.enabled else "cuda"


def to_device(value: T, device: torch.device) -> T:
    """``value`` with every tensor in it on ``device``: tensors, tuples, lists and dataclasses, nested.

    Anything else (NumPy arrays, numbers) is returned as it is. On the CPU, ``value`` itself.
    """
    if device.type == "cpu":
        return value
    return _moved(value, device)


def _moved(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, tuple | list):
        return type(value)(_moved(item, device) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _moved(getattr(value, f.name), device) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value


class TrainingCopy:
    """The module a fit steps (``worker``) and the caller's CPU model it publishes into.

    On the CPU the worker is the model itself and publishing does nothing, so CPU fits are exactly what
    they were. Elsewhere the worker is a deep copy on the device, sharing the model's graphs moved there
    (:meth:`RatingModel.graph_tensors`), so the device holds one model and its optimiser state while the
    CPU model stays whole.

    Args:
        model: the model being fitted, on the CPU.
        device: where the steps run.
        copy_always: make the copy even on the CPU (tests of the publishing logic use it).
    """

    def __init__(self, model: RatingModel, device: torch.device | str, *, copy_always: bool = False) -> None:
        self.model = model
        self.device = torch.device(device)
        if self.device.type == "cpu" and not copy_always:
            self.worker = model
        else:
            # Graphs are shared, moved once: a deep copy's memo maps each to its device copy.
            memo: dict[int, Any] = {id(tensor): tensor.to(self.device) for tensor in model.graph_tensors()}
            self.worker = copy.deepcopy(model, memo).to(self.device)

    def batch(self, value: T) -> T:
        """``value`` (a batch, negatives) on the worker's device."""
        return to_device(value, self.device)

    @torch.no_grad()
    def publish(self, part: str = "") -> None:
        """Copy the worker's parameters and buffers into the CPU model; nothing when they are one module.

        ``part`` names the one submodule a fit trains (``ranking``), so only its weights are copied.
        """
        if self.worker is not self.model:
            source = self.worker.get_submodule(part) if part else self.worker
            target = self.model.get_submodule(part) if part else self.model
            target.load_state_dict(source.state_dict())

    @torch.no_grad()
    def restore(self, state: dict[str, torch.Tensor], part: str = "") -> None:
        """Load ``state`` (a CPU ``state_dict`` of the model, or of its submodule ``part``) into the worker."""
        target = self.worker.get_submodule(part) if part else self.worker
        target.load_state_dict(state)
