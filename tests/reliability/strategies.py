"""Hypothesis strategies for adversarial requests to the real server.

Every strategy mixes valid values (so that deep code paths are reached) with the hostile ones
the issue lists: empty, long, unicode and duplicated ids (1 MB ids are sent by a plain test:
hypothesis would print them whole); k of 0, -1, 2**31-1 and, on
the wire, beyond int32; empty and oversized lists; histories longer than the model allows;
NaN, infinite and out-of-range ratings; unknown models and versions, including names that
look like paths; pairs sent as integer ids (known, unknown, int64 extremes, mismatched lengths,
set beside string ids, sent to models whose ids are not integers); and bytes that are not a
message at all.
"""

from __future__ import annotations

from hypothesis import strategies as st

from protos.recsys.v1 import service_pb2

from .oracle import ModelFacts, Served, has_integer_form

LONG_ID = "9" * 5000  # ten of them overflow a client's 16 KiB metadata limit if echoed in an error
HOSTILE_IDS = ("", " ", LONG_ID, "1 ", " 1", "01", "-1", "1e3", "0x1", "\x00", "ü", "𝔘", "\u202e1", "1\n", "None")
HOSTILE_NAMES = (
    "",
    ".",
    "..",
    "../mf",
    "mf/../../etc",
    "/etc/passwd",
    "mf/1",
    "MF",
    "mf ",
    "mf\x00",
    "ｍｆ",
    "x" * 70_000,
)
EXTREME_INTS = (0, -1, -(2**31), 2**31 - 1)
INT64_EXTREMES = (0, -1, 1, -(2**63), -(2**63) + 1, 2**63 - 1, 2**63 - 2, 2**31, -(2**31) - 1)
HOSTILE_RATINGS = (float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 0.5, 5.5, 1e30, -1e30)


@st.composite
def ids(draw: st.DrawFn, known: tuple[str, ...]) -> str:
    """One id: known 70% of the time, else hostile or random unicode."""
    roll = draw(st.integers(0, 9))
    if roll < 7:
        return draw(st.sampled_from(known))
    return draw(st.sampled_from(HOSTILE_IDS) if roll < 9 else st.text(max_size=12))


@st.composite
def id_lists(draw: st.DrawFn, known: tuple[str, ...], max_rows: int) -> list[str]:
    """Lists of ids: short and mixed (most often), duplicated known ids, empty, or one row over ``max_rows``."""
    roll = draw(st.integers(0, 9))
    if roll < 6:
        return draw(st.lists(ids(known), min_size=1, max_size=5))
    if roll < 8:
        return draw(st.lists(st.sampled_from(known), min_size=1, max_size=4)) * 3
    return [] if roll == 8 else [draw(st.sampled_from(known))] * (max_rows + 1)


@st.composite
def model_specs(draw: st.DrawFn, served: Served) -> service_pb2.ModelSpec:
    """A served model at version 0 (most often) or a served version; else unknown or path-like names and versions."""
    roll = draw(st.integers(0, 9))
    if roll < 8:
        name = draw(st.sampled_from(tuple(served.models)))
        version = 0 if roll < 5 else draw(st.sampled_from(sorted(served.models[name])))
        return service_pb2.ModelSpec(name=name, version=version)
    if roll == 8:
        name = draw(st.sampled_from(tuple(served.models)))
        return service_pb2.ModelSpec(name=name, version=draw(st.sampled_from((-1, 2, 999, 2**63 - 1, -(2**63)))))
    name = draw(st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=10)))
    return service_pb2.ModelSpec(name=name, version=draw(st.sampled_from((0, 1, 2))))


def _facts_for(served: Served, spec: service_pb2.ModelSpec) -> ModelFacts:
    """The facts used to pick ids: the named model's if known, else any model's (the ids do not matter)."""
    facts = served.resolve(spec)
    if facts is None:
        versions = served.models.get(spec.name) or next(iter(served.models.values()))
        facts = versions[max(versions)]
    return facts


@st.composite
def predict_requests(draw: st.DrawFn, served: Served) -> service_pb2.PredictRequest:
    """Predict requests: pairs of mixed ids, sometimes of mismatched lengths."""
    spec = draw(model_specs(served))
    facts = _facts_for(served, spec)
    users = draw(id_lists(facts.user_ids, served.max_rows))
    if draw(st.integers(0, 4)) == 0:
        items = draw(id_lists(facts.item_ids, served.max_rows))  # most likely of another length
    elif len(users) > 64:
        items = [facts.item_ids[0]] * len(users)
    else:
        items = draw(st.lists(ids(facts.item_ids), min_size=len(users), max_size=len(users)))
    return service_pb2.PredictRequest(model=spec, user_ids=users, item_ids=items)


@st.composite
def ratings(draw: st.DrawFn, facts: ModelFacts) -> float:
    """Ratings: in range (most often), on its edges, just outside, NaN and infinite."""
    roll = draw(st.integers(0, 19))
    if roll < 17:
        return draw(st.floats(facts.rating_min, facts.rating_max, width=32))
    edges = (facts.rating_min, facts.rating_max, facts.rating_min - 1e-3, facts.rating_max + 1e-3)
    return draw(st.sampled_from(edges if roll == 17 else HOSTILE_RATINGS))


@st.composite
def histories(draw: st.DrawFn, facts: ModelFacts) -> service_pb2.History:
    """One history: a length around ``max_history_length`` (0 and over included), items and ratings."""
    limit = max(facts.max_history_length, 1)
    usual = draw(st.integers(0, 9)) < 8
    length = draw(st.integers(1, min(limit, 8)) if usual else st.sampled_from((0, limit, limit + 1, 4 * limit)))
    if length <= 8:
        items = draw(st.lists(ids(facts.item_ids), min_size=length, max_size=length))
        stars = draw(st.lists(ratings(facts), min_size=length, max_size=length))
    else:
        items = [draw(st.sampled_from(facts.item_ids))] * length
        stars = [facts.rating_max] * length
    if draw(st.integers(0, 9)) == 0:
        stars = stars[:-1] if stars else [facts.rating_min]
    return service_pb2.History(item_ids=items, ratings=stars)


@st.composite
def recommend_requests(draw: st.DrawFn, served: Served) -> service_pb2.RecommendRequest:
    """Recommend requests: users or histories (or both, or neither), any k, candidates, flags."""
    spec = draw(model_specs(served))
    facts = _facts_for(served, spec)
    roll = draw(st.integers(0, 9))
    usual = "histories" if facts.sequential and roll < 5 else "users"
    shape = usual if roll < 8 else draw(st.sampled_from(("users", "histories", "both", "neither")))
    users = draw(id_lists(facts.user_ids, served.max_rows)) if shape in ("users", "both") else []
    rows = draw(st.lists(histories(facts), min_size=1, max_size=3)) if shape in ("histories", "both") else []
    k = draw(st.integers(1, facts.num_items + 1) if draw(st.integers(0, 9)) < 8 else st.sampled_from(EXTREME_INTS))
    candidates = draw(st.lists(ids(facts.item_ids), max_size=8)) if draw(st.booleans()) else []
    request = service_pb2.RecommendRequest(
        model=spec,
        user_ids=users,
        histories=rows,
        k=k,
        candidate_item_ids=candidates,
        allow_popularity_fallback=draw(st.booleans()),
    )
    exclude_seen = draw(st.sampled_from((None, True, False)))
    if exclude_seen is not None:
        request.exclude_seen = exclude_seen
    return request


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint of a value taken modulo 2**64 (negative numbers as 10 bytes)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def wire_k_requests(draw: st.DrawFn, served: Served) -> bytes:
    """A valid Recommend request whose k is re-sent on the wire as a 64-bit varint beyond int32.

    Protobuf keeps the last value of a scalar field, truncated to 32 bits for an int32: the oracle
    parses the same bytes, so the server must behave as that truncated k dictates.
    """
    names = tuple(served.models)
    facts = _facts_for(served, service_pb2.ModelSpec(name=draw(st.sampled_from(names))))
    request = service_pb2.RecommendRequest(
        model=service_pb2.ModelSpec(name=facts.name), user_ids=[draw(st.sampled_from(facts.user_ids))], k=3
    )
    big = draw(
        st.one_of(st.sampled_from((2**31, 2**32, 2**32 + 3, 2**63 - 1, -(2**31) - 1)), st.integers(2**31, 2**64))
    )
    return request.SerializeToString() + b"\x20" + _varint(big)


def garbage() -> st.SearchStrategy[bytes]:
    """Bytes for a method path: random, a model name followed by junk, invalid UTF-8, broken varints."""
    return st.one_of(
        st.binary(max_size=64),
        st.binary(min_size=1, max_size=8).map(lambda b: b"\x0a\x03mf\x12" + b),
        st.sampled_from((b"\x12\x02\xff\xfe", b"\x0a\x02\x0a\xff", b"\xff" * 16, b"\x12\x80\x80\x80\x80\x10")),
    )


@st.composite
def int_ids(draw: st.DrawFn, known: tuple[int, ...]) -> int:
    """One integer id: known 70% of the time, else a neighbour of a known one, an int64 extreme or any int64."""
    roll = draw(st.integers(0, 9))
    if roll < 7 and known:
        return draw(st.sampled_from(known))
    if roll == 7 and known:
        return max(-(2**63), min(2**63 - 1, draw(st.sampled_from(known)) + draw(st.sampled_from((-1, 1)))))
    return draw(st.sampled_from(INT64_EXTREMES) if roll < 9 else st.integers(-(2**63), 2**63 - 1))


def _as_ints(raw_ids: tuple[str, ...]) -> tuple[int, ...]:
    """The catalogue's ids as integers where they have the form (all of them for an integer-id model)."""
    return tuple(int(raw) for raw in raw_ids if has_integer_form(raw))


@st.composite
def int_id_lists(draw: st.DrawFn, known: tuple[int, ...], max_rows: int) -> list[int]:
    """Lists of integer ids: short and mixed (most often), empty, or one row over ``max_rows``."""
    roll = draw(st.integers(0, 9))
    if roll < 8:
        return draw(st.lists(int_ids(known), min_size=1, max_size=5))
    return [] if roll == 8 else [draw(st.sampled_from(known or (0,)))] * (max_rows + 1)


@st.composite
def integer_predict_requests(
    draw: st.DrawFn, served: Served, integer_models: tuple[str, ...]
) -> service_pb2.PredictRequest:
    """Predict requests carrying their pairs in ``user_int_ids``/``item_int_ids``.

    Mostly to a model whose ids are all integers (``integer_models``); else to any model, including
    unknown ones and those with string ids. Lengths usually match, sometimes not; sometimes string ids
    are set as well.
    """
    if draw(st.integers(0, 9)) < 7:
        spec = service_pb2.ModelSpec(name=draw(st.sampled_from(integer_models)))
    else:
        spec = draw(model_specs(served))
    facts = _facts_for(served, spec)
    known_users, known_items = _as_ints(facts.user_ids), _as_ints(facts.item_ids)
    users = draw(int_id_lists(known_users, served.max_rows))
    roll = draw(st.integers(0, 9))
    if roll == 0:
        items = draw(int_id_lists(known_items, served.max_rows))  # most likely of another length
    elif len(users) > 64:
        items = [(known_items or (0,))[0]] * len(users)
    else:
        items = draw(st.lists(int_ids(known_items), min_size=len(users), max_size=len(users)))
    request = service_pb2.PredictRequest(model=spec, user_int_ids=users, item_int_ids=items)
    if roll == 1:  # both kinds set: the contract says one or the other
        request.user_ids.extend([str(user) for user in users[:1]] or [facts.user_ids[0]])
        request.item_ids.extend([str(item) for item in items[:1]] or [facts.item_ids[0]])
    return request
