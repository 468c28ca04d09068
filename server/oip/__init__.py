"""The Open Inference Protocol (KServe v2 / Triton gRPC) beside recsys.v1, on the same port and batchers.

Modules: ``servicer`` (RPCs, errors to status codes), ``infer`` (ModelInfer: tensors to a recsys call and
back), ``models`` (OIP model names, versions and tensors of a version), ``tensors`` (typed and raw
contents), ``domain`` (the only calls into the registry and a loaded version). Mapping: docs/oip.md.
"""

from server.oip.servicer import SERVICE_NAME, InferenceService, add_to_server

__all__ = ["SERVICE_NAME", "InferenceService", "add_to_server"]
