"""The audience rules: why each member is queued or excluded, households, and the run-level verdict."""

from __future__ import annotations

import pytest

from libs.common.audience import parse_audience
from libs.common.audience_members import AddressStates, ColumnMap, IqaRows, as_text, is_true, stored_member
from libs.common.audience_rules import AudienceMember, SnapshotRow, Totals, classify, classify_each, decide, totals
from libs.common.merge import compile_template

TEMPLATE = compile_template("Hi {{first_name}}, the AGM is on Friday.")


def member(member_id: str, phone: str | None, first: str | None = "Ann", *, opted_out: bool = False) -> AudienceMember:
    return AudienceMember(member_id, phone, {"first_name": first, "member_id": member_id}, opted_out)


def run(members: list[AudienceMember], *, suppressed: set[str] | None = None,
        bad: dict[str, int] | None = None, template=TEMPLATE) -> list[SnapshotRow]:
    return classify(members, template, default_country_prefix="+1", suppressed=suppressed or set(),
                    bad_numbers=bad or {})


def outcome(rows: list[SnapshotRow]) -> list[tuple[str, str | None, str | None]]:
    return [(r.member_id, r.reason, r.detail) for r in rows]


@pytest.mark.parametrize(
    ("the_member", "reason", "detail"),
    [
        (member("1", "(415) 555-0134"), None, None),
        (member("2", None), "missing_mobile", None),
        (member("3", "   "), "missing_mobile", None),
        (member("4", "555-CALL-NOW"), "invalid_number", "phone_has_letters"),
        (member("5", "415-555-0138 ext. 22"), "invalid_number", "phone_has_extension"),
        (member("6", "555 0134"), "invalid_number", "phone_not_possible"),
        (member("7", "(415) 555-0134", opted_out=True), "opted_out", "imis_opt_out"),
        (member("8", None, opted_out=True), "opted_out", "imis_opt_out"),  # the flag is the clearer reason
        (member("9", "+1 212 555 0142", first=None), "render_failed", "merge_value_missing"),
    ],
)
def test_each_member_gets_one_reason(the_member: AudienceMember, reason: str | None, detail: str | None) -> None:
    [row] = run([the_member])
    assert (row.reason, row.detail) == (reason, detail)
    assert row.status == ("queued" if reason is None else "excluded")


def test_a_queued_row_carries_what_the_dispatcher_and_the_snapshot_need() -> None:
    [row] = run([member("1", "(415) 555-0134", "Zoë")])
    assert (row.e164, row.region, row.encoding, row.segments) == ("+14155550134", "US", "UCS-2", 1)
    assert row.body == "Hi Zoë, the AGM is on Friday."
    assert row.merge_values == {"first_name": "Zoë"}  # only the fields the body uses


def test_suppressed_and_bad_numbers_are_excluded_after_normalisation() -> None:
    rows = run([member("1", "415.555.0134"), member("2", "(415) 555-0135"), member("3", "4155550136")],
               suppressed={"+14155550134"}, bad={"+14155550135": 30006})
    assert outcome(rows) == [("1", "opted_out", "suppressed"), ("2", "bad_number", "twilio_30006"),
                             ("3", None, None)]


def test_a_household_number_goes_to_the_lowest_member_id_whatever_the_order() -> None:
    rows = run([member("23157", "415-555-0139", "Mei"), member("9999", "(415) 555-0139", "Jun"),
                member("A12", "+14155550139", "Al")])
    assert [(r.member_id, r.reason, r.duplicate_of) for r in rows] == [
        ("23157", "duplicate_number", "9999"), ("9999", None, None), ("A12", "duplicate_number", "9999")]
    assert sum(r.status == "queued" for r in rows) == 1


def test_a_household_member_who_cannot_receive_does_not_take_the_number() -> None:
    # The lowest id has no first name (render fails), so the text goes to the next member at that number.
    rows = run([member("1", "415-555-0139", first=None), member("2", "4155550139", "Mei")])
    assert outcome(rows) == [("1", "render_failed", "merge_value_missing"), ("2", None, None)]


def test_a_repeated_member_id_is_a_duplicate_member_even_with_another_number() -> None:
    rows = run([member("1", "4155550134"), member("1", "4155550135"), member("", "4155550136"),
                member("", "4155550137")])
    assert outcome(rows) == [("1", None, None), ("1", "duplicate_member", None), ("", None, None), ("", None, None)]


def test_a_repeated_member_keeps_only_its_id_and_raw_number_whatever_else_applies() -> None:
    rows = run([member("1", "4155550134"), member("1", "4155550134", opted_out=True), member("1", "415 555 013")])
    assert [(r.reason, r.detail, r.duplicate_of, r.e164, r.body, r.segments, r.raw_phone) for r in rows[1:]] == [
        ("duplicate_member", None, "1", None, None, 0, "4155550134"),
        ("duplicate_member", None, "1", None, None, 0, "415 555 013")]


def test_ids_of_other_digits_than_ascii_are_text_for_the_household_order() -> None:
    # "²" is a digit to str.isdigit() but not a number to int(); "٣" is 3 to int(). Both sort as text,
    # as the set-based rule in PostgreSQL reads them, after every ASCII number.
    rows = run([member("²", "4155550139"), member("٣", "4155550139"), member("10", "4155550139")])
    assert [(r.member_id, r.reason, r.duplicate_of) for r in rows] == [
        ("²", "duplicate_number", "10"), ("٣", "duplicate_number", "10"), ("10", None, None)]


def test_classify_each_numbers_a_batch_from_its_start_and_leaves_repeats_for_later() -> None:
    rows = classify_each([member("1", "4155550134"), member("1", "4155550134")], TEMPLATE, start=500,
                         default_country_prefix="+1", suppressed=set(), bad_numbers={})
    assert [(r.position, r.reason) for r in rows] == [(500, None), (501, None)]


def test_a_body_over_ten_segments_is_over_the_segment_limit() -> None:
    long = compile_template("{{first_name}} " + "x" * 1590)
    [row] = run([member("1", "4155550134")], template=long)
    assert (row.reason, row.segments) == ("over_segment_limit", 11)


def test_a_fixed_line_warning_is_kept_on_a_queued_row() -> None:
    [row] = run([member("1", "+44 20 7946 0958")])
    assert (row.reason, row.region, row.detail) == (None, "GB", "phone_fixed_line")


def test_totals_count_reasons_and_us_recipients() -> None:
    rows = run([member("1", "4155550134"), member("2", None), member("3", None), member("4", "+61 491 570 156")])
    figures = totals(rows)
    assert figures == Totals(recipients=2, excluded=2, segments=2, by_reason={"missing_mobile": 2}, nanp_recipients=1)


def _decide(figures: Totals, **overrides: object):
    args = {"sender": "+18885550100", "sender_verification": "verified", "segment_limit": 100,
            "account_max_segments": None} | overrides
    return decide(figures, **args)  # type: ignore[arg-type]


def test_verdicts_in_order() -> None:
    ok = Totals(recipients=10, excluded=0, segments=20, nanp_recipients=10)
    assert _decide(ok).state == "sending"
    assert _decide(ok, segment_limit=20).state == "sending"  # at the limit is allowed
    over = _decide(ok, segment_limit=19)
    assert over.state == "over_limit" and over.reason.text.startswith("segment_limit: 20 segments for 10 recipients")
    assert (over.reason.code, over.reason.counts["limit"], over.reason.limit_of) == ("segment_limit", 19, "campaign")
    account = _decide(ok, account_max_segments=15)
    assert account.state == "over_limit" and "account's max segments of 15" in account.reason.text
    refused = _decide(ok, sender_verification="pending", segment_limit=1)  # refusal wins over the limit
    assert refused.state == "refused" and refused.reason.text.startswith("sender_unverified: +18885550100 is pending")
    assert (refused.reason.sender, refused.reason.verification) == ("+18885550100", "pending")
    abroad = Totals(recipients=3, excluded=0, segments=3, nanp_recipients=0)
    assert _decide(abroad, sender_verification="pending").state == "sending"
    empty = _decide(Totals(recipients=0, excluded=4, segments=0))
    assert (empty.state, empty.publishes) == ("completed", False)


def test_iqa_rows_are_read_through_the_column_map_with_typed_and_odd_values() -> None:
    reader = IqaRows(ColumnMap(fields={"first_name": "FirstName", "years": "YearsAsMember"}))
    row = reader.member({"ID": 23145, "FIRSTNAME": " Zoë ", "Mobile": 4155550134.0, "SmsOptOut": "Yes",
                         "YearsAsMember": 5, "$PartyId": "23145"})
    assert (row.member_id, row.raw_phone, row.opted_out) == ("23145", "4155550134", True)
    assert row.values["first_name"] == "Zoë" and row.values["years"] == "5" and row.values["full_name"] == "Zoë"
    fallback = reader.member({"FirstName": "Ann", "$PartyId": "77", "SmsOptOut": False, "Mobile": {"$type": "x"}})
    assert (fallback.member_id, fallback.raw_phone, fallback.opted_out) == ("77", None, False)
    assert reader.mobile_seen and reader.rows == 2


def test_iqa_rows_read_the_address_state_and_count_what_is_no_us_state() -> None:
    reader = IqaRows(ColumnMap())
    rows = [{"ID": n, "Mobile": "4155550134", "state": state, "Country": country} for n, (state, country) in
            enumerate([(" fl ", "US"), ("Calif.", None), ("", None), (None, None), ("WA", "AU"), ("ON", "CA"),
                       ("Texas", "")])]
    assert [reader.member(r).address_state for r in rows] == ["FL", None, None, None, None, None, "TX"]
    assert reader.states.ignored == 3  # Calif., Western Australia, Ontario; blanks are no value at all
    own = IqaRows(ColumnMap(state="Province", country=None))
    assert own.member({"ID": 1, "Mobile": "x", "Province": "OK", "Country": "AU"}).address_state == "OK"
    assert IqaRows(ColumnMap(state=None)).member({"ID": 1, "State": "OK"}).address_state is None
    assert reader.member({"ID": 9, "Mobile": "x"}).address_state is None  # an IQA without the column


def test_the_address_state_reaches_the_snapshot_row() -> None:
    located = AudienceMember("1", "(415) 555-0134", {"first_name": "Zoë"}, address_state="FL")
    (row,) = run([located])
    assert (row.status, row.address_state) == ("queued", "FL")


def test_values_and_flags_of_any_type() -> None:
    assert [as_text(v) for v in (None, "", " a ", True, 5, 2.0, 2.5, [1], {})] == [
        None, None, "a", "true", "5", "2", "2.5", None, None]
    assert [as_text(v) for v in ("Zo\x00ë", "\x00", " \x00a ")] == ["Zoë", None, "a"]  # PostgreSQL cannot hold NUL
    assert [is_true(v) for v in (True, 1, "YES", "y", "1", "no", 0, None, "true ")] == [
        True, True, True, True, True, False, False, False, True]


def test_stored_members_fill_member_id_and_full_name() -> None:
    m = stored_member("12", "415", {"First_Name": "Ann", "last_name": "Lee"})
    assert m.values == {"first_name": "Ann", "last_name": "Lee", "member_id": "12", "full_name": "Ann Lee"}
    assert m.address_state is None


def test_a_stored_members_state_value_is_its_address() -> None:
    states = AddressStates()
    kept = stored_member("1", "415", {"State": "md", "first_name": "Ann"}, keep={"first_name"}, states=states)
    assert (kept.address_state, kept.values) == ("MD", {"first_name": "Ann"})
    assert stored_member("2", "415", {"state": "ZZ"}, states=states).address_state is None
    assert stored_member("3", "415", {"state": "NSW", "country": "Australia"}, states=states).address_state is None
    assert states.ignored == 2


def test_audience_settings_are_validated() -> None:
    assert parse_audience({"kind": "iqa", "query": "$/Textpulse/SMS Audience", "parameters": ["eq:REG"]}).parameters \
        == ("eq:REG",)
    for bad in ({}, {"kind": "iqa", "query": "Textpulse"}, {"kind": "csv", "upload_id": "nope"}, {"kind": "sql"}):
        with pytest.raises(Exception, match="audience is not usable") as info:
            parse_audience(bad)
        assert getattr(info.value, "code", None) == "audience_invalid"


def test_iqa_rows_keep_only_the_fields_the_body_uses() -> None:
    row = {"ID": "1", "FirstName": "Ann", "LastName": "Lee", "Chapter": "NE", "Mobile": "4155550134"}
    assert IqaRows(ColumnMap(), keep={"first_name"}).member(row).values == {"first_name": "Ann"}
    assert IqaRows(ColumnMap(), keep={"full_name", "member_id"}).member(row).values == {
        "full_name": "Ann Lee", "member_id": "1"}
    assert IqaRows(ColumnMap(), keep=set()).member(row).values == {}
    assert stored_member("9", None, {"first_name": "Bo", "x": 1}, keep={"first_name"}).values == {"first_name": "Bo"}
