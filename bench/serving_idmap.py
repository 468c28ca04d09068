"""Per-call cost of turning a Predict request's raw ids into indices, and alternatives, in microseconds.

The serving benchmark's profile of 1000-pair Predict calls shows the id mapping as the largest
piece of our own Python code on the server. This measures the candidates in isolation, on the id
space of a real model version (or MovieLens-like ids "1".."N"), so that the choice is made on
numbers: the current ``dict`` + ``operator.itemgetter``, NumPy lookups over the string ids, a
numeric fast path for decimal ids, and what a contract change to packed ``int64`` indices would
cost (parsing ``repeated int64`` instead of ``repeated string``). It also times the response side.

    python -m bench.serving_idmap --repository model-repository --model mf
"""

from __future__ import annotations

import argparse
import operator
import sys
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from loadtest.workload import IdSpace, WorkloadSpec, build_workload, load_id_space
from protos.recsys.v1 import model_config_pb2, service_pb2


def _best_us(function: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


def _numeric_table(ids: np.ndarray) -> np.ndarray | None:
    """index by int(id) when every id is a decimal integer (MovieLens), else None."""
    try:
        values = ids.astype(np.int64)
    except ValueError:
        return None
    table = np.full(int(values.max()) + 1, -1, dtype=np.int64)
    table[values] = np.arange(len(ids))
    return table


def candidates(ids: IdSpace, request: service_pb2.PredictRequest) -> dict[str, Callable[[], object]]:
    users, items = list(request.user_ids), list(request.item_ids)
    user_index = {u: i for i, u in enumerate(ids.user_ids.tolist())}
    item_index = {u: i for i, u in enumerate(ids.item_ids.tolist())}
    order_u, order_i = np.argsort(ids.user_ids), np.argsort(ids.item_ids)
    sorted_u, sorted_i = ids.user_ids[order_u], ids.item_ids[order_i]
    table_u, table_i = _numeric_table(ids.user_ids), _numeric_table(ids.item_ids)
    payload = request.SerializeToString()
    packed = model_config_pb2.TensorSpec(shape=[user_index[u] for u in users] + [item_index[i] for i in items])
    packed_bytes = packed.SerializeToString()
    ratings = np.random.default_rng(0).uniform(1, 5, len(users)).astype(np.float32)

    def itemgetter_map() -> object:
        if len(users) == 1:
            return np.array([user_index[users[0]]]), np.array([item_index[items[0]]])
        return (
            np.array(operator.itemgetter(*users)(user_index), dtype=np.int64),
            np.array(operator.itemgetter(*items)(item_index), dtype=np.int64),
        )

    def searchsorted_map() -> object:
        out = []
        for raw, ordered, order in ((users, sorted_u, order_u), (items, sorted_i, order_i)):
            query = np.array(raw)
            pos = np.searchsorted(ordered, query).clip(0, len(ordered) - 1)
            if not (ordered[pos] == query).all():
                raise KeyError("unknown id")
            out.append(order[pos])
        return out

    runs: dict[str, Callable[[], object]] = {
        "parse PredictRequest (string ids)": lambda: service_pb2.PredictRequest.FromString(payload),
        "read ids: list(request.user_ids/item_ids)": lambda: (list(request.user_ids), list(request.item_ids)),
        "map: dict + operator.itemgetter (server today)": itemgetter_map,
        "map: numpy searchsorted over string ids": searchsorted_map,
    }
    if table_u is not None and table_i is not None:
        runs["map: decimal ids -> int table (numeric fast path)"] = lambda: (
            table_u[np.array(users).astype(np.int64)],
            table_i[np.array(items).astype(np.int64)],
        )
    runs["contract change: parse packed int64 indices"] = lambda: model_config_pb2.TensorSpec.FromString(packed_bytes)
    runs["contract change: read packed indices to numpy"] = lambda: np.array(packed.shape, dtype=np.int64)
    runs["response: PredictResponse(ratings=arr.tolist()) + serialize"] = lambda: service_pb2.PredictResponse(
        ratings=ratings.tolist()
    ).SerializeToString()
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serving_idmap",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--repository", type=Path, help="model repository (else MovieLens-like ids '1'..'N')")
    parser.add_argument("--model", default="mf", help="model whose id space to use")
    parser.add_argument("--users", type=int, default=943, help="without --repository: number of users")
    parser.add_argument("--items", type=int, default=1682, help="without --repository: number of items")
    parser.add_argument("--pairs", default="1,1000", help="pairs per request to measure")
    args = parser.parse_args(argv)
    if args.repository:
        ids = load_id_space(args.repository, args.model)
    else:
        ids = IdSpace(
            np.array([str(i) for i in range(1, args.users + 1)]), np.array([str(i) for i in range(1, args.items + 1)])
        )
    sizes = [int(p) for p in args.pairs.split(",")]
    results: dict[str, list[float]] = {}
    for pairs in sizes:
        workload = build_workload(WorkloadSpec(model=args.model, rows_per_request=pairs, pool_size=8), ids)
        request = workload.parse_request(0)
        for name, function in candidates(ids, request).items():
            results.setdefault(name, []).append(_best_us(function, max(20, 20_000 // pairs)))
    print(f"ids of {ids.source or 'MovieLens-like ids'}: {len(ids.user_ids)} users, {len(ids.item_ids)} items")
    print("| step | " + " | ".join(f"{p} pairs (us/call)" for p in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name, values in results.items():
        print(f"| {name} | " + " | ".join(f"{v:,.1f}" for v in values) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
