"""Property-based fuzzing of the real server over gRPC.

Every hostile request gets exactly the status the contract documents (the oracle), never
UNKNOWN or INTERNAL, and a well-formed call sent after each one still gets the same, correct
answer. The number of inputs tried is printed at the end of the run (see conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protos.recsys.v1 import service_pb2, service_pb2_grpc

from . import strategies, tally
from .drivers import CHANNEL_OPTIONS
from .oracle import Expectation, Served, expect_bytes, expect_predict, expect_recommend, has_integer_form, read_facts
from .procs import ServerProcess, server_process

MAX_ROWS = 256
TIMEOUT_S = 10.0
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
STRING_ID_MODELS = ("mf", "dense", "lstm", "gcn")
INTEGER_ID_MODELS = ("mfint",)


def _integer_id(raw_id: str) -> str:
    """Tiny ids as integers: "u7" -> "1007" (a dense range); "i0" and "i1" -> the int64 extremes, "i7" -> "21"."""
    number = int(raw_id[1:])
    if raw_id.startswith("u"):
        return str(1000 + number)
    return {0: str(-(2**63)), 1: str(2**63 - 1)}.get(number, str(3 * number))


def _integer_id_copy(source: Path, destination: Path, name: str) -> None:
    """Copies a tiny version as model ``name`` with its user and item ids rewritten as integers."""
    shutil.copytree(source, destination)
    config_path = destination / "config.json"
    config = json.loads(config_path.read_text())
    config["name"] = name
    for entry in config["side_files"]:
        if entry["kind"] in ("SIDE_FILE_KIND_USER_IDS", "SIDE_FILE_KIND_ITEM_IDS"):
            path = destination / entry["path"]
            np.save(path, np.array([_integer_id(i) for i in np.load(path).tolist()]))
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    config_path.write_text(json.dumps(config))


class Target:
    """The fuzzed server, what it serves, and well-formed calls with their first answers.

    A plain class with a short repr: hypothesis prints a failing example's arguments, fixtures included.
    """

    def __init__(
        self,
        process: ServerProcess,
        channel: grpc.Channel,
        stub: service_pb2_grpc.RecommenderServiceStub,
        served: Served,
        probes: list[tuple[str, Message, Message]],
    ) -> None:
        self.process, self.channel, self.stub, self.served, self.probes = process, channel, stub, served, probes

    def __repr__(self) -> str:
        return f"Target({self.process.target})"


def _probes(served: Served) -> list[tuple[str, Message]]:
    mf, lstm, gcn, mfint = (served.models[name][1] for name in ("mf", "lstm", "gcn", "mfint"))
    return [
        (
            "Predict",
            service_pb2.PredictRequest(
                model=service_pb2.ModelSpec(name="mfint"),
                user_int_ids=[int(u) for u in mfint.user_ids[:4]],
                item_int_ids=[int(i) for i in mfint.item_ids[:4]],
            ),
        ),
        (
            "Predict",
            service_pb2.PredictRequest(
                model=service_pb2.ModelSpec(name="mf"), user_ids=list(mf.user_ids[:4]), item_ids=list(mf.item_ids[:4])
            ),
        ),
        (
            "Recommend",
            service_pb2.RecommendRequest(
                model=service_pb2.ModelSpec(name="lstm"),
                histories=[service_pb2.History(item_ids=list(lstm.item_ids[:3]), ratings=[4.0, 1.0, 5.0])],
                k=5,
            ),
        ),
        (
            "Recommend",
            service_pb2.RecommendRequest(model=service_pb2.ModelSpec(name="gcn"), user_ids=[gcn.user_ids[0]], k=5),
        ),
    ]


@pytest.fixture(scope="module")
def fuzz_repository(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny repository plus "mfint": tiny MF with integer ids, so that user_int_ids/item_int_ids are served."""
    repository = tmp_path_factory.mktemp("fuzz-repository")
    for name in STRING_ID_MODELS:
        shutil.copytree(tiny_repository / name, repository / name)
    _integer_id_copy(tiny_repository / "mf" / "1", repository / "mfint" / "1", "mfint")
    return repository


@pytest.fixture(scope="module")
def target(fuzz_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    served = Served(
        models={name: {1: read_facts(fuzz_repository / name / "1")} for name in STRING_ID_MODELS + INTEGER_ID_MODELS},
        max_rows=MAX_ROWS,
        max_message_bytes=64 * 1024 * 1024,
    )
    assert [name for name in served.models if served.models[name][1].integer_ids] == list(INTEGER_ID_MODELS)
    args = ["--max-rows-per-request", str(MAX_ROWS), "--poll-interval-s", "0"]
    with server_process(fuzz_repository, tmp_path_factory.mktemp("fuzz-server"), args) as process:
        channel = grpc.insecure_channel(process.target, options=CHANNEL_OPTIONS)
        stub = service_pb2_grpc.RecommenderServiceStub(channel)
        probes = [
            (method, request, getattr(stub, method)(request, timeout=TIMEOUT_S)) for method, request in _probes(served)
        ]
        try:
            yield Target(process, channel, stub, served, probes)
        finally:
            channel.close()
        assert "unexpected error" not in process.log(), "the server logged an unexpected error (INTERNAL)"


def test_probe_answers_are_the_exported_models_answers(target: Target, tiny_repository: Path) -> None:
    # The baseline the fuzz compares against is itself right: ONNX Runtime on the exported file.
    _, request, response = target.probes[1]
    facts = target.served.models["mf"][1]
    session = ort.InferenceSession(
        str(tiny_repository / "mf" / "1" / "predict.onnx"), providers=["CPUExecutionProvider"]
    )
    users = np.array([facts.user_ids.index(u) for u in request.user_ids], np.int64)
    items = np.array([facts.item_ids.index(i) for i in request.item_ids], np.int64)
    (expected,) = session.run(None, {"user": users, "item": items})
    np.testing.assert_allclose(np.asarray(response.ratings), expected, atol=1e-5)


def _call(target: Target, method: str, request: Message | bytes) -> tuple[grpc.StatusCode, Message | bytes | None, str]:
    if isinstance(request, bytes):
        rpc = target.channel.unary_unary(f"/recsys.v1.RecommenderService/{method}")
    else:
        rpc = getattr(target.stub, method)
    try:
        return grpc.StatusCode.OK, rpc(request, timeout=TIMEOUT_S), ""
    except grpc.RpcError as error:
        return error.code(), None, error.details() or ""


def _still_right(target: Target) -> None:
    """The well-formed probes still get exactly their first answers."""
    for method, request, first in target.probes:
        code, response, details = _call(target, method, request)
        tally.record("well-formed calls interleaved", code)
        assert code == grpc.StatusCode.OK, f"well-formed {method} got {code.name}: {details}"
        assert response == first, f"well-formed {method} answered differently after a hostile call"


def _judge(target: Target, what: str, method: str, request: Message | bytes, expectation: Expectation) -> None:
    code, response, details = _call(target, method, request)
    tally.record(what, code)
    assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), f"{code.name}: {details[:300]}"
    assert code in expectation.codes, (
        f"{method} got {code.name} ({details[:300]}), contract says {[c.name for c in expectation.codes]} "
        f"because: {expectation.why}"
    )
    if code != grpc.StatusCode.OK:
        assert len(details) <= 4096, "error details must stay small enough for any client's metadata limit"
    if code == grpc.StatusCode.OK and expectation.check is not None:
        if isinstance(response, bytes):
            response = {"Predict": service_pb2.PredictResponse, "Recommend": service_pb2.RecommendResponse}[
                method
            ].FromString(response)
        expectation.check(response)
    _still_right(target)


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_predict_fuzz(target: Target, data: st.DataObject) -> None:
    request = data.draw(strategies.predict_requests(target.served))
    _judge(target, "Predict requests", "Predict", request, expect_predict(request, target.served))


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_predict_integer_ids_fuzz(target: Target, data: st.DataObject) -> None:
    request = data.draw(strategies.integer_predict_requests(target.served, INTEGER_ID_MODELS))
    expectation = expect_predict(request, target.served)
    _judge(target, "Predict requests with integer ids", "Predict", request, expectation)
    if expectation.codes == {grpc.StatusCode.OK} and request.user_int_ids:
        # Two call forms of one question: the same pairs as strings get the very same ratings.
        as_strings = service_pb2.PredictRequest(
            model=request.model,
            user_ids=[str(u) for u in request.user_int_ids],
            item_ids=[str(i) for i in request.item_int_ids],
        )
        by_ints, by_strings = (_call(target, "Predict", r) for r in (request, as_strings))
        assert by_ints[0] == by_strings[0] == grpc.StatusCode.OK, (by_ints[2], by_strings[2])
        assert list(by_ints[1].ratings) == list(by_strings[1].ratings)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_recommend_fuzz(target: Target, data: st.DataObject) -> None:
    request = data.draw(strategies.recommend_requests(target.served))
    _judge(target, "Recommend requests", "Recommend", request, expect_recommend(request, target.served))


@settings(FUZZ, max_examples=200)
@given(method=st.sampled_from(("Predict", "Recommend")), payload=strategies.garbage())
def test_raw_bytes_fuzz(target: Target, method: str, payload: bytes) -> None:
    _judge(target, "raw bytes on a method path", method, payload, expect_bytes(method, payload, target.served))


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_k_beyond_int32_on_the_wire(target: Target, data: st.DataObject) -> None:
    payload = data.draw(strategies.wire_k_requests(target.served))
    _judge(
        target, "k beyond int32 on the wire", "Recommend", payload, expect_bytes("Recommend", payload, target.served)
    )


@pytest.mark.parametrize("name", strategies.HOSTILE_NAMES)
def test_metadata_of_unknown_or_path_like_models_is_not_found(target: Target, name: str) -> None:
    request = service_pb2.GetModelMetadataRequest(model=service_pb2.ModelSpec(name=name))
    code, _, details = _call(target, "GetModelMetadata", request)
    tally.record("GetModelMetadata of hostile names", code)
    assert code == grpc.StatusCode.NOT_FOUND, details
    assert len(details) <= 4096


MEGABYTE = "7" * 1_000_000


def _megabyte_requests() -> dict[str, tuple[str, Message]]:
    spec, lstm = service_pb2.ModelSpec(name="mf"), service_pb2.ModelSpec(name="lstm")
    return {
        "predict user id": ("Predict", service_pb2.PredictRequest(model=spec, user_ids=[MEGABYTE], item_ids=["i0"])),
        "predict item ids": (
            "Predict",
            service_pb2.PredictRequest(model=spec, user_ids=["u0"] * 3, item_ids=[MEGABYTE] * 3),
        ),
        "recommend user id": ("Recommend", service_pb2.RecommendRequest(model=spec, user_ids=[MEGABYTE], k=3)),
        "candidate ids": (
            "Recommend",
            service_pb2.RecommendRequest(
                model=spec, user_ids=["u0"], k=3, candidate_item_ids=[MEGABYTE, "x" + MEGABYTE]
            ),
        ),
        "history item id": (
            "Recommend",
            service_pb2.RecommendRequest(
                model=lstm, k=3, histories=[service_pb2.History(item_ids=[MEGABYTE], ratings=[3.0])]
            ),
        ),
        "model name": (
            "Predict",
            service_pb2.PredictRequest(model=service_pb2.ModelSpec(name=MEGABYTE), user_ids=["u0"], item_ids=["i0"]),
        ),
    }


@pytest.mark.parametrize("case", sorted(_megabyte_requests()))
def test_megabyte_ids_get_their_documented_status(target: Target, case: str) -> None:
    method, request = _megabyte_requests()[case]
    expectation = (expect_predict if method == "Predict" else expect_recommend)(request, target.served)
    _judge(target, "1 MB ids and names", method, request, expectation)


def _integer_cases(served: Served) -> dict[str, service_pb2.PredictRequest]:
    """One request of each kind the integer-id strategy draws at random, so each is tried on every run."""
    mfint = served.models["mfint"][1]
    users, items = [int(u) for u in mfint.user_ids], [int(i) for i in mfint.item_ids]
    spec = service_pb2.ModelSpec(name="mfint")

    def pairs(user_ints: list[int], item_ints: list[int], model: service_pb2.ModelSpec = spec, **strings: list[str]):
        return service_pb2.PredictRequest(model=model, user_int_ids=user_ints, item_int_ids=item_ints, **strings)

    return {
        "valid": pairs(users[:3], items[:3]),
        "int64 extremes as known item ids": pairs(users[:2], [-(2**63), 2**63 - 1]),
        "unknown ids": pairs([users[0], 7], [items[2], 2**63 - 2]),
        "int64 extremes unknown": pairs([-(2**63), 2**63 - 1], [0, -1]),
        "mismatched lengths": pairs(users[:2], items[:1]),
        "only item ids": pairs([], items[:2]),
        "both kinds set": pairs(users[:1], items[:1], user_ids=[mfint.user_ids[0]], item_ids=[mfint.item_ids[0]]),
        "string-id model": pairs([0], [0], model=service_pb2.ModelSpec(name="mf")),
        "one pair over max_rows": pairs([users[0]] * (MAX_ROWS + 1), [items[2]] * (MAX_ROWS + 1)),
    }


@pytest.mark.parametrize(
    "case",
    [
        "valid",
        "int64 extremes as known item ids",
        "unknown ids",
        "int64 extremes unknown",
        "mismatched lengths",
        "only item ids",
        "both kinds set",
        "string-id model",
        "one pair over max_rows",
    ],
)
def test_integer_id_cases_get_their_documented_status(target: Target, case: str) -> None:
    request = _integer_cases(target.served)[case]
    expectation = expect_predict(request, target.served)
    assert (expectation.codes == {grpc.StatusCode.OK}) == case.startswith(("valid", "int64 extremes as known"))
    _judge(target, "integer-id cases", "Predict", request, expectation)


@pytest.mark.parametrize("raw_id", ["0", "7", "-7", str(2**63 - 1), str(-(2**63)), str(2**63), "-0", "07", "+7", "٧"])
def test_the_oracle_and_the_contract_rule_agree_on_integer_ids(raw_id: str) -> None:
    from protos import rules

    assert has_integer_form(raw_id) == (rules.integer_id(raw_id) is not None)
