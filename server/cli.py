"""``recsys-serve``: command-line flags, each mirrored by an environment variable.

``--max-batch-size 64`` can also be given as ``RECSYS_MAX_BATCH_SIZE=64``; a flag on the command
line wins over the variable. Flags, variables, types, choices and help texts all come from the fields
of :class:`server.config.ServerConfig` (help in each field's metadata), so a new setting is written
once. This is the only module that reads ``os.environ``.
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
from server.config import ENV_PREFIX, ConfigError, ServerConfig

_PATH_TYPES = ("Path", "Path | None")  # field annotations (strings under postponed evaluation)


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
        if field.metadata.get("env_only"):
            continue
        default = field.default
        kind = Path if field.type in _PATH_TYPES else _parse_bool if isinstance(default, bool) else type(default)
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
            choices=field.metadata.get("choices"),
            metavar="BOOL" if kind is _parse_bool else None,
            help=f"{field.metadata['help']} [env {_env_name(field.name)}]",
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
    if config.processes > 1:
        from server import supervisor

        logging.basicConfig(level=log_level, format=supervisor.LOG_FORMAT)
        try:
            return supervisor.run(config, log_level)
        except OSError as error:  # FileNotFoundError included
            logging.getLogger("server").error("%s", error)
            return 1
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from server.app import serve  # imported late: --help stays fast

    try:
        asyncio.run(serve(config))
    except (FileNotFoundError, security.SecurityConfigError, ConfigError) as error:
        logging.getLogger("server").error("%s", error)
        return 1
    return 0


def flag_table() -> str:
    """The markdown table of every setting (flag, variable, default, help) that ``server/README.md`` holds.

    A test keeps the README's copy equal to this, so that the help texts stay written once, in
    ``ServerConfig``'s field metadata. Regenerate it with
    ``python -c "from server.cli import flag_table; print(flag_table())"``.
    """
    rows = ["| flag | environment variable | default | what it does |", "|---|---|---|---|"]
    for field in dataclasses.fields(ServerConfig):
        env = f"`{_env_name(field.name)}`"
        if field.metadata.get("env_only"):
            flag = "(none: environment only)"
        else:
            flag = "`--" + field.name.replace("_", "-") + "`"
        default = "required" if field.default is dataclasses.MISSING else _shown_default(field.default)
        rows.append(f"| {flag} | {env} | {default} | {field.metadata['help'].replace('|', '/')} |")
    rows.append(
        f"| `--listen-all-interfaces` | `{ENV_PREFIX}LISTEN_ALL_INTERFACES` | false | bind 0.0.0.0 instead of "
        "--host, to accept other machines (use TLS and tokens there) |"
    )
    rows.append(f"| `--log-level` | `{ENV_PREFIX}LOG_LEVEL` | INFO | logging level |")
    return "\n".join(rows)


def _shown_default(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None or value == frozenset() or value == "":
        return "none"
    return f"`{value}`"
