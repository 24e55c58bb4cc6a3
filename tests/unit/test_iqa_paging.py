"""Where a page asked for from before NextOffset resumes (libs/common/imis_iqa.py): every row once."""

from __future__ import annotations

from typing import Any

from libs.common.imis_iqa import _after

KEY = "id"


def flat(*ids: str) -> list[dict[str, Any]]:
    return [{"$type": "System.Dynamic.ExpandoObject, System.Core", "ID": i} for i in ids]


def generic(*ids: str) -> list[dict[str, Any]]:
    return [{"Properties": {"$values": [{"Name": "ResultRow", "Value": "9"}, {"Name": "ID", "Value": i}]}}
            for i in ids]


def test_a_page_resumes_after_the_rows_already_handed_on_whatever_moved() -> None:
    last = ["3", "4", "5"]
    for rows in (flat, generic):
        assert _after(rows("3", "4", "5", "6", "7"), last, KEY, window=9) == 3  # nothing moved
        assert _after(rows("2", "3", "4", "5", "6"), last, KEY, window=9) == 4  # a row joined before
        assert _after(rows("4", "5", "6", "7", "8"), last, KEY, window=9) == 2  # a row left before
        assert _after(rows("3", "4", "6", "7", "8"), last, KEY, window=9) == 2  # the last row handed on left
        assert _after(rows("8", "9", "10"), last, KEY, window=9) is None  # more moved than the overlap


def test_repeated_rows_of_one_member_are_lined_up_not_looked_up() -> None:
    # Member 7's rows repeat; two of them were handed on, the third starts the new rows.
    assert _after(flat("6", "7", "7", "7", "8"), ["6", "7", "7"], KEY, window=9) == 3
    assert _after(flat("7", "7", "7", "8"), ["7"], KEY, window=9) == 1  # one row handed on: the nearest
