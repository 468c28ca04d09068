import pytest

from loadtest.cli import build_parser, config_from_args, main
from loadtest.target import TargetError, is_loopback_host, parse_target, validate_target


@pytest.mark.parametrize(
    "target", ["127.0.0.1:50051", "127.3.2.1:1", "localhost:50051", "[::1]:50051", "[::ffff:127.0.0.1]:80"]
)
def test_loopback_targets_are_accepted(target):
    assert validate_target(target).loopback


@pytest.mark.parametrize("target", ["10.0.0.5:50051", "example.com:443", "[2001:db8::1]:50051", "0.0.0.0:50051"])
def test_remote_targets_are_refused(target):
    with pytest.raises(TargetError, match="--allow-remote"):
        validate_target(target)


def test_allow_remote_accepts_without_connecting():
    parsed = validate_target("203.0.113.7:50051", allow_remote=True)  # TEST-NET-3: nothing listens there
    assert (parsed.host, parsed.port, parsed.loopback) == ("203.0.113.7", 50051, False)
    args = build_parser().parse_args(["--target", "203.0.113.7:50051", "--model", "mf", "--allow-remote"])
    config = config_from_args(args)  # validation only: no channel is opened
    assert config.sweep.connection.target == "203.0.113.7:50051"


def test_cli_refuses_a_remote_target_before_any_traffic(capsys):
    assert main(["--target", "203.0.113.7:50051", "--model", "mf", "--duration", "1"]) == 2
    assert "not a loopback address" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":50051", "[::1:50051"])
def test_malformed_targets(bad):
    with pytest.raises(TargetError):
        parse_target(bad)


def test_names_are_not_resolved():
    assert is_loopback_host("LOCALHOST")
    assert not is_loopback_host("localhost.example.com")
    assert parse_target("[::1]:9").grpc_target == "[::1]:9"
