"""Parsing every supported format, and a clear error naming file and line for each kind of bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from trainer.data.readers import (
    DataFormatError,
    read_delimited,
    read_movielens_100k,
    read_movielens_100k_split,
    read_movielens_ratings_dat,
)
from trainer.data.sources import load_interactions, load_split


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_movielens_100k_folder(tmp_path: Path) -> None:
    write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n")
    data = read_movielens_100k(tmp_path)
    assert data.user_ids == ("196", "186") and data.item_ids == ("242", "302", "377")
    np.testing.assert_array_equal(data.users, [0, 1, 0])
    np.testing.assert_array_equal(data.items, [0, 1, 2])
    np.testing.assert_array_equal(data.ratings, [3.0, 3.0, 1.0])
    np.testing.assert_array_equal(data.timestamps, [881250949, 891717742, 878887116])
    assert load_interactions(str(tmp_path)).user_ids == data.user_ids


def test_predefined_split_shares_ids_and_keeps_cold_test_items(tmp_path: Path) -> None:
    write(tmp_path / "u1.base", "1\t10\t5\t1\n2\t10\t3\t2\n")
    write(tmp_path / "u1.test", "1\t20\t4\t3\n3\t10\t2\t4\n")
    train, test = read_movielens_100k_split(tmp_path, "u1")
    assert train.item_ids == test.item_ids == ("10", "20")
    assert train.user_ids == test.user_ids == ("1", "2", "3")
    assert [test.item_ids[i] for i in test.items] == ["20", "10"]
    split = load_split(str(tmp_path), "u1")
    assert len(split.train) == 2 and len(split.test) == 2 and split.name == "u1"
    with pytest.raises(ValueError, match="unknown MovieLens 100K split"):
        read_movielens_100k_split(tmp_path, "u9")


def test_movielens_1m_double_colon_format(tmp_path: Path) -> None:
    path = write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\nu7::661::4.5::978301968\n")
    data = read_movielens_ratings_dat(path)
    assert data.user_ids == ("1", "u7") and data.item_ids == ("1193", "661")
    np.testing.assert_array_equal(data.ratings, [5.0, 3.0, 4.5])
    assert load_interactions(str(tmp_path)).item_ids == data.item_ids  # the folder form


@pytest.mark.parametrize(
    ("text", "delimiter", "header"),
    [
        ("user,item,rating\nalice,m1,4\nbob,m2,2\n", ",", None),
        ("alice,m1,4\nbob,m2,2\n", ",", None),
        ("alice;m1;4;100\nbob;m2;2;50\n", ";", False),
        ("u\ti\tr\nalice\tm1\t4\nbob\tm2\t2\n", "\t", True),
    ],
)
def test_generic_delimited(tmp_path: Path, text: str, delimiter: str, header: bool | None) -> None:
    data = read_delimited(write(tmp_path / "r.csv", text), delimiter=delimiter, header=header)
    assert data.user_ids == ("alice", "bob") and data.item_ids == ("m1", "m2")
    np.testing.assert_array_equal(data.ratings, [4.0, 2.0])
    assert data.rating_scale == (2.0, 4.0)


def test_without_timestamps_file_order_is_time_order(tmp_path: Path) -> None:
    data = read_delimited(write(tmp_path / "r.csv", "a,x,1\na,y,2\na,z,3\n"))
    np.testing.assert_array_equal(data.histories().items, [0, 1, 2])


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
def test_bad_input_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        read_delimited(write(tmp_path / "r.csv", text))


def test_blank_lines_are_counted_in_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="trainer.data.readers"):
        data = read_delimited(write(tmp_path / "r.csv", "1,2,3\n\n1,3,4\n   \n"))
    assert len(data) == 2
    assert "skipped 2 blank lines" in caplog.text


def test_unknown_formats_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "ratings.parquet", "PAR1")
    with pytest.raises(DataFormatError, match=r"unknown file format \.parquet"):
        load_interactions(str(tmp_path / "ratings.parquet"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="unknown data folder format"):
        load_interactions(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_interactions(str(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="unknown split"):
        load_split("synthetic", "k-fold")
    with pytest.raises(ValueError, match="needs a MovieLens 100K folder"):
        load_split("synthetic", "u1")
