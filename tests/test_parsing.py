"""Parsing of command-line values (bigganctl.parsing): ranges, decimal grids without float
drift, comma lists; bad values refused."""


import pytest

from bigganctl.errors import UsageError
from bigganctl.parsing import parse_grid, parse_range, split_csv


def test_parse_range_examples():
    assert parse_range("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_range(" 5 ") == [5]
    assert parse_range("2-3") == [2, 3]


@pytest.mark.parametrize("bad", ["5-2", "x", "", "1,,2", "-1", "1-x", "3.5"])
def test_parse_range_rejects(bad):
    with pytest.raises(UsageError) as e:
        parse_range(bad)
    assert e.value.param == "seeds"


def test_parse_grid_decimal_exact():
    assert parse_grid("0.1:1.0:0.1") == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert parse_grid("0.2:1.0:0.4") == [0.2, 0.6, 1.0]
    assert parse_grid("0.05:0.3:0.05")[-1] == 0.3          # not 0.30000000000000004
    assert parse_grid("0.2,0.5:0.7:0.1,1,0.2") == [0.2, 0.5, 0.6, 0.7, 1.0]


@pytest.mark.parametrize("bad", ["1.0:0.2:0.1", "0:1:0", "", ",", "a", "0:1", "nan", "0.1:inf:0.1"])
def test_parse_grid_rejects(bad):
    with pytest.raises(UsageError):
        parse_grid(bad)


def test_split_csv():
    assert split_csv(["207,goldfish", "n01443537"]) == ["207", "goldfish", "n01443537"]


