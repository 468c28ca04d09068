"""recsys-serve: the server stage.

Serves the versions of a model repository (see ``protos/recsys/v1/model_config.proto``) over
gRPC. Depends on ``protos`` only: never on the trainer, the exporter or torch_geometric.
"""

from server.app import RunningServer, serve
from server.config import ServerConfig

__all__ = ["RunningServer", "ServerConfig", "serve"]
