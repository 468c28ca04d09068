"""The runtime interface every backend implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SignatureSpec:
    """Names of one exported entry point, in call order.

    Attributes:
        name: ``predict`` or ``recommend``.
        inputs: Input tensor names, in the order the TorchScript method takes them.
        output: Name of the single output tensor.
    """

    name: str
    inputs: tuple[str, ...]
    output: str


class Runtime(abc.ABC):
    """A loaded model version that maps input arrays to an output array.

    Implementations must be safe to call from several threads at once: the batcher runs
    batches in a thread pool so that the event loop keeps serving while a batch runs.
    """

    backend: str = ""

    @property
    @abc.abstractmethod
    def providers(self) -> list[str]:
        """Devices or execution providers really in use, best first (e.g. ``["cpu"]``)."""

    @abc.abstractmethod
    def run(self, signature: str, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """Runs one signature.

        Args:
            signature: ``predict`` or ``recommend``.
            inputs: Arrays in the signature's input order, batch first: int64 indices and
                lengths, float32 ratings.

        Returns:
            The output array, as many rows as the inputs (float32 [B] or [B, num_items]).
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most runtimes free memory on garbage collection
        """Releases the runtime's resources; it is not called again afterwards."""
