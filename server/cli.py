"""``recsys-serve``: command-line flags, each mirrored by an environment variable.

``--max-batch-size 64`` can also be given as ``RECSYS_MAX_BATCH_SIZE=64``; a flag on the command
line wins over the variable. This is the only module that reads ``os.environ``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from server import security
from server.config import BACKENDS, DEVICES, ConfigError, ServerConfig

ENV_PREFIX = "RECSYS_"
_HELP = {
    "repository": "model repository folder (REPOSITORY/<model>/<version>/config.json), as written by recsys-export",
    "host": "address to bind; 0.0.0.0 accepts connections from other machines",
    "port": "gRPC port; 0 picks a free one",
    "backend": "runtime serving every model",
    "device": "auto: a GPU when one is usable, else the CPU; cuda: refuse to serve on the CPU",
    "max_batch_size": "most rows joined into one runtime call; 1 turns dynamic batching off",
    "max_queue_delay_us": "longest a row waits for others before its batch runs, in microseconds",
    "max_queue_rows": "most rows waiting per model signature before calls fail with RESOURCE_EXHAUSTED",
    "max_rows_per_request": "most pairs per Predict call and users or histories per Recommend call",
    "max_message_bytes": "largest gRPC message received or sent, in bytes",
    "poll_interval_s": "seconds between scans of the repository for new or removed versions; 0 scans once",
    "versions_to_serve": "how many of the newest ready versions of each model stay loaded",
    "metrics_port": "port of the Prometheus /metrics endpoint; 0 turns it off",
    "grace_s": "on SIGTERM/SIGINT, seconds in-flight calls get to finish",
    "workers": "threads running inference",
    "batches_in_flight": "batches of one model signature running at the same time",
    "intra_op_threads": "threads one runtime call may use; 0 lets the runtime decide",
    "inline_max_us": "batches that took less than this (microseconds) run on the event loop, skipping the "
    "thread hand-off; 0 always uses the worker threads",
    "max_batch_cells": "most users x catalogue items scored in one Recommend runtime call; larger requests "
    "run in chunks",
    "retrieval_min_items": "serve Recommend by user id from a version's retrieval index from this many items; "
    "-1: each version's own min_num_items",
    "reflection": "offer gRPC server reflection (for grpcurl-style tools)",
    "tls_cert": "PEM certificate chain to serve TLS with (with --tls-key); plain text without",
    "tls_key": "PEM private key of --tls-cert, unencrypted",
    "tls_client_ca": "PEM CA bundle: require client certificates signed by it (mutual TLS)",
    "auth_token_file": "file of accepted bearer tokens, one per line (tokens can also come from "
    f"{ENV_PREFIX}AUTH_TOKENS, comma-separated; never from a flag)",
    "allow_unauthenticated_health": "leave the health service open when tokens are required",
}
_ENV_ONLY = {"auth_tokens"}  # secrets: a flag would show them to every local user in the process list
_PATHS = {"repository", "tls_cert", "tls_key", "tls_client_ca", "auth_token_file"}
_CHOICES = {"backend": BACKENDS, "device": DEVICES}


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; use true or false")


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The argument parser, with defaults taken from ``environ`` where a RECSYS_* variable is set.

    Raises:
        ConfigError: an environment variable holds a value of the wrong type.
    """
    parser = argparse.ArgumentParser(
        prog="recsys-serve",
        description="Serve exported recommender models over gRPC with dynamic batching. "
        f"Every flag can also be set by the environment variable {ENV_PREFIX}<FLAG> (e.g. {ENV_PREFIX}PORT).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group()
    for field in dataclasses.fields(ServerConfig):
        if field.name in _ENV_ONLY:
            continue
        default = field.default
        kind = Path if field.name in _PATHS else _parse_bool if isinstance(default, bool) else type(default)
        env_value = environ.get(_env_name(field.name))
        if env_value is not None:
            try:
                default = kind(env_value)
            except (ValueError, argparse.ArgumentTypeError) as error:
                raise ConfigError(f"{_env_name(field.name)}={env_value!r}: {error}") from None
        (where if field.name == "host" else parser).add_argument(
            "--" + field.name.replace("_", "-"),
            type=kind,
            default=None if default is dataclasses.MISSING else default,
            required=default is dataclasses.MISSING,
            choices=_CHOICES.get(field.name),
            metavar="BOOL" if kind is _parse_bool else None,
            help=f"{_HELP[field.name]} [env {_env_name(field.name)}]",
        )
    where.add_argument(
        "--listen-all-interfaces",
        action="store_true",
        default=_parse_bool(environ.get(ENV_PREFIX + "LISTEN_ALL_INTERFACES", "false")),
        help=f"bind 0.0.0.0 instead of --host, to accept other machines (use TLS and tokens there) "
        f"[env {ENV_PREFIX}LISTEN_ALL_INTERFACES]",
    )
    parser.add_argument(
        "--log-level",
        default=environ.get(ENV_PREFIX + "LOG_LEVEL", "INFO"),
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help=f"logging level [env {ENV_PREFIX}LOG_LEVEL]",
    )
    return parser


def parse_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[ServerConfig, str]:
    """Turns flags and environment variables into a validated config and a log level.

    Raises:
        ConfigError: a value is out of range (the message names the flag).
        SystemExit: argparse rejected the command line (it printed why).
    """
    environ = os.environ if environ is None else environ
    args = vars(build_parser(environ).parse_args(argv))
    log_level = args.pop("log_level")
    if args.pop("listen_all_interfaces"):
        args["host"] = "0.0.0.0"
    tokens = environ.get(ENV_PREFIX + "AUTH_TOKENS")
    if tokens is not None:
        try:
            args["auth_tokens"] = security.resolve_tokens(None, tokens, ENV_PREFIX + "AUTH_TOKENS")
        except security.SecurityConfigError as error:
            raise ConfigError(str(error)) from None
    return ServerConfig(**args), log_level


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``recsys-serve`` and ``python -m server``; returns the exit status."""
    try:
        config, log_level = parse_config(argv)
    except ConfigError as error:
        print(f"recsys-serve: error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from server.app import serve  # imported late: --help stays fast

    try:
        asyncio.run(serve(config))
    except (FileNotFoundError, security.SecurityConfigError) as error:
        logging.getLogger("server").error("%s", error)
        return 1
    return 0
