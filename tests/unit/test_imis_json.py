"""iMIS JSON both ways: what the client accepts as an answer, and the stand-in's pre-serialised properties."""

from __future__ import annotations

from datetime import date, datetime

import httpx
import orjson
import pytest

from libs.common.imis import ImisUnavailable, json_object
from standins.imis.envelopes import Value, prop, prop_json


def _answer(content: bytes) -> httpx.Response:
    return httpx.Response(200, content=content, headers={"Content-Type": "application/json"})


def test_an_answer_is_read_as_its_json_object_with_or_without_a_byte_order_mark() -> None:
    body = {"Items": {"$values": [{"Name": "Québec", "Value": {"$type": "System.Int32", "$value": 5}}]}, "Count": 1}

    assert json_object(_answer(orjson.dumps(body)), "GET /api/IQA") == body
    assert json_object(_answer(b"\xef\xbb\xbf" + orjson.dumps(body)), "GET /api/IQA") == body


@pytest.mark.parametrize("content", [b"<html>Runtime Error</html>", b"", b'{"Items": ', b"\xff\xfe{}", b"[1, 2]",
                                     b'"text"'])
def test_an_answer_that_is_not_a_json_object_is_a_bad_response_to_retry(content: bytes) -> None:
    with pytest.raises(ImisUnavailable) as caught:
        json_object(_answer(content), "GET /api/IQA")

    assert caught.value.code == "imis_bad_response"


@pytest.mark.parametrize("value", ["Zoë", "", "say \"hi\"\n\\", "☃ 🚀", None, True, False, 0, 12, -3, 12.5, 0.1,
                                   date(2021, 2, 20), datetime(2021, 2, 20, 18, 0, 5)])
def test_a_pre_serialised_property_is_the_same_json_as_the_property(value: Value) -> None:
    assert orjson.dumps([prop_json("Name", value)]) == orjson.dumps([prop("Name", value)])
    assert orjson.loads(orjson.dumps(prop_json("Mobile", value))) == prop("Mobile", value)
