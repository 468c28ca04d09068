"""Transport security, caller authentication and the decode guard, under their former common name.

Each piece lives in its own module: :mod:`server.tls` (TLS credentials, binding), :mod:`server.auth`
(bearer tokens), :mod:`server.request_guard` (INVALID_ARGUMENT for undecodable requests), with
:mod:`server.setting_files` holding their shared error. This module re-exports their public names for
code written against ``server.security``; new code should import the module it needs.
"""

from __future__ import annotations

import hmac  # re-exported: tests patch ``security.hmac.compare_digest``
from collections.abc import Callable
from typing import Any

import grpc

from protos.recsys.v1 import service_pb2, service_pb2_grpc
from server.auth import (
    HEALTH_METHOD_PREFIX,
    BearerTokenInterceptor,
    interceptors,
    load_token_file,
    parse_token_list,
    resolve_tokens,
)
from server.request_guard import UndecodableRequest, add_guarded_service, guard_undecodable, guarded_handlers
from server.setting_files import SecurityConfigError
from server.tls import TlsConfig, bind, is_loopback, read_pem, server_credentials

__all__ = [
    "HEALTH_METHOD_PREFIX",
    "BearerTokenInterceptor",
    "SecurityConfigError",
    "TlsConfig",
    "UndecodableRequest",
    "add_guarded_service",
    "add_guarded_servicer",
    "bind",
    "guard_undecodable",
    "guarded_handlers",
    "hmac",
    "interceptors",
    "is_loopback",
    "load_token_file",
    "parse_token_list",
    "read_pem",
    "resolve_tokens",
    "server_credentials",
]

_SERVICES = {
    service_pb2_grpc.add_RecommenderServiceServicer_to_server: service_pb2.DESCRIPTOR.services_by_name[
        "RecommenderService"
    ],
}
"""Generated registration function -> the descriptor of the service it registers."""


def add_guarded_servicer(add_to_server: Callable[[Any, Any], None], servicer: object, server: grpc.aio.Server) -> None:
    """:func:`server.request_guard.add_guarded_service`, named by the generated registration function.

    Kept for callers written before the guard read service descriptors; pass the descriptor to
    ``add_guarded_service`` instead.

    Args:
        add_to_server: The generated function, e.g. ``service_pb2_grpc.add_RecommenderServiceServicer_to_server``.
        servicer: The servicer instance.
        server: The server to register on.

    Raises:
        TypeError: ``add_to_server`` registers a service this module does not know; call
            ``add_guarded_service`` with that service's descriptor.
    """
    service = _SERVICES.get(add_to_server)
    if service is None:
        raise TypeError(
            f"{getattr(add_to_server, '__name__', add_to_server)!r} registers no service known here: call "
            "server.request_guard.add_guarded_service(service_pb2.DESCRIPTOR.services_by_name[NAME], servicer, server)"
        )
    add_guarded_service(service, servicer, server)
