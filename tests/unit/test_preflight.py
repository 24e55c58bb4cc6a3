"""Preflight: the composer's preview and the per-member audience check."""

from __future__ import annotations

from decimal import Decimal

import pytest

from libs.common.errors import PermanentError
from libs.common.merge import MergeError, compile_template
from libs.common.preflight import preflight_members, preview
from libs.common.pricing import PriceTable
from libs.common.segments import InvalidBody

MOVED = "Hi {{first_name|Member}}, we’ve moved the meeting to Thursday at 6pm in Room 14. See you! Reply STOP to end"


def test_preview_reports_encoding_offenders_suggestion_and_cost() -> None:
    result = preview(MOVED, {"first_name": "Ann"}, "us")
    assert result["body"].startswith("Hi Ann, we’ve")
    assert (result["encoding"], result["segments"], result["part_units"]) == ("UCS-2", 2, [67, 22])
    assert [item["character"] for item in result["ucs2_characters"]] == ["’"]
    assert result["ucs2_characters"][0]["replacement"] == "'"
    assert result["smart_encoded"] == {
        "body": "Hi Ann, we've moved the meeting to Thursday at 6pm in Room 14. See you! Reply STOP to end",
        "encoding": "GSM-7",
        "segments": 1,
    }
    assert result["country"] == "US"
    assert Decimal(result["cost_per_recipient"]) == Decimal("0.0166")
    assert result["warnings"] == []


def test_preview_with_smart_encoding_on_counts_what_twilio_sends() -> None:
    result = preview(MOVED, {"first_name": "Ann"}, "US", smart_encoding=True)
    assert (result["encoding"], result["segments"], result["smart_encoded"]) == ("GSM-7", 1, None)
    assert result["cost_per_recipient"] == "0.0083"


def test_preview_without_samples_uses_a_typical_member() -> None:
    result = preview("Hi {{first_name}} of {{chapter}}", None, "CA")
    assert result["body"] == "Hi Alex of Boston"
    assert result["fields"] == ["first_name", "chapter"]


def test_preview_accepts_fields_named_by_the_samples() -> None:
    assert preview("Seat {{seat}}", {"seat": "B12"}, "US")["body"] == "Seat B12"


def test_preview_flags_unknown_price_and_pumping_protection() -> None:
    result = preview("Hello", None, "ZW")
    assert result["cost_per_recipient"] is None
    assert result["warnings"] == ["price_unknown", "pumping_protection_may_apply"]


def test_preview_flags_more_than_ten_segments() -> None:
    assert "segments_over_limit" in preview("a" * 1600, None, "US")["warnings"]


@pytest.mark.parametrize(
    ("body", "samples", "country", "error", "code"),
    [
        ("Hi {{frist_name}}", None, "US", MergeError, "merge_unknown_field"),
        ("Hi {{first_name}", None, "US", MergeError, "merge_unbalanced_braces"),
        ("Hi {{first_name}}", {"first_name": ""}, "US", MergeError, "merge_value_missing"),
        ("", None, "US", InvalidBody, "body_empty"),
        ("a" * 1601, None, "US", InvalidBody, "body_too_long"),
        ("Hi\x00", None, "US", InvalidBody, "body_nul"),
        ("Hi", None, "USA", PermanentError, "country_invalid"),
    ],
)
def test_preview_raises_typed_errors_for_the_api_handler(
    body: str, samples: dict[str, object] | None, country: str, error: type[PermanentError], code: str
) -> None:
    with pytest.raises(error) as caught:
        preview(body, samples, country)
    assert caught.value.code == code


def test_preflight_members_sorts_sendable_duplicates_and_rejected() -> None:
    template = compile_template("Hi {{first_name}}, renew now. Reply STOP to opt out")
    members = [
        ("1", "(415) 555-2671", {"first_name": "Ann"}),
        ("2", "+44 7400 123456", {"first_name": "Zoë"}),
        ("3", "1 415 555 2671", {"first_name": "Ann"}),
        ("4", "415 555 2671 x3", {"first_name": "Bob"}),
        ("5", "+1 416 979 1234", {"first_name": ""}),
        ("6", "+1 416 979 1235", {"first_name": "Cy" * 900}),
    ]
    report = preflight_members(template, members)
    assert [(m.member_id, m.e164, m.encoding, m.segments) for m in report.sendable] == [
        ("1", "+14155552671", "GSM-7", 1),
        ("2", "+447400123456", "UCS-2", 1),
    ]
    assert [m.member_id for m in report.duplicates] == ["3"]
    assert [(m.member_id, m.reason) for m in report.rejected] == [
        ("4", "phone_has_extension"),
        ("5", "merge_value_missing"),
        ("6", "body_too_long"),
    ]
    assert report.estimate.total == Decimal("0.0083") + Decimal("0.0524")
    assert report.estimate.pumping_protection_regions == ("GB",)


def test_known_failing_numbers_cost_the_failed_message_fee_not_their_segments() -> None:
    template = compile_template("Hello")
    members = [("1", "+1 415 555 2671", {}), ("2", "+1 212 555 0100", {})]
    report = preflight_members(template, members, known_failing={"+12125550100"}, prices=PriceTable())
    assert report.estimate.send_cost == Decimal("0.0083")
    assert report.estimate.failed_fee == Decimal("0.001")


def test_more_than_ten_segments_is_a_rejection() -> None:
    template = compile_template("{{first_name}}")
    report = preflight_members(template, [("1", "+1 415 555 2671", {"first_name": "a" * 1540})])
    assert [m.reason for m in report.rejected] == ["segments_over_limit"]
