"""``python -m client``: ask a running server for a user's recommendations and predicted ratings.

The main job's last step: after training, exporting and starting the server, this prints what
the served model says about one user, so a person can see the whole chain work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc

from client.channel import DEFAULT_TARGET
from client.sync import RecsysClient


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m client``."""
    parser = argparse.ArgumentParser(
        prog="python -m client",
        description="Print a served model's recommendations and predicted ratings for one user.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--target", default=DEFAULT_TARGET, help="server address HOST:PORT")
    parser.add_argument("--model", required=True, help="model name, e.g. mf")
    parser.add_argument("--user", required=True, help="raw user id, e.g. 196")
    parser.add_argument("--items", nargs="*", default=[], help="raw item ids to predict ratings for")
    parser.add_argument("--k", type=int, default=10, help="number of recommendations")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the model to be SERVING")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call, in seconds")
    return parser


def run(args: argparse.Namespace) -> None:
    """Sends the calls and prints their answers."""
    with RecsysClient(args.target, timeout=args.timeout) as client:
        client.wait_ready(args.model, timeout=args.wait)
        meta = client.metadata(args.model)
        print(f"model {args.model!r} v{meta.status.version}: {meta.backend} on {', '.join(meta.execution_providers)}")
        answer = client.recommend(args.model, [args.user], k=args.k, allow_popularity_fallback=True)
        result = answer.results[0]
        how = "most popular items (unknown user)" if result.fallback else "seen items excluded"
        print(f"top {len(result.item_ids)} items for user {args.user} ({how}):")
        for rank, (item, score) in enumerate(zip(result.item_ids, result.scores, strict=True), start=1):
            print(f"  {rank:2d}. item {item:>8}  score {score:.3f}")
        items = args.items or result.item_ids[:3]
        if not result.fallback:
            prediction = client.predict(args.model, [args.user] * len(items), items)
            print(f"predicted ratings for user {args.user}:")
            for item, rating in zip(items, prediction.ratings, strict=True):
                print(f"  item {item:>8}: {rating:.2f} stars")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1 with the server's message when a call fails)."""
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except grpc.RpcError as error:
        code = error.code().name if isinstance(error, grpc.Call) else "ERROR"
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        print(f"python -m client: {code}: {details}", file=sys.stderr)
        return 1
    except TimeoutError as error:
        print(f"python -m client: {error}", file=sys.stderr)
        return 1
    return 0
