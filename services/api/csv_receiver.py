"""A CSV upload's multipart body, received as a stream into a spool that never holds more than the cap.

Starlette's ``request.form()`` spools a file part into a ``SpooledTemporaryFile`` with no bound of its own
(its ``max_part_size`` bounds only the text fields), so only the body cap in front of the app
(``libs/common/body_limits.py``: the file's cap plus multipart overhead) would stop a large one. Here the
file part is counted as it arrives and refused (:class:`FileTooLarge`, 413, connection closed) before a
byte past ``max_file_bytes`` is written: the spool keeps its first ``SPOOL_IN_MEMORY`` bytes in memory and
the rest on disk, and holds at most the cap. Text fields (the header mapping) are kept in memory, each at
most ``MAX_FIELD_BYTES``.

    async with received_csv(request, max_file_bytes=cap, field_names={"mobile_column"}) as upload:
        ...  # upload.file is positioned at the start; it is closed (and deleted) on leaving

Raises :class:`FileTooLarge`, or ``InvalidInput`` on ``file``: ``file_missing`` (no part named ``file``
with a filename, or not multipart at all), ``file_too_many``, ``multipart_invalid``, and
``field_too_long`` on the field concerned.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Final

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:  # python_multipart declares its callback table for type checkers only
    from python_multipart.multipart import MultipartCallbacks
from starlette.exceptions import HTTPException
from starlette.requests import Request

from libs.common.body_limits import describe_bytes
from services.api.errors import InvalidInput

SPOOL_IN_MEMORY: Final = 1024 * 1024
MAX_FIELD_BYTES: Final = 1024
MAX_FIELDS: Final = 20
FILE_FIELD: Final = "file"


class FileTooLarge(HTTPException):
    code: Final = "file_too_large"

    def __init__(self, limit: int) -> None:
        # The rest of the body is not read: closing the connection keeps the client from sending it anyway.
        super().__init__(413, f"{FILE_FIELD}: the upload is over {describe_bytes(limit)}; split it into smaller "
                              "files", headers={"Connection": "close"})


@dataclass(frozen=True)
class ReceivedCsv:
    file: IO[bytes]
    filename: str
    fields: dict[str, str]


@asynccontextmanager
async def received_csv(request: Request, *, max_file_bytes: int,
                       field_names: Collection[str]) -> AsyncIterator[ReceivedCsv]:
    """Read the whole body; yield the spooled file (at its start), its name and the text fields named."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise InvalidInput(FILE_FIELD, "file_missing", "send the CSV as the multipart field 'file'")
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        receiver = _Receiver(spool, max_file_bytes, set(field_names))
        try:
            parser = MultipartParser(options[b"boundary"], receiver.callbacks())
            async for chunk in request.stream():
                parser.write(chunk)
                await receiver.flush()
            parser.finalize()
        except FormParserError:
            raise InvalidInput(FILE_FIELD, "multipart_invalid",
                               "the body is not valid multipart/form-data; send the CSV as the field 'file'") from None
        if not receiver.file_complete:
            raise InvalidInput(FILE_FIELD, "file_missing", "send the CSV as the multipart field 'file'")
        spool.seek(0)
        yield ReceivedCsv(spool, receiver.filename, receiver.fields)


class _Receiver:
    """python-multipart's callbacks (synchronous): file bytes are counted at once and written by ``flush``."""

    def __init__(self, spool: IO[bytes], max_file_bytes: int, field_names: set[str]) -> None:
        self._spool = spool
        self._max = max_file_bytes
        self._names = field_names
        self._pending: list[bytes] = []
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._part: str | None = None  # FILE_FIELD, a wanted field's name, or None for a part ignored
        self._value = bytearray()
        self._parts = 0
        self.file_bytes = 0
        self.file_seen = False
        self.file_complete = False
        self.filename = ""
        self.fields: dict[str, str] = {}

    def callbacks(self) -> MultipartCallbacks:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value_part, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._end}

    async def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if self.file_bytes <= SPOOL_IN_MEMORY:
            self._spool.write(data)
        else:  # on disk by now: not on the event loop
            await asyncio.to_thread(self._spool.write, data)

    def _begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_FIELDS:
            raise InvalidInput(FILE_FIELD, "multipart_invalid", f"the form has more than {MAX_FIELDS} fields")
        self._disposition, self._part, self._value = b"", None, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == FILE_FIELD and b"filename" in options:
            if self.file_seen:
                raise InvalidInput(FILE_FIELD, "file_too_many", "send one CSV file per upload")
            self.file_seen = True
            self.filename = options[b"filename"].decode("utf-8", "replace")
            self._part = FILE_FIELD
        elif name in self._names and b"filename" not in options:
            self._part = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part == FILE_FIELD:
            if self.file_bytes + (end - start) > self._max:
                raise FileTooLarge(self._max)
            self.file_bytes += end - start
            self._pending.append(data[start:end])
        elif self._part is not None:
            if len(self._value) + (end - start) > MAX_FIELD_BYTES:
                raise InvalidInput(self._part, "field_too_long", f"at most {MAX_FIELD_BYTES} bytes")
            self._value += data[start:end]

    def _end(self) -> None:
        if self._part == FILE_FIELD:
            self.file_complete = True
        elif self._part is not None:
            self.fields[self._part] = self._value.decode("utf-8", "replace")
