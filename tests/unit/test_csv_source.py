"""CSV uploads: encodings, Excel quoting, header mapping, bad files and rows, 200,000 rows, inert reports."""

from __future__ import annotations

import csv
import io

import pytest

from libs.common.csv_audience import CsvRefused, CsvRejection, CsvStream, inert, parse_csv, rejection_report

EXCEL = b"\xef\xbb\xbfMember ID,Mobile Phone,First Name,Last Name,Chapter Name\r\n"


def test_excel_csv_utf8_with_bom_quotes_and_line_breaks() -> None:
    data = EXCEL + (
        '23145,(415) 555-0134,Zoë,"Martin, Jr.",New England\r\n'
        '23146,"415.555.0135","José ""Pepe""",García,"Line one\r\nline two"\r\n'
    ).encode()
    result = parse_csv(data)
    assert result.headers == ("Member ID", "Mobile Phone", "First Name", "Last Name", "Chapter Name")
    assert result.mapping == {"member_id": "Member ID", "mobile": "Mobile Phone", "first_name": "First Name",
                              "last_name": "Last Name", "chapter_name": "Chapter Name"}
    first, second = result.rows
    assert (first.line, first.member_id, first.mobile) == (2, "23145", "(415) 555-0134")
    assert first.values == {"first_name": "Zoë", "last_name": "Martin, Jr.", "chapter_name": "New England"}
    assert second.line == 3 and second.values["first_name"] == 'José "Pepe"'
    assert second.values["chapter_name"] == "Line one\r\nline two"
    assert result.rejections == []


def test_plain_utf8_semicolons_and_lf() -> None:
    result = parse_csv("id;cell;Vorname\n1;+49 1512 3456789;Jürgen\n".encode())
    assert result.delimiter == ";"
    rows = [(r.member_id, r.mobile, r.values) for r in result.rows]
    assert rows == [("1", "+49 1512 3456789", {"vorname": "Jürgen"})]


def test_an_explicit_mapping_wins_and_a_file_without_ids_is_fine() -> None:
    result = parse_csv(b"Home,Txt,Name\n617,4155550134,Ann\n", mapping={"mobile": "TXT", "first_name": "name"})
    assert result.mapping == {"mobile": "Txt", "first_name": "Name", "home": "Home"}
    assert [(r.member_id, r.mobile, r.values) for r in result.rows] == [("", "4155550134", {"first_name": "Ann",
                                                                                              "home": "617"})]


def test_bad_rows_are_reported_with_their_line_and_the_rest_accepted() -> None:
    data = (
        b"ID,Mobile,First Name\r\n"
        b"1,4155550134,Ann\r\n"
        b"2,4155550135\r\n"                          # ragged: a cell short
        b"3,4155550136,Bob,extra\r\n"                # ragged: a cell too many
        b"4,4155550137,Cat,,\r\n"                    # trailing empty cells (Excel) are fine
        b"\r\n"                                      # blank lines are skipped
        b"5,4155550138,Ren\xe9e\r\n"                 # Latin-1, not UTF-8
        b"6,4155550139,Bell\x07\r\n"                 # a control character
        b"7,4155550140," + b"x" * 1200 + b"\r\n"     # a cell too long
        b"8,,Dan\r\n"                                # no mobile: kept (the run reports missing_mobile)
    )
    result = parse_csv(data)
    assert [r.member_id for r in result.rows] == ["1", "4", "8"]
    assert [(r.line, r.reason) for r in result.rejections] == [
        (3, "row_ragged"), (4, "row_ragged"), (7, "row_not_utf8"), (8, "row_invalid_characters"),
        (9, "cell_too_long")]
    assert result.rejections[0].detail == "2 cells where the header has 3"
    assert result.rejections[2].raw == "5,4155550138,Ren\ufffde"


def test_numbers_are_checked_at_upload_when_the_prefix_is_given() -> None:
    data = b"ID,Mobile\n1,(415) 555-0134\n2,\n3,555-CALL-NOW\n4,07700 900123\n"
    us = parse_csv(data, default_country_prefix="+1")
    assert [r.member_id for r in us.rows] == ["1"]
    assert [(r.line, r.reason, r.detail) for r in us.rejections] == [
        (3, "missing_mobile", "no mobile number"), (4, "invalid_number", "phone_has_letters"),
        (5, "invalid_number", "phone_too_long")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "csv_empty"),
        (b"\r\n\r\n  \r\n", "csv_empty"),
        (b"\xef\xbb\xbf", "csv_empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "csv_workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "csv_workbook"),
        ("ID,Mobile\r\n1,415\r\n".encode("utf-16"), "csv_utf16"),
        (b"ID\x00,Mobile\x00\n", "csv_binary"),
        (b"ID,Pr\xe9nom,Mobile\n1,Ren\xe9e,415\n", "csv_not_utf8"),
        (b"ID,First Name,Email\n1,Ann,a@example.org\n", "csv_mobile_column_missing"),
        (b"ID,Mobile,mobile\n1,2,3\n", "csv_header_duplicate"),
    ],
)
def test_unusable_files_are_refused_whole(data: bytes, code: str) -> None:
    with pytest.raises(CsvRefused) as info:
        parse_csv(data)
    assert info.value.code == code


def test_a_mapped_header_that_is_absent_and_too_many_rows_are_refused() -> None:
    with pytest.raises(CsvRefused, match="no column 'Cell' for mobile") as info:
        parse_csv(b"ID,Mobile\n1,2\n", mapping={"mobile": "Cell"})
    assert info.value.code == "csv_header_missing"
    with pytest.raises(CsvRefused) as info:
        parse_csv(b"Mobile\n1\n2\n3\n", max_rows=2)
    assert info.value.code == "csv_too_many_rows"


def test_a_header_only_file_has_no_rows_and_no_rejections() -> None:
    result = parse_csv(EXCEL)
    assert result.rows == [] and result.rejections == []


def test_two_hundred_thousand_rows_parse_whole() -> None:  # their speed: python -m bench.inputs
    lines = ["Member ID,Mobile,First Name,Last Name,Chapter"]
    lines += [f'{100000 + i},({200 + i % 700}) 555-{i % 10000:04d},Zoë,"Smith, Jr",NE' for i in range(200_000)]
    lines[12345] = "12345,415"  # one ragged row among them
    data = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
    result = parse_csv(data)
    assert len(result.rows) == 199_999 and [r.line for r in result.rejections] == [12346]
    assert result.rows[-1].values["last_name"] == "Smith, Jr"


def test_formula_cells_come_out_inert_in_the_report() -> None:
    assert [inert(c) for c in ("=cmd|' /C calc'!A0", "+1 415", "-2", "@SUM(A1)", "\t=1", "Ann", "")] == [
        "'=cmd|' /C calc'!A0", "'+1 415", "'-2", "'@SUM(A1)", "'\t=1", "Ann", ""]
    result = parse_csv(b"ID,Mobile,Name\n=cmd|' /C calc'!A0,415\n")
    report = rejection_report(result.rejections)
    rows = list(csv.reader(io.StringIO(report)))
    assert rows[0] == ["line", "reason", "detail", "row"]
    assert rows[1][:2] == ["2", "row_ragged"] and rows[1][3] == "'=cmd|' /C calc'!A0,415"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert rejection_report([CsvRejection(9, "row_ragged", "x", "@x")]).endswith('"9","row_ragged","x","\'@x"\r\n')


def test_every_row_accepted_or_refused_counts_against_the_row_cap() -> None:
    with pytest.raises(CsvRefused) as info:
        parse_csv(b"Mobile,Name\n4155550100,Ann\nragged\nragged\n", max_rows=2)
    assert (info.value.code, info.value.message) == (
        "csv_too_many_rows", "the file has more than 2 rows; split it into files of at most 2 rows")
    assert len(parse_csv(b"Mobile,Name\n4155550100,Ann\nragged\n\n\n", max_rows=2).rejections) == 1


def test_refused_rows_are_all_counted_by_reason_and_only_the_first_kept() -> None:
    data = b"ID,Mobile\n1,4155550100\n" + b"2\n" * 7_000 + b"3,4155550101,extra\n"
    result = parse_csv(data, default_country_prefix="+1")
    assert (len(result.rows), result.rows_rejected) == (1, 7_001)
    assert result.rejected_by_reason == {"row_ragged": 7_001}
    assert len(result.rejections) == 5_000 and result.rejections[-1].line == 5_002
    report = list(csv.reader(io.StringIO(rejection_report(result.rejections, total=result.rows_rejected))))
    assert report[1] == ["", "", "showing the first 5,000 of 7,001 rejected rows", ""] and len(report) == 5_002
    assert len(list(csv.reader(io.StringIO(rejection_report(result.rejections[:3], total=3))))) == 4


def test_a_file_is_read_as_a_stream_in_batches_of_rows() -> None:
    source = io.BytesIO(b"\xef\xbb\xbfID,Mobile\r\n" + b"".join(b"%d,41555501%02d\r\n" % (i, i) for i in range(7)))
    stream = CsvStream(source)
    assert stream.headers == ("ID", "Mobile")
    batches = [[row.member_id for row in batch] for batch in stream.batches(3)]
    assert batches == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert stream.rows_accepted == 7 and stream.rows_rejected == 0


def test_a_line_longer_than_any_row_is_refused_without_reading_it_whole() -> None:
    with pytest.raises(CsvRefused) as info:
        parse_csv(b"Mobile\n" + b"4" * 3_000_000)
    assert info.value.code == "csv_malformed" and "line 2" in info.value.message
