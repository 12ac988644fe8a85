"""CSV in and out: streamed reading with encoding and delimiter detection, and safe export.

Reading never holds more than one record (bounded by ``max_chars``) and the
lines of one unfinished record in memory. A record that is too long, or that
opens a quote it never closes, is reported on its own and the lines after its
first are read again, so one bad cell never swallows the valid rows after it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
CHUNK_BYTES = 1 << 20

# Bytes Windows-1252 leaves undefined: a non-UTF-8 file holding one is Latin-1.
_CP1252_UNDEFINED = re.compile(b"[\x81\x8d\x8f\x90\x9d]")


class CsvFileError(ValueError):
    """The file as a whole cannot be read as a CSV of contacts (the reason is for a person)."""


# Opens the file from its first byte; called once per pass over it.
Opener = Callable[[], BinaryIO]


@dataclass
class Encoding:
    codec: str
    label: str
    size: int
    notes: list[str] = field(default_factory=list)


def detect_encoding(opener: Opener) -> Encoding:
    """Reads the whole file once, in chunks, and decides how to decode it.

    UTF-8 (with or without BOM) and UTF-16 with a BOM are taken as they are.
    Anything else is decoded as Windows-1252 (what Excel on Windows writes),
    or as Latin-1 when it holds bytes Windows-1252 does not define; both are
    guesses and the answer says so. Raises CsvFileError for an empty or
    binary file.
    """
    stream = opener()
    head = stream.read(CHUNK_BYTES)
    size = len(head)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec, label = "utf-16", "UTF-16"
        checker = codecs.getincrementaldecoder(codec)()
    else:
        codec = "utf-8-sig"
        label = "UTF-8 with BOM" if head.startswith(codecs.BOM_UTF8) else "UTF-8"
        checker = codecs.getincrementaldecoder("utf-8")()
    valid, has_nul, cp1252_undefined, blank = True, False, False, True
    chunk = head
    while chunk:
        if codec != "utf-16" and b"\x00" in chunk:
            has_nul = True
            break
        if valid:
            try:
                decoded = checker.decode(chunk)
            except UnicodeDecodeError:
                valid = False
            else:
                blank = blank and not decoded.lstrip("\ufeff").strip()
        if not valid:
            cp1252_undefined = cp1252_undefined or bool(_CP1252_UNDEFINED.search(chunk))
            blank = blank and not chunk.strip()
        chunk = stream.read(CHUNK_BYTES)
        size += len(chunk)
    if has_nul:
        raise CsvFileError(
            "this is not a CSV text file (it holds binary data): export the sheet as CSV"
        )
    if valid:
        try:
            checker.decode(b"", final=True)
        except UnicodeDecodeError:
            valid = False
    if size == 0 or (valid and blank):
        raise CsvFileError("the file is empty")
    if valid:
        return Encoding(codec, label, size)
    if codec == "utf-16":
        raise CsvFileError("the file starts like UTF-16 but is not valid UTF-16")
    if blank:
        raise CsvFileError("the file is empty")
    codec, label = ("latin-1", "Latin-1") if cp1252_undefined else ("cp1252", "Windows-1252")
    return Encoding(
        codec,
        label,
        size,
        notes=[
            f"the file is not UTF-8; it was read as {label}. If names look wrong, "
            "save it as 'CSV UTF-8' and upload it again."
        ],
    )


class _CountingReader(io.RawIOBase):
    """A raw stream over any ``read(n)`` object that counts the bytes read."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        self.bytes_read += count
        return count


@dataclass(slots=True)
class Record:
    """One CSV record: the file line it starts on, and its fields or why it is unreadable."""

    line: int
    fields: list[str]
    problem: str | None = None


class _Overflow(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class CsvReader:
    """Iterates a file's header and records, streaming; ``bytes_read`` tracks progress."""

    def __init__(self, opener: Opener, encoding: Encoding, *, max_chars: int = 65536) -> None:
        self._raw = _CountingReader(opener())
        self._text = io.TextIOWrapper(
            io.BufferedReader(self._raw, CHUNK_BYTES // 4), encoding=encoding.codec, newline=""
        )
        self.max_chars = max_chars
        if csv.field_size_limit() < max_chars + 1:
            csv.field_size_limit(max_chars + 1)
        self._lines = self._physical_lines()
        self._peeked: list[tuple[int, str, bool]] = []
        self.delimiter = self._detect_delimiter()

    @property
    def bytes_read(self) -> int:
        return self._raw.bytes_read

    def _physical_lines(self) -> Iterator[tuple[int, str, bool]]:
        """(line number, text, too long); a too-long line is skipped, never held whole."""
        number = 0
        readline = self._text.readline
        limit = self.max_chars
        while True:
            line = readline(limit + 1)
            if not line:
                return
            number += 1
            if len(line) > limit and not line.endswith(("\n", "\r")):
                while True:
                    rest = readline(limit)
                    if not rest or rest.endswith(("\n", "\r")):
                        break
                yield number, "", True
            else:
                yield number, line, False

    def _detect_delimiter(self) -> str:
        """The delimiter that splits the first non-blank line into a phone column, else the most fields."""
        for item in self._lines:
            self._peeked.append(item)
            number, text, too_long = item
            if too_long:
                raise CsvFileError(
                    f"line {number}: the header is longer than {self.max_chars} characters"
                )
            if text.strip():
                break
        else:
            raise CsvFileError("the file is empty")
        header_line = self._peeked[-1][1]
        best, best_score = ",", (False, 0)
        for delimiter in DELIMITERS:
            fields = next(csv.reader([header_line], delimiter=delimiter), [])
            score = (any(is_phone_column(name) for name in fields), len(fields))
            if score > best_score:
                best, best_score = delimiter, score
        return best

    def records(self) -> Iterator[Record]:
        """Every non-blank record, the header first. Blank lines (or only delimiters) are skipped."""
        source = iter(self._peeked)
        lines: Iterator[tuple[int, str, bool]] = _chain(source, self._lines)
        replay: deque[tuple[int, str, bool]] = deque()
        max_chars = self.max_chars
        while True:
            pending: list[tuple[int, str, bool]] = []
            size = [0]

            def feed(pending=pending, size=size) -> Iterator[str]:
                while True:
                    if replay:
                        item = replay.popleft()
                    else:
                        item = next(lines, None)
                        if item is None:
                            if pending:
                                raise _Overflow("a quote opened here is never closed")
                            return
                    pending.append(item)
                    if item[2]:
                        raise _Overflow(f"the line is longer than {max_chars} characters")
                    size[0] += len(item[1])
                    if size[0] > max_chars:
                        raise _Overflow(
                            f"the record is longer than {max_chars} characters "
                            "(a quote opened here may never be closed)"
                        )
                    yield item[1]

            reader = csv.reader(feed(), delimiter=self.delimiter)
            try:
                for fields in reader:
                    first = pending[0][0]
                    pending.clear()
                    size[0] = 0
                    if any(cell.strip() for cell in fields):
                        yield Record(first, fields)
                return
            except (_Overflow, csv.Error) as error:
                reason = error.reason if isinstance(error, _Overflow) else f"unreadable: {error}"
                first = pending[0][0]
                replay.extendleft(reversed(pending[1:]))
                yield Record(first, [], reason)


def _chain(*iterators: Iterable) -> Iterator:
    for iterator in iterators:
        yield from iterator


def normalize_header(name: str) -> str:
    """Column names compare case-insensitively, with spaces and hyphens as underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


PHONE_COLUMNS = ("phone", "phone_number", "mobile", "whatsapp", "number")


def is_phone_column(name: str) -> bool:
    return normalize_header(name) in PHONE_COLUMNS


def phone_column_index(header: list[str]) -> int:
    """Position of the phone column (by PHONE_COLUMNS' order of preference); raises CsvFileError."""
    normalized = [normalize_header(name) for name in header]
    for alias in PHONE_COLUMNS:
        if alias in normalized:
            return normalized.index(alias)
    found = ", ".join(repr(name) for name in header if name.strip()) or "none"
    raise CsvFileError(
        f"no phone column: name one of {', '.join(PHONE_COLUMNS)} (columns found: {found})"
    )


# Spreadsheets run a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> str:
    """``value`` as text, prefixed with ' when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_stream(header: list[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Lines of a CSV export, every cell escaped; starts with a BOM so Excel reads it as UTF-8."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(header)
    for row in rows:
        yield writer.writerow([escape_cell(cell) for cell in row])
