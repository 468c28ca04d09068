"""recsys-serve: the trainer stage.

Reads ratings into one :class:`~trainer.data.interactions.Interactions` object, trains the four
architectures of :mod:`trainer.models`, evaluates them and writes checkpoints
(:mod:`trainer.checkpoint`) for the exporter.
"""

from trainer.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from trainer.tiny import train_tiny_checkpoint

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint", "train_tiny_checkpoint"]
