"""CSV files staff upload as an audience: parsed into rows, with a per-row report of what was refused. Pure.

    >>> result = parse_csv(b"ID,Mobile,First Name\\r\\n1,(415) 555-0134,Zo\\xc3\\xab\\r\\n2\\r\\n")
    >>> [(r.member_id, r.mobile, r.values["first_name"]) for r in result.rows]
    [('1', '(415) 555-0134', 'Zoë')]
    >>> [(r.line, r.reason) for r in result.rejections]
    [(3, 'row_ragged')]

What is accepted: UTF-8 with or without a BOM (Excel's "CSV UTF-8" writes one); Excel quoting (fields in
double quotes, ``""`` for a quote, line breaks inside quotes); ``,``, ``;`` (Excel in many European
locales) or tab as the delimiter, guessed from the header line; CRLF or LF line ends.

Headers are mapped to fields without regard to case, spaces, ``_`` or ``-``: ``mobile`` from Mobile,
Mobile Phone, Cell, SMS, Phone...; ``member_id`` from ID, Member ID, iMIS ID...; ``first_name``,
``last_name`` likewise. Every other header becomes a merge field named after it in snake_case
(``Chapter Name`` -> ``chapter_name``). A ``mapping`` argument (field -> header) overrides the guesses.

The whole file is refused (:class:`CsvRefused`) when no row could be used: ``csv_empty`` (0 bytes or only
blank lines), ``csv_workbook`` (an .xlsx/.xls file), ``csv_utf16`` or ``csv_binary`` (not text we read),
``csv_not_utf8`` (the header is not UTF-8), ``csv_header_duplicate``, ``csv_header_missing`` (a mapped
header is not in the file), ``csv_mobile_column_missing``, ``csv_too_many_rows``, ``csv_malformed``.

A row is refused, and reported with its line, reason, detail and raw text, for: ``row_ragged`` (fewer
cells than headers, or more that are not empty), ``row_not_utf8``, ``row_invalid_characters`` (NUL or
other control characters), ``cell_too_long``, and, when ``default_country_prefix`` is given,
``missing_mobile`` and ``invalid_number`` (the same rules as at send time). Blank lines are skipped.

Reports are exported with :func:`rejection_report`, where every cell goes through :func:`inert`: a cell
such as ``=cmd|' /C calc'!A0`` becomes text in a spreadsheet instead of a formula (OWASP CSV injection).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from libs.common.errors import PermanentError
from libs.common.phone import Normalised, normalise

MAX_ROWS: Final = 500_000
MAX_CELL: Final = 1_000
_RAW_SHOWN: Final = 500
_ALIASES: Final[Mapping[str, frozenset[str]]] = {
    "member_id": frozenset({"id", "member id", "memberid", "member number", "member no", "imis id", "customer id",
                            "contact id", "party id", "partyid"}),
    "mobile": frozenset({"mobile", "mobile phone", "mobile number", "mobilephone", "cell", "cell phone",
                         "cellphone", "sms", "sms number", "phone", "phone number", "mobile phone number"}),
    "first_name": frozenset({"first name", "firstname", "given name", "forename"}),
    "last_name": frozenset({"last name", "lastname", "surname", "family name"}),
}
_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class CsvRefused(PermanentError):
    """The file as a whole cannot be used; ``code`` says why and ``message`` what to do."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    """An accepted row: ``line`` is the file line it starts on (the header is line 1)."""

    line: int
    member_id: str
    mobile: str
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class CsvRejection:
    line: int
    reason: str
    detail: str
    raw: str


@dataclass(frozen=True, slots=True)
class CsvParseResult:
    headers: tuple[str, ...]
    mapping: dict[str, str]  # field -> header, as resolved
    delimiter: str
    rows: list[CsvRow] = field(default_factory=list)
    rejections: list[CsvRejection] = field(default_factory=list)


def parse_csv(
    data: bytes,
    *,
    mapping: Mapping[str, str] | None = None,
    default_country_prefix: str | None = None,
    max_rows: int = MAX_ROWS,
) -> CsvParseResult:
    """Parse an uploaded file; raise :class:`CsvRefused` for a file that cannot be used at all."""
    text = _decode(data)
    lines = io.StringIO(text, newline="")
    header_line = text.split("\n", 1)[0]
    delimiter = _delimiter(header_line)
    reader = csv.reader(lines, delimiter=delimiter, doublequote=True, quotechar='"', strict=False)
    try:
        headers = next((row for row in reader if any(cell.strip() for cell in row)), None)
    except csv.Error as exc:
        raise CsvRefused("csv_malformed", f"line 1: {exc}") from None
    if headers is None:
        raise CsvRefused("csv_empty", "the file has no rows; export it again with its header row")
    headers = [h.strip() for h in headers]
    if _NOT_UTF8.search(header_line):
        raise CsvRefused("csv_not_utf8", "the file is not UTF-8; in Excel choose Save As > 'CSV UTF-8'")
    resolved = _map_headers(headers, mapping)
    index = {name: headers.index(header) for name, header in resolved.items()}
    result = CsvParseResult(tuple(headers), dict(resolved), delimiter)
    width = len(headers)
    line = reader.line_num + 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(result.rows) >= max_rows:
                raise CsvRefused("csv_too_many_rows", f"the file has more than {max_rows} rows; split it")
            problem = _row_problem(cells, width)
            if problem is not None:
                result.rejections.append(CsvRejection(start, *problem, _raw(cells, delimiter)))
                continue
            row = _row(start, cells, index, default_country_prefix)
            if isinstance(row, CsvRejection):
                result.rejections.append(CsvRejection(start, row.reason, row.detail, _raw(cells, delimiter)))
            else:
                result.rows.append(row)
    except csv.Error as exc:
        raise CsvRefused("csv_malformed", f"line {line}: {exc}") from None
    return result


def _decode(data: bytes) -> str:
    if not data.strip():
        raise CsvRefused("csv_empty", "the file is empty")
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise CsvRefused("csv_workbook", "this is an Excel workbook, not a CSV; in Excel choose Save As > 'CSV UTF-8'")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CsvRefused("csv_utf16", "the file is UTF-16 ('Unicode Text'); in Excel choose Save As > 'CSV UTF-8'")
    if b"\x00" in data[:8192]:
        raise CsvRefused("csv_binary", "the file holds binary data, not CSV text")
    # Rows with bytes that are not UTF-8 keep them as surrogates and are refused one by one below.
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _normal(header: str) -> str:
    return " ".join(re.split(r"[\s_\-]+", header.strip().lower())).strip()


def _field_name(header: str) -> str | None:
    name = "_".join(re.findall(r"[a-z0-9]+", header.lower()))
    return name if _FIELD_NAME.match(name) else None


def _map_headers(headers: list[str], mapping: Mapping[str, str] | None) -> dict[str, str]:
    normals = [_normal(h) for h in headers]
    duplicated = sorted({h for h, n in zip(headers, normals, strict=True) if n and normals.count(n) > 1})
    if duplicated:
        raise CsvRefused("csv_header_duplicate", f"these headers appear more than once: {', '.join(duplicated)}")
    resolved: dict[str, str] = {}
    by_normal = dict(zip(normals, headers, strict=True))
    for name, header in (mapping or {}).items():
        found = by_normal.get(_normal(header))
        if found is None:
            raise CsvRefused("csv_header_missing",
                             f"no column '{header}' for {name}; the file has: {', '.join(headers)}")
        resolved[name.lower()] = found
    taken = set(resolved.values())
    for name, aliases in _ALIASES.items():
        if name not in resolved:
            found = next((h for h, n in zip(headers, normals, strict=True) if n in aliases and h not in taken), None)
            if found is not None:
                resolved[name] = found
                taken.add(found)
    for header in headers:
        name = _field_name(header)
        if header and header not in taken and name is not None and name not in resolved:
            resolved[name] = header
    if "mobile" not in resolved:
        raise CsvRefused("csv_mobile_column_missing",
                         f"no column holds the mobile number (name one Mobile); the file has: {', '.join(headers)}")
    return resolved


def _row_problem(cells: list[str], width: int) -> tuple[str, str] | None:
    if len(cells) < width or (len(cells) > width and any(c.strip() for c in cells[width:])):
        return "row_ragged", f"{len(cells)} cells where the header has {width}"
    # One search over the joined row instead of one per cell: ~3x faster on 200,000 rows.
    joined = "\n".join(cells[:width])
    if _NOT_UTF8.search(joined):
        return "row_not_utf8", "the row is not UTF-8; save the file as 'CSV UTF-8'"
    if _CONTROL.search(joined):
        return "row_invalid_characters", "a cell holds control characters"
    if len(joined) > MAX_CELL:
        longest = max(len(cell) for cell in cells[:width])
        if longest > MAX_CELL:
            return "cell_too_long", f"a cell has {longest} characters; at most {MAX_CELL}"
    return None


def _row(line: int, cells: list[str], index: Mapping[str, int], prefix: str | None) -> CsvRow | CsvRejection:
    values = {name: cells[i].strip() for name, i in index.items()}
    mobile = values.pop("mobile")
    member_id = values.pop("member_id", "")
    if prefix is not None:
        if not mobile:
            return CsvRejection(line, "missing_mobile", "no mobile number", "")
        number = normalise(mobile, prefix)
        if not isinstance(number, Normalised):
            return CsvRejection(line, "invalid_number", number.reason, "")
    return CsvRow(line, member_id, mobile, values)


def _raw(cells: list[str], delimiter: str) -> str:
    text = delimiter.join(cells)
    text = _NOT_UTF8.sub("\ufffd", text)
    return text if len(text) <= _RAW_SHOWN else text[:_RAW_SHOWN] + "…"


def inert(cell: str) -> str:
    """A cell that a spreadsheet will show as text: one starting ``= + - @`` TAB or CR gets a leading ``'``."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def rejection_report(rejections: Iterable[CsvRejection]) -> str:
    """The downloadable report (CSV, CRLF, every cell quoted and made inert): line, reason, detail, row."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(["line", "reason", "detail", "row"])
    for r in rejections:
        writer.writerow([str(r.line), inert(r.reason), inert(r.detail), inert(r.raw)])
    return out.getvalue()
