"""The pyarrow reader gives exactly what the line parser gives, or hands the file back to it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from trainer.data import columnar
from trainer.data.interactions import Interactions, _index
from trainer.data.readers import DataFormatError, read_delimited

pytest.importorskip("pyarrow")

GOOD = [
    ("user,item,rating\nalice,m1,4\nbob,m2,2\nalice,m2,5\n", ",", None),
    ("alice,m1,4\nbob,m2,2\n", ",", None),
    ("alice;m1;4;100\nbob;m2;2;50\n", ";", False),
    ("u\ti\tr\nalice\tm1\t4\nbob\tm2\t2\n", "\t", True),
    ("userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n1,306,3.5,1147868817\n7,296,4.0,1147868828\n", ",", None),
    ("1::1193::5::978300760\n1::661::3::978302109\nu7::661::4.5::978301968\n", "::", False),
    ("a:b::x::4\nc::y::3\n", "::", False),  # a ':' inside a '::' field: the line parser reads it
    (" alice , m1 , 4\nbob,m2,2\n", ",", None),  # padded fields are stripped by both
    ('"alice",m1,4\nbob,"m2",2\n', ",", None),  # quotes are part of the id for both
    ("alice,m1,4\r\nbob,m2,2\r\n", ",", None),
    ("1,2,3\n\n1,3,4\n\n", ",", None),
    ("9,10,1\n9,11,2\n10,10,5", ",", None),  # no final newline
]


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def assert_same(a: Interactions, b: Interactions) -> None:
    assert a.user_ids == b.user_ids and a.item_ids == b.item_ids and a.rating_scale == b.rating_scale
    for field in ("users", "items", "ratings", "timestamps"):
        left, right = getattr(a, field), getattr(b, field)
        assert left.dtype == right.dtype, field
        np.testing.assert_array_equal(left, right, err_msg=field)


@pytest.mark.parametrize(("text", "delimiter", "header"), GOOD)
def test_columnar_equals_the_line_parser(tmp_path: Path, text: str, delimiter: str, header: bool | None) -> None:
    path = write(tmp_path / "r.csv", text)
    fast = read_delimited(path, delimiter=delimiter, header=header, engine="columnar")
    slow = read_delimited(path, delimiter=delimiter, header=header, engine="python")
    assert_same(fast, slow)


def test_plain_files_really_take_the_columnar_path(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", GOOD[4][0])
    data = columnar.read_columnar(path, ",", None)
    assert data is not None and data.user_ids == ("1", "7") and data.item_ids == ("296", "306")
    np.testing.assert_array_equal(data.ratings, [5.0, 3.5, 4.0])
    assert columnar.read_columnar(write(tmp_path / "d.dat", GOOD[5][0]), "::", False) is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3\n1,2\n", r"r\.csv:2: expected 3 fields"),
        ("1,2,3,4\n1,2,3\n", r"r\.csv:2: expected 4 fields"),
        ("1,2,3\n1,2,five\n", r"r\.csv:2: rating 'five' is not a number"),
        ("1,2,3\n1,2,nan\n", r"r\.csv:2: rating 'nan' is not finite"),
        ("1,2,3,100\n1,2,4,noon\n", r"r\.csv:2: timestamp 'noon' is not a number"),
        ("1,2,3\n,2,4\n", r"r\.csv:2: empty user or item id"),
        ("a,b,c,d,e\n", r"r\.csv:1: expected 3 or 4 fields"),
        ("", r"r\.csv: no ratings found"),
        ("user,item,rating\n", r"r\.csv: no ratings found"),
    ],
)
def test_bad_files_still_get_the_line_parsers_message(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        read_delimited(write(tmp_path / "r.csv", text), engine="columnar")


def test_skipped_blank_lines_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="trainer.data.columnar"):
        data = columnar.read_columnar(write(tmp_path / "r.csv", "1,2,3\n\n1,3,4\n\n\n2,2,1\n"), ",", None)
    assert data is not None and len(data) == 3
    assert "skipped 3 blank lines" in caplog.text
    assert "peak RSS" in caplog.text


def test_without_pyarrow_the_line_parser_reads_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columnar, "_pyarrow", lambda: None)
    assert not columnar.available()
    data = read_delimited(write(tmp_path / "r.csv", GOOD[0][0]), engine="columnar")
    assert data.user_ids == ("alice", "bob")


def test_unknown_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown reader engine 'fast'"):
        read_delimited(write(tmp_path / "r.csv", GOOD[1][0]), engine="fast")


@pytest.mark.parametrize(
    "raw",
    [["b", "a", "b", "c", "a"], [30, 7, 30, 1, 7, 99]],
)
def test_numpy_id_mapping_keeps_first_appearance_order(raw: list) -> None:
    fast_index, fast_ids = _index(np.asarray(raw))
    slow_index, slow_ids = _index([str(r) for r in raw])
    assert fast_ids == slow_ids
    np.testing.assert_array_equal(fast_index, slow_index)
    data = Interactions.from_raw(np.asarray(raw), np.asarray(raw), np.ones(len(raw)))
    assert data.user_ids == slow_ids
