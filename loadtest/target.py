"""Where the load goes: parsing ``HOST:PORT`` and refusing anything but this machine.

A load test is a small denial-of-service attack. Sending one to a machine by mistake (a typo in a
host name, a production address pasted from a runbook) is the failure this module exists to stop:
only loopback targets are accepted unless the user says ``--allow-remote``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class TargetError(ValueError):
    """The target is malformed, or remote without ``--allow-remote``."""


@dataclass(frozen=True)
class Target:
    """A parsed gRPC target.

    Attributes:
        host: Host name or IP address, without IPv6 brackets.
        port: TCP port.
        loopback: True when the host is this machine (127.0.0.0/8, ::1 or a localhost name).
    """

    host: str
    port: int
    loopback: bool

    @property
    def grpc_target(self) -> str:
        """The target as gRPC expects it (IPv6 addresses bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def is_loopback_host(host: str) -> bool:
    """Tell whether ``host`` names this machine, without any DNS lookup.

    Only literal loopback addresses and the standard localhost names count: resolving a name would
    trust whatever the resolver says, and a name that happens to resolve to 127.0.0.1 today may not
    tomorrow.

    Args:
        host: Host name or IP address, IPv6 with or without brackets.

    Returns:
        True for 127.0.0.0/8, ::1 (and IPv4-mapped loopback) and localhost names.
    """
    bare = host.strip().strip("[]").lower()
    if bare in _LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def parse_target(target: str) -> Target:
    """Split ``HOST:PORT`` (``[V6]:PORT`` for IPv6) into its parts.

    Args:
        target: The address the server listens on, e.g. ``127.0.0.1:50051``.

    Returns:
        The parsed target.

    Raises:
        TargetError: If the port is missing or not a number in 1..65535.
    """
    text = target.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep:
            raise TargetError(f"target {target!r}: unclosed '[' in an IPv6 address; write it as [::1]:50051")
    else:
        host, _, port_text = text.rpartition(":")
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise TargetError(f"target {target!r} is not HOST:PORT with a port in 1..65535, e.g. 127.0.0.1:50051")
    return Target(host=host, port=int(port_text), loopback=is_loopback_host(host))


def validate_target(target: str, *, allow_remote: bool = False) -> Target:
    """Parse ``target`` and refuse a remote host unless explicitly allowed.

    This only inspects the string: it opens no connection, so it is safe to call on any input.

    Args:
        target: ``HOST:PORT``.
        allow_remote: Accept hosts other than this machine (the ``--allow-remote`` flag).

    Returns:
        The parsed target.

    Raises:
        TargetError: If the target is malformed, or remote and ``allow_remote`` is false.
    """
    parsed = parse_target(target)
    if not parsed.loopback and not allow_remote:
        raise TargetError(
            f"refusing to load-test {parsed.host!r}: it is not a loopback address (127.0.0.0/8, ::1, localhost). "
            "Pass --allow-remote if you own that server and mean to send it this traffic."
        )
    return parsed
