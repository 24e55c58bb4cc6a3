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
``last_name``, ``state`` (State, State/Province: the address's state, which the quiet hours use) and
``country`` likewise. Every other header becomes a merge field named after it in snake_case
(``Chapter Name`` -> ``chapter_name``). A ``mapping`` argument (field -> header) overrides the guesses.

The whole file is refused (:class:`CsvRefused`) when no row could be used: ``csv_empty`` (0 bytes or only
blank lines), ``csv_workbook`` (an .xlsx/.xls file), ``csv_utf16`` or ``csv_binary`` (not text we read),
``csv_not_utf8`` (the header is not UTF-8), ``csv_header_duplicate``, ``csv_header_missing`` (a mapped
header is not in the file), ``csv_mobile_column_missing``, ``csv_too_many_rows`` (more than ``MAX_ROWS``
rows, accepted and refused alike), ``csv_malformed`` (including a line longer than ``MAX_LINE``).

A row is refused, and reported with its line, reason, detail and raw text, for: ``row_ragged`` (fewer
cells than headers, or more that are not empty), ``row_not_utf8``, ``row_invalid_characters`` (NUL or
other control characters), ``cell_too_long``, and, when ``default_country_prefix`` is given,
``missing_mobile`` and ``invalid_number`` (the same rules as at send time). Blank lines are skipped.
Every refused row is counted by reason; only the first ``REJECTIONS_KEPT`` are kept with their text.

An upload is read with :class:`CsvStream`, a batch of rows at a time, so memory does not grow with the
file; :func:`parse_csv` reads bytes already in memory the same way.

Reports are exported with :func:`rejection_report`, where every cell goes through :func:`inert`: a cell
such as ``=cmd|' /C calc'!A0`` becomes text in a spreadsheet instead of a formula (OWASP CSV injection).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Final, TextIO

from libs.common.errors import PermanentError
from libs.common.phone import Normalised, normalise

MAX_ROWS: Final = 500_000
REJECTIONS_KEPT: Final = 5_000
MAX_CELL: Final = 1_000
# One physical line: far more than any row of cells within MAX_CELL, and what a line costs in memory.
MAX_LINE: Final = 1_000_000
_SNIFFED: Final = 8192
_RAW_SHOWN: Final = 500
_ALIASES: Final[Mapping[str, frozenset[str]]] = {
    "member_id": frozenset({"id", "member id", "memberid", "member number", "member no", "imis id", "customer id",
                            "contact id", "party id", "partyid"}),
    "mobile": frozenset({"mobile", "mobile phone", "mobile number", "mobilephone", "cell", "cell phone",
                         "cellphone", "sms", "sms number", "phone", "phone number", "mobile phone number"}),
    "first_name": frozenset({"first name", "firstname", "given name", "forename"}),
    "last_name": frozenset({"last name", "lastname", "surname", "family name"}),
    # The address's state (and country): the member's location for the quiet hours (audience_members.py).
    "state": frozenset({"state", "state code", "state province", "state/province", "province/state", "us state"}),
    "country": frozenset({"country", "country code"}),
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
    """A whole file parsed at once (:func:`parse_csv`): every accepted row, the first refused ones."""

    headers: tuple[str, ...]
    mapping: dict[str, str]  # field -> header, as resolved
    delimiter: str
    rows: list[CsvRow] = field(default_factory=list)
    rejections: list[CsvRejection] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


class CsvStream:
    """A file read as a stream: the header when constructed, then :meth:`batches` of accepted rows.

    Memory stays bounded whatever the file holds: one physical line at a time (at most ``MAX_LINE``
    characters), one batch of accepted rows, refused rows counted by reason with only the first
    ``rejections_kept`` kept. Every row, accepted or refused, counts against ``max_rows`` (blank lines are
    not rows). Raises :class:`CsvRefused` for the file as a whole: from the constructor for what the start
    of the file shows, from :meth:`batches` for the row cap and malformed lines, at the row where it shows.
    """

    def __init__(self, binary: IO[bytes], *, mapping: Mapping[str, str] | None = None,
                 default_country_prefix: str | None = None, max_rows: int = MAX_ROWS,
                 rejections_kept: int = REJECTIONS_KEPT) -> None:
        _refuse_unreadable(binary.read(_SNIFFED))
        binary.seek(0)
        # Bytes that are not UTF-8 are kept as surrogates and refused row by row (row_not_utf8).
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
        first_line = text.readline(MAX_LINE)
        self.delimiter = _delimiter(first_line)
        self._reader = csv.reader(_bounded_lines(first_line, text), delimiter=self.delimiter,
                                  doublequote=True, quotechar='"', strict=False)
        try:
            headers = next((row for row in self._reader if any(cell.strip() for cell in row)), None)
        except csv.Error as exc:
            raise CsvRefused("csv_malformed", f"line 1: {exc}") from None
        if headers is None:
            raise CsvRefused("csv_empty", "the file has no rows; export it again with its header row")
        self.headers = tuple(h.strip() for h in headers)
        if _NOT_UTF8.search(first_line):
            raise CsvRefused("csv_not_utf8", "the file is not UTF-8; in Excel choose Save As > 'CSV UTF-8'")
        self.mapping = _map_headers(list(self.headers), mapping)
        self._index = {name: self.headers.index(header) for name, header in self.mapping.items()}
        self._prefix = default_country_prefix
        self._max_rows = max_rows
        self._kept = rejections_kept
        self.rows_accepted = 0
        self.rejected_by_reason: Counter[str] = Counter()
        self.rejections: list[CsvRejection] = []

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    def batches(self, size: int) -> Iterator[list[CsvRow]]:
        """The accepted rows, ``size`` at a time, in file order; refused ones are tallied as they pass."""
        width = len(self.headers)
        reader = self._reader
        batch: list[CsvRow] = []
        line = reader.line_num + 1
        try:
            for cells in reader:
                start, line = line, reader.line_num + 1
                if not any(cell.strip() for cell in cells):
                    continue
                if self.rows_accepted + self.rows_rejected >= self._max_rows:
                    raise CsvRefused("csv_too_many_rows", f"the file has more than {self._max_rows:,} rows; "
                                                          f"split it into files of at most {self._max_rows:,} rows")
                verdict = _row_problem(cells, width) or _row(start, cells, self._index, self._prefix)
                if isinstance(verdict, CsvRow):
                    self.rows_accepted += 1
                    batch.append(verdict)
                    if len(batch) >= size:
                        yield batch
                        batch = []
                    continue
                reason, detail = verdict
                self.rejected_by_reason[reason] += 1
                if len(self.rejections) < self._kept:
                    self.rejections.append(CsvRejection(start, reason, detail, _raw(cells, self.delimiter)))
        except csv.Error as exc:
            raise CsvRefused("csv_malformed", f"line {line}: {exc}") from None
        except _LineTooLong:
            raise CsvRefused("csv_malformed", f"line {reader.line_num + 1} is longer than {MAX_LINE:,} "
                                              "characters; is this a CSV file?") from None
        if batch:
            yield batch


def parse_csv(
    data: bytes,
    *,
    mapping: Mapping[str, str] | None = None,
    default_country_prefix: str | None = None,
    max_rows: int = MAX_ROWS,
) -> CsvParseResult:
    """Parse a whole file held in memory (:class:`CsvStream` for an upload); raise :class:`CsvRefused`
    for a file that cannot be used at all."""
    stream = CsvStream(io.BytesIO(data), mapping=mapping, default_country_prefix=default_country_prefix,
                       max_rows=max_rows)
    rows = [row for batch in stream.batches(10_000) for row in batch]
    return CsvParseResult(stream.headers, dict(stream.mapping), stream.delimiter, rows, stream.rejections,
                          dict(stream.rejected_by_reason))


class _LineTooLong(Exception):
    pass


def _bounded_lines(first: str, text: TextIO) -> Iterator[str]:
    """``first``, then the lines of ``text``, never reading more than ``MAX_LINE`` characters of one."""
    line = first
    while line:
        if len(line) >= MAX_LINE and not line.endswith(("\n", "\r")):
            raise _LineTooLong
        yield line
        line = text.readline(MAX_LINE)


def _refuse_unreadable(head: bytes) -> None:
    """Refuse, from its first bytes, a file that is not CSV text we read."""
    if not head.strip() or head.strip() == b"\xef\xbb\xbf":
        if len(head) < _SNIFFED:
            raise CsvRefused("csv_empty", "the file is empty")
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise CsvRefused("csv_workbook", "this is an Excel workbook, not a CSV; in Excel choose Save As > 'CSV UTF-8'")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CsvRefused("csv_utf16", "the file is UTF-16 ('Unicode Text'); in Excel choose Save As > 'CSV UTF-8'")
    if b"\x00" in head:
        raise CsvRefused("csv_binary", "the file holds binary data, not CSV text")


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
        field = _field_name(header)
        if header and header not in taken and field is not None and field not in resolved:
            resolved[field] = header
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


def _row(line: int, cells: list[str], index: Mapping[str, int], prefix: str | None) -> CsvRow | tuple[str, str]:
    """The accepted row, or (reason, detail) when its number is refused."""
    values = {name: cells[i].strip() for name, i in index.items()}
    mobile = values.pop("mobile")
    member_id = values.pop("member_id", "")
    if prefix is not None:
        if not mobile:
            return "missing_mobile", "no mobile number"
        number = normalise(mobile, prefix)
        if not isinstance(number, Normalised):
            return "invalid_number", number.reason
    return CsvRow(line, member_id, mobile, values)


def _raw(cells: list[str], delimiter: str) -> str:
    text = delimiter.join(cells)
    text = _NOT_UTF8.sub("\ufffd", text)
    return text if len(text) <= _RAW_SHOWN else text[:_RAW_SHOWN] + "…"


def inert(cell: str) -> str:
    """A cell that a spreadsheet will show as text: one starting ``= + - @`` TAB or CR gets a leading ``'``."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def rejections_note(shown: int, total: int) -> str | None:
    """What a report of the first ``shown`` of ``total`` refused rows says of itself; None when complete."""
    return f"showing the first {shown:,} of {total:,} rejected rows" if shown < total else None


def rejection_report(rejections: Sequence[CsvRejection], total: int | None = None) -> str:
    """The downloadable report (CSV, CRLF, every cell quoted and made inert): line, reason, detail, row.
    When ``rejections`` are the first of ``total``, the row under the header says so."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(["line", "reason", "detail", "row"])
    note = rejections_note(len(rejections), len(rejections) if total is None else total)
    if note is not None:
        writer.writerow(["", "", note, ""])
    for r in rejections:
        writer.writerow([str(r.line), inert(r.reason), inert(r.detail), inert(r.raw)])
    return out.getvalue()
