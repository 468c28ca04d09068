"""The contract rules every stage shares: one statement, and every stage really applies it."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from exporter.files import sha256_file
from loadtest.int_ids import decimal_int64
from protos import rules
from server.errors import ModelLoadError
from server.integer_ids import IntegerIndex
from server.repository import checked_file


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, (1 << 20) + 7])  # empty, tiny, around one chunk
def test_file_sha256_is_hashlib_sha256_of_the_bytes_in_lower_case_hex(tmp_path, size):
    payload = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "model.onnx"
    path.write_bytes(payload)
    digest = rules.file_sha256(path)
    assert digest == hashlib.sha256(payload).hexdigest()
    assert len(digest) == 64 and digest == digest.lower()


def test_what_the_exporter_records_is_what_the_server_accepts(tmp_path):
    path = tmp_path / "user_ids.npy"
    path.write_bytes(b"ids")
    recorded = sha256_file(path)  # the exporter's name for the rule
    assert checked_file(tmp_path, "user_ids.npy", recorded) == path
    assert checked_file(tmp_path, "user_ids.npy", recorded.upper()) == path, "hex digits compare case-blind"
    path.write_bytes(b"idz")
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        checked_file(tmp_path, "user_ids.npy", recorded)


@pytest.mark.parametrize(
    ("raw_id", "value"),
    [
        ("0", 0),
        ("196", 196),
        ("-3", -3),
        (str(2**63 - 1), 2**63 - 1),
        (str(-(2**63)), -(2**63)),
        (str(2**63), None),  # one past int64
        (str(-(2**63) - 1), None),
        ("0196", None),  # sent as 196 it would name user "196"
        ("+196", None),
        (" 196", None),
        ("196 ", None),
        ("-0", None),
        ("1_000", None),  # int() reads it, but "1000" is another id
        ("\u0667", None),  # ARABIC-INDIC DIGIT SEVEN: int() reads 7
        ("1.0", None),
        ("1e3", None),
        ("0x1", None),
        ("", None),
        ("u196", None),
        ("9" * 5000, None),  # beyond int()'s digit limit: no integer form, no exception
    ],
)
def test_an_id_has_an_integer_form_only_when_written_as_str_of_an_int64(raw_id, value):
    assert rules.integer_id(raw_id) == value


def test_a_catalogue_has_integer_ids_only_when_every_id_has_the_form():
    assert rules.integer_ids(["10", "-2", "7"]) == [10, -2, 7]
    assert rules.integer_ids([]) == []
    assert rules.integer_ids(["10", "007"]) is None
    assert rules.integer_ids(["10", 7]) is None, "only strings are raw ids"


@pytest.mark.parametrize(
    "raw_ids",
    [
        ["1", "22", "-3", str(2**63 - 1)],
        ["1", "01"],
        ["5", "+6"],
        ["1", str(2**63)],
        ["\u0667"],
        ["1_000", "2"],
    ],
)
def test_server_and_load_tester_agree_on_which_catalogues_offer_integer_ids(raw_ids):
    expected = rules.integer_ids(raw_ids)
    served = IntegerIndex.build(raw_ids)
    sent = decimal_int64(np.array(raw_ids))
    assert (served is not None) == (sent is not None) == (expected is not None)
    if expected is not None:
        assert sent.tolist() == expected
        np.testing.assert_array_equal(served.lookup(np.array(expected, dtype=np.int64)), np.arange(len(raw_ids)))
