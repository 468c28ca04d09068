"""Bearer-token authentication: the interceptor on a tiny server, and where tokens come from."""

from __future__ import annotations

import hmac
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.recsys.v1 import service_pb2_grpc
from server import auth

from .tiny import predict_request, serve_tiny

TOKENS = ("first-token_0123456789", "second.token~ABCDEFGHIJ")
TIMEOUT_S = 5.0


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _predict_code(target: str, metadata: tuple[tuple[str, str], ...] | None) -> tuple[grpc.StatusCode, str]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = service_pb2_grpc.RecommenderServiceStub(channel)
        try:
            response = await stub.Predict(predict_request(("u1", "abc")), metadata=metadata, timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
        assert list(response.ratings) == [3.0]
        return grpc.StatusCode.OK, ""


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        (_bearer(TOKENS[0]), grpc.StatusCode.OK),
        (_bearer(TOKENS[1]), grpc.StatusCode.OK),
        ((("authorization", f"bearer  {TOKENS[0]} "),), grpc.StatusCode.OK),
        (None, grpc.StatusCode.UNAUTHENTICATED),
        (_bearer("not-a-configured-token"), grpc.StatusCode.UNAUTHENTICATED),
        (_bearer(TOKENS[0][:-1]), grpc.StatusCode.UNAUTHENTICATED),
        (_bearer(TOKENS[0] + "x"), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", f"Basic {TOKENS[0]}"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", TOKENS[0]),), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", "Bearer "),), grpc.StatusCode.UNAUTHENTICATED),
        (_bearer(TOKENS[0]) + _bearer("wrong"), grpc.StatusCode.UNAUTHENTICATED),
        ((("x-api-key", TOKENS[0]),), grpc.StatusCode.UNAUTHENTICATED),
    ],
)
async def test_only_a_configured_bearer_token_passes(metadata: tuple | None, code: grpc.StatusCode) -> None:
    chain = auth.interceptors(TOKENS)
    async with serve_tiny(interceptors=chain) as server:
        got, details = await _predict_code(server.target, metadata)
    assert got == code
    if code != grpc.StatusCode.OK:
        assert "authorization" in details or "token" in details
        assert TOKENS[0] not in details and "not-a-configured-token" not in details


async def test_health_is_open_only_when_allowed() -> None:
    request = health_pb2.HealthCheckRequest(service="")
    for allow in (False, True):
        chain = auth.interceptors(TOKENS, allow_unauthenticated_health=allow)
        async with serve_tiny(interceptors=chain) as server, grpc.aio.insecure_channel(server.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            authed = await stub.Check(request, metadata=_bearer(TOKENS[0]), timeout=TIMEOUT_S)
            assert authed.status == health_pb2.HealthCheckResponse.SERVING
            if allow:
                anonymous = await stub.Check(request, timeout=TIMEOUT_S)
                assert anonymous.status == health_pb2.HealthCheckResponse.SERVING
            else:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.Check(request, timeout=TIMEOUT_S)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # The health flag opens health only, never the model API.
            code, _ = await _predict_code(server.target, None)
            assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_streaming_and_unknown_methods_are_refused_without_a_token() -> None:
    async with (
        serve_tiny(interceptors=auth.interceptors(TOKENS)) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await watch.read()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        unknown = channel.unary_unary("/recsys.v1.RecommenderService/NoSuchMethod")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await unknown(b"", timeout=TIMEOUT_S)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await unknown(b"", metadata=_bearer(TOKENS[0]), timeout=TIMEOUT_S)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_every_configured_token_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    interceptor = auth.BearerTokenInterceptor([*TOKENS, "third-token"])
    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for token in (*TOKENS, "third-token", "guess"):
        calls.clear()
        accepted = interceptor.check(_bearer(token)) is None
        assert accepted == (token != "guess")
        assert len(calls) == 3
        # Digests, not the tokens, are compared: equal lengths whatever the guess.
        assert {len(a) for a, _ in calls} == {32} and {len(b) for _, b in calls} == {32}


def test_token_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# service A\n{TOKENS[0]}\n\n   {TOKENS[1]}  \n# {TOKENS[0]}-revoked\n{TOKENS[0]}\n")
    path.chmod(0o600)
    assert auth.load_token_file(path) == frozenset(TOKENS)


def test_token_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(auth.SecurityConfigError, match=r"auth token file .*absent.* does not exist"):
        auth.load_token_file(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.write_text("# nothing yet\n\n")
    with pytest.raises(auth.SecurityConfigError, match=r"empty.* holds no token"):
        auth.load_token_file(empty)
    spaced = tmp_path / "spaced"
    spaced.write_text("ok-token\nhas a space\n")
    with pytest.raises(auth.SecurityConfigError, match=r"line 2 of .*spaced") as caught:
        auth.load_token_file(spaced)
    assert "has a space" not in str(caught.value)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(auth.SecurityConfigError, match="is not UTF-8"):
        auth.load_token_file(binary)


def test_world_readable_token_file_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tokens"
    path.write_text(TOKENS[0])
    path.chmod(0o644)
    with caplog.at_level("WARNING", logger="server.auth"):
        auth.load_token_file(path)
    assert "chmod 600" in caplog.text


def test_tokens_from_file_and_environment_value_are_united(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(TOKENS[0])
    assert auth.resolve_tokens(None, None) == frozenset()
    assert auth.resolve_tokens(path, None) == {TOKENS[0]}
    assert auth.resolve_tokens(None, f" {TOKENS[1]} ,,third ") == {TOKENS[1], "third"}
    assert auth.resolve_tokens(path, TOKENS[1]) == set(TOKENS)
    with pytest.raises(auth.SecurityConfigError, match=r"\$RECSYS_AUTH_TOKENS is set but holds no token"):
        auth.resolve_tokens(None, " , ")
    with pytest.raises(auth.SecurityConfigError, match=r"entry 2 of \$RECSYS_AUTH_TOKENS"):
        auth.resolve_tokens(None, "good,bad token")


def test_interceptor_needs_a_token() -> None:
    with pytest.raises(auth.SecurityConfigError, match="at least one token"):
        auth.BearerTokenInterceptor([])
    with pytest.raises(auth.SecurityConfigError, match="characters other than") as caught:
        auth.BearerTokenInterceptor(["good", "tökén with space"])
    assert "tökén" not in str(caught.value)
    assert auth.interceptors(()) == []
