"""The inference engine of one model version: arrays in, arrays out (signature -> batcher -> runtime).

It knows signatures and their tensors' kinds, not ids, users or requests: the layer above
(``server.model``) turns ids into the arrays of each kind and reads the outputs back.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from concurrent.futures import Executor

import numpy as np

from server.batching import BatchingSettings, BatchObserver, DynamicBatcher
from server.errors import ModelLoadError
from server.runtime import Runtime
from server.signatures import Routes, ServedSignature, route

KindArrays = Mapping[int, np.ndarray]
"""``TensorKind`` -> array, batch first: what a call provides; each signature takes the kinds it needs."""


class InferenceEngine:
    """A loaded runtime wired to one dynamic batcher per signature.

    Args:
        signatures: the version's signatures this server runs.
        runtime: the backend running them.
        settings: batching settings.
        executor: thread pool batches run in.
        num_items: catalogue size; a score output's row costs this many cells in the batch cap.
        label: how batcher logs name the version (``'mf' v3``).
        observers: receiver of batch statistics per signature; a signature answering a call without its
            own observer reports to the observer of that call's signature name (``predict_user`` to
            ``predict``), so metrics keep their rows whichever signature computed them.
    """

    def __init__(
        self,
        signatures: list[ServedSignature],
        runtime: Runtime,
        settings: BatchingSettings,
        executor: Executor,
        num_items: int,
        label: str,
        observers: Mapping[str, BatchObserver] | None = None,
    ) -> None:
        self.signatures = {signature.name: signature for signature in signatures}
        self.routes: Routes = route(signatures)
        self.runtime = runtime
        self.num_items = num_items
        observers = observers or {}
        self.batchers = {
            name: DynamicBatcher(
                functools.partial(runtime.run, name),
                settings,
                executor,
                name=f"{label} {name}",
                observer=observers.get(name, observers.get("recommend" if signature.scores_catalogue else "predict")),
                row_cost=num_items if signature.scores_catalogue else 1,
            )
            for name, signature in self.signatures.items()
        }

    @property
    def settings(self) -> BatchingSettings:
        """The batching settings every signature's batcher uses."""
        return next(iter(self.batchers.values())).settings

    def _inputs(self, signature: ServedSignature, arrays: KindArrays) -> tuple[np.ndarray, ...]:
        return tuple(arrays[kind] for kind in signature.input_kinds)

    async def run(self, signature: ServedSignature, arrays: KindArrays) -> np.ndarray:
        """Run one signature through its batcher: float32 [B] or [B, num_items]."""
        return await self.batchers[signature.name].submit(self._inputs(signature, arrays))

    def run_now(self, signature: ServedSignature, arrays: KindArrays) -> np.ndarray:
        """Run one signature directly on the runtime, bypassing the batcher (warm-up)."""
        return self.runtime.run(signature.name, self._inputs(signature, arrays))

    def check_output(self, signature: ServedSignature, output: np.ndarray, rows: int) -> None:
        """Raise ModelLoadError unless ``output`` has the documented shape and dtype.

        Raises:
            ModelLoadError: naming the signature, what came out and what was expected.
        """
        expected = (rows, self.num_items) if signature.scores_catalogue else (rows,)
        if output.shape != expected or output.dtype != np.float32:
            raise ModelLoadError(
                f"warm-up: {signature.name} returned {output.dtype}{list(output.shape)}, "
                f"expected float32{list(expected)}"
            )

    async def close(self) -> None:
        """Stops the batchers and releases the runtime."""
        for batcher in self.batchers.values():
            await batcher.close()
        self.runtime.close()
