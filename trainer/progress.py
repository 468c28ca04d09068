"""Inside one epoch: a batch counter on the epoch's progress bar and the wall-time cap, checked per batch.

At MovieLens 25M's size one epoch of a head runs for minutes, so a bar that moves once per epoch looks
hung and ``max_seconds`` checked between epochs can overshoot by a whole epoch. Both fit loops
(``trainer.fitting``, ``trainer.ranking_fit``) hand each batch to an :class:`EpochWatch`.
"""

from __future__ import annotations

import math
import time

from tqdm.auto import tqdm

from trainer.distributed import DistributedContext, shard_length

REFRESH_SECONDS = 1.0
"""Least time between two redraws of the batch counter."""


class EpochWatch:
    """Counts one epoch's batches on the fit's bar and says when the fit's deadline has passed.

    Args:
        bar: the fit's epoch bar (a disabled bar is never redrawn).
        batches: batches this process steps on per epoch, when known (shown as ``batch i/n``).
        deadline: ``time.perf_counter()`` value after which the fit stops, or None for no limit.
        stop_mid_epoch: whether the epoch may end early at the deadline. Under torch.distributed every
            rank must step equally often, so there the deadline is only checked between epochs.
    """

    def __init__(self, bar: tqdm, batches: int | None, deadline: float | None, *, stop_mid_epoch: bool) -> None:
        self.bar, self.batches, self.deadline = bar, batches, deadline
        self.stop_mid_epoch = stop_mid_epoch
        self.cut_short = False
        self._last_draw = time.perf_counter()

    def out_of_time(self) -> bool:
        """Whether the deadline has passed."""
        return self.deadline is not None and time.perf_counter() > self.deadline

    def tick(self, done: int) -> bool:
        """Record that ``done`` batches of this epoch are stepped; True when the epoch must end now."""
        now = time.perf_counter()
        if not self.bar.disable and now - self._last_draw >= REFRESH_SECONDS:
            of = f"/{self.batches}" if self.batches else ""
            self.bar.set_postfix_str(f"batch {done}{of}", refresh=True)
            self._last_draw = now
        if self.stop_mid_epoch and self.out_of_time():
            self.cut_short = True
        return self.cut_short


def deadline_after(max_seconds: float | None, started: float) -> float | None:
    """The ``perf_counter`` deadline of a fit that began at ``started`` (None without a cap)."""
    return None if max_seconds is None else started + max_seconds


def watch_fit(
    bar: tqdm, batches: object, max_seconds: float | None, started: float, context: DistributedContext
) -> EpochWatch:
    """The watch of one fit loop: ``batches``' per-rank count on ``bar``, the cap from ``started`` on.

    Alone, the cap may end an epoch early; across ranks only between epochs (every rank steps equally often).
    """
    return EpochWatch(
        bar,
        shard_length(batches, context.world_size),
        deadline_after(max_seconds, started),
        stop_mid_epoch=not context.enabled,
    )


def whole_epoch_mean(epoch_seconds: list[float], cut_short: bool) -> float:
    """Mean of ``epoch_seconds`` without a last epoch the cap cut short (NaN when no epoch ran whole)."""
    whole = epoch_seconds[:-1] if cut_short else epoch_seconds
    return sum(whole) / len(whole) if whole else math.nan
