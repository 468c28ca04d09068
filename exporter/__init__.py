"""recsys-serve: the exporter stage.

Turns trainer checkpoints into versions of a model repository (ONNX + TorchScript + side files +
``config.json``, see ``protos/recsys/v1/model_config.proto``) that the server loads without the
trainer's code or torch_geometric.
"""

from exporter.config import read_config
from exporter.errors import ExportError, ExportInputError, ParityError
from exporter.export import ExportResult, export_checkpoint, export_run

__all__ = [
    "ExportError",
    "ExportInputError",
    "ExportResult",
    "ParityError",
    "export_checkpoint",
    "export_run",
    "read_config",
]
