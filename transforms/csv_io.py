"""Read CRM exports robustly, and write CSV that is safe to open in a spreadsheet.

Reading (:func:`read_export`):

- Encoding: a byte-order mark decides (UTF-8, UTF-16, UTF-32); UTF-16 without a BOM is
  recognised from its zero bytes; otherwise UTF-8, then Windows-1252, then Latin-1 (which
  decodes anything, so reading never fails on encoding).
- Delimiter: ``,`` ``;`` tab or ``|``, whichever splits the header and the first records into
  the most consistent number of fields (ties go to that order).
- Every cell is text (``""`` when empty): no type guessing, so ``00123`` and ``NA`` survive.
- Blank lines are skipped; a row with fewer cells than the header is padded; a row with more
  non-empty cells gets a ``_row_error`` (its data is probably shifted) and is rejected by the
  cleaning step, never silently dropped.
- Header names are trimmed; blank ones become ``column_<n>``; duplicates become unique
  (``Email``, ``Email_2``) with a :class:`DuplicateHeaderWarning`.
- An empty file (or one holding only a BOM / whitespace) raises :class:`EmptyExportError`; a
  header-only file gives an empty frame with those columns.

Writing (:func:`write_csv`): every text cell, header included, that a spreadsheet would run as a
formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) is prefixed with a
single quote, following OWASP's CSV-injection guidance.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import warnings
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Final

import pandas as pd

from transforms.mapping import ROW_ERROR

#: Candidate delimiters, in tie-break order.
DELIMITERS: Final = (",", ";", "\t", "|")
#: First characters that make a spreadsheet treat a cell as a formula (OWASP).
FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")
_SNIFF_CHARS: Final = 64 * 1024
_SNIFF_RECORDS: Final = 50
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class EmptyExportError(ValueError):
    """The export has no header row (empty file, or only whitespace / a BOM)."""


class NotTextError(ValueError):
    """The export is not a text file (an Excel workbook, an archive, an image ...)."""


#: Leading bytes of binary files people pick instead of the CSV they meant.
_ZIP_MAGIC: Final = b"PK\x03\x04"
_OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 .xls
#: Share of control characters (NUL included) above which bytes are binary, not a text export.
#: High on purpose: a real export may carry a stray NUL or escape code in a cell, and such a file
#: must still load row for row; binaries without a known signature are mostly control bytes.
_MAX_CONTROL_SHARE: Final = 0.3
#: ... or at least this many distinct control characters making up more than this share.
_MIN_DISTINCT_CONTROLS: Final = 16
_MIN_SPREAD_SHARE: Final = 0.05
#: Signatures of common binary files someone may pass by mistake (images, PDF, archives).
_BINARY_MAGIC: Final = (
    b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"%PDF", b"\x1f\x8b", b"BZh",
    b"\x7fELF", b"7z\xbc\xaf", b"Rar!",
)  # fmt: skip


def looks_binary(text: str) -> bool:
    """Whether decoded bytes look like binary data rather than a text export.

    Binary data is mostly control characters, or carries many *different* ones spread over
    it; a real export may hold a stray NUL or escape code in a cell and must still load.
    """
    controls = [ch for ch in text if ch < " " and ch not in "\t\r\n\f"]
    share = len(controls) / max(len(text), 1)
    return share > _MAX_CONTROL_SHARE or (
        len(set(controls)) >= _MIN_DISTINCT_CONTROLS and share > _MIN_SPREAD_SHARE
    )


def check_text(data: bytes, encoding: str) -> None:
    """Refuse bytes that are not a text file, with what they look like and what to do.

    Decoding alone cannot tell: Latin-1 decodes anything, so a workbook would turn into a
    header of binary garbage.

    Args:
        data: The raw bytes (the start of the file is enough).
        encoding: The codec :func:`detect_encoding` chose (UTF-16/32 legitimately hold NULs).

    Raises:
        NotTextError: An Excel workbook, another ZIP archive, or binary data.
    """
    head = data[:65536]
    if head.startswith(_ZIP_MAGIC):
        if b"xl/" in head or b"[Content_Types].xml" in head:
            raise NotTextError(
                "this is an Excel workbook — save it as CSV (File > Save As > CSV UTF-8) "
                "and push that file"
            )
        raise NotTextError("this is a ZIP archive, not a text file — unpack the CSV export")
    if head.startswith(_OLE2_MAGIC):
        raise NotTextError(
            "this is an Excel 97-2003 workbook — save it as CSV (File > Save As > CSV UTF-8) "
            "and push that file"
        )
    if head.startswith(_BINARY_MAGIC):
        raise NotTextError("not a text file (binary data) — give the path of a CSV export")
    if encoding.startswith(("utf-16", "utf-32")):
        return
    text = head.decode(encoding, errors="replace")
    if looks_binary(text):
        raise NotTextError("not a text file (binary data) — give the path of a CSV export")


class DuplicateHeaderWarning(UserWarning):
    """Some header names were repeated (or blank) and have been renamed to stay unique."""


def detect_encoding(data: bytes) -> str:
    """Guess the text encoding of an export.

    Args:
        data: The raw bytes (the whole file, or at least its start).

    Returns:
        A Python codec name: ``utf-8-sig``/``utf-16``/``utf-32`` when a BOM says so,
        ``utf-16-le``/``utf-16-be`` for BOM-less UTF-16, else ``utf-8``, ``cp1252`` or
        ``latin-1`` — the first that decodes ``data``.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    head = data[:32]
    if len(head) >= 4 and len(head) % 2 == 0:
        # ASCII-range text in UTF-16 without BOM: every other byte is zero. No sane UTF-8 CSV
        # starts with a run of alternating NULs.
        evens, odds = head[0::2], head[1::2]
        if all(odds[i] == 0 for i in range(len(odds))) and all(evens):
            return "utf-16-le"
        if all(evens[i] == 0 for i in range(len(evens))) and all(odds):
            return "utf-16-be"
    for name in ("utf-8", "cp1252"):
        try:
            data.decode(name)
        except UnicodeDecodeError:
            continue
        return name
    return "latin-1"


def _records(text: str, delimiter: str) -> Iterable[list[str]]:
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter among ``, ; tab |`` that splits the start of ``text`` most consistently.

    Args:
        text: The decoded export (only its first 64 KiB / 50 records are looked at).

    Returns:
        The delimiter; ``","`` when none splits the header into two or more fields.
    """
    sample = text[:_SNIFF_CHARS]
    truncated = len(text) > len(sample)
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        rows: list[list[str]] = []
        for row in _records(sample, delimiter):
            if row:
                rows.append(row)
            if len(rows) > _SNIFF_RECORDS:
                break
        if truncated and len(rows) > 2:
            rows = rows[:-1]  # the cut may have split the last record
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        data = rows[1:] or rows
        consistency = sum(1 for row in data if len(row) == width) / len(data)
        score = (consistency, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _unique_headers(raw: list[str]) -> tuple[list[str], dict[str, str]]:
    names: list[str] = []
    renamed: dict[str, str] = {}
    taken: set[str] = set()
    cleaned = [" ".join(h.replace("\ufeff", "").split()) for h in raw]
    reserved = set(cleaned)
    for position, name in enumerate(cleaned, start=1):
        base = name or f"column_{position}"
        candidate, n = base, 1
        while candidate in taken or (candidate != name and candidate in reserved):
            n += 1
            candidate = f"{base}_{n}"
        if candidate != name:
            renamed[candidate] = name
        taken.add(candidate)
        names.append(candidate)
    return names, renamed


def _read_bytes(source: str | Path | bytes | IO[bytes] | IO[str]) -> bytes | str:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | Path):
        return Path(source).read_bytes()
    return source.read()


def read_export(
    source: str | Path | bytes | IO[bytes] | IO[str],
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> pd.DataFrame:
    """Read a CRM export into a DataFrame of text columns.

    Args:
        source: A path, the file's bytes, or an open binary (or text) file.
        encoding: Force a codec instead of detecting it.
        delimiter: Force a delimiter instead of sniffing it.

    Returns:
        One row per record (blank lines skipped), every column dtype ``str`` with ``""`` for
        empty cells, plus ``_row_error`` when some rows had more cells than the header.
        ``attrs`` records ``encoding``, ``delimiter`` and ``renamed_headers`` (new -> original).

    Raises:
        EmptyExportError: The export has no header row.
        NotTextError: The file is a workbook, an archive or other binary data, or its
            byte-order mark names a codec its bytes do not follow.
        ValueError: A forced ``encoding`` cannot decode the file (the message says so).
        OSError: The path cannot be read.
    """
    data = _read_bytes(source)
    if isinstance(data, str):
        text, used_encoding = data, "text"
    else:
        used_encoding = encoding or detect_encoding(data)
        check_text(data, used_encoding)
        try:
            text = data.decode(used_encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            if encoding is None:
                # only a byte-order mark commits to a codec that can then fail: the file says it
                # is UTF-16/32 text and is not (truncated or damaged)
                raise NotTextError(
                    f"the file starts like {used_encoding} text but is not valid {used_encoding} "
                    f"({exc}) — it is damaged or cut short; export it again"
                ) from None
            raise ValueError(
                f"cannot decode the export as {used_encoding}: {exc}; leave the encoding out to "
                "detect it"
            ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise EmptyExportError("the export is empty: no header row")
    sep = delimiter or sniff_delimiter(text)
    # Huge cells (pasted notes, HTML) exceed csv's default 128 KiB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    records = iter(_records(text, sep))
    header = next((row for row in records if row), None)
    if header is None or not any(cell.strip() for cell in header):
        raise EmptyExportError("the export has no header row (the first non-blank line is empty)")
    columns, renamed = _unique_headers(header)
    rows, errors = _body(records, len(columns))
    frame = pd.DataFrame(rows, columns=pd.Index(columns), dtype="str")
    if not rows:
        frame = pd.DataFrame({c: pd.Series([], dtype="str") for c in columns})
    # Trailing delimiters (common from spreadsheets) leave blank-headed, empty columns: drop them.
    blank = [c for c, o in renamed.items() if not o and not bool(frame[c].str.len().gt(0).any())]
    if blank:
        frame = frame.drop(columns=blank)
        renamed = {c: o for c, o in renamed.items() if c not in blank}
    if renamed:
        message = ", ".join(f"{old!r} -> {new!r}" for new, old in renamed.items())
        warnings.warn(
            f"duplicate or blank headers: {message}", DuplicateHeaderWarning, stacklevel=2
        )

    if any(e is not None for e in errors):
        frame[ROW_ERROR] = pd.Series(errors, dtype="str")
    frame.attrs["encoding"] = used_encoding
    frame.attrs["delimiter"] = sep
    frame.attrs["renamed_headers"] = renamed
    return frame


def _body(records: Iterable[list[str]], width: int) -> tuple[list[list[str]], list[str | None]]:
    """Rows padded/cut to ``width``, and a parse error per row (``None`` when fine)."""
    rows: list[list[str]] = []
    errors: list[str | None] = []
    for row in records:
        if not row:
            continue
        if len(row) > width:
            extra = row[width:]
            if any(cell.strip() for cell in extra):
                errors.append(
                    f"row: {len(row)} values but the header has {width} columns "
                    "(an unquoted delimiter in a value?)"
                )
            else:
                errors.append(None)
            row = row[:width]
        else:
            errors.append(None)
            if len(row) < width:
                row = row + [""] * (width - len(row))
        rows.append(row)
    return rows, errors


def neutralize_formula(value: Any) -> Any:
    """Make one cell safe to open in a spreadsheet (OWASP CSV injection).

    Args:
        value: Any cell value.

    Returns:
        ``"'" + value`` when ``value`` is text starting with ``=``, ``+``, ``-``, ``@``, tab or
        carriage return; otherwise ``value`` unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(value, ensure_ascii=False, default=str)
    elif isinstance(value, datetime | date | pd.Timestamp):
        text = value.isoformat()
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return str(neutralize_formula(text))


def write_csv(
    df: pd.DataFrame, path_or_buffer: str | Path | IO[str], *, encoding: str = "utf-8"
) -> None:
    """Write a DataFrame as CSV with formula-like cells neutralized.

    Missing values become empty cells; dicts and lists are written as JSON; timestamps in
    ISO 8601. Pass ``encoding="utf-8-sig"`` for a file Excel opens with the right characters.

    Args:
        df: The frame (index not written).
        path_or_buffer: A path (parent directories are created) or an open text file.
        encoding: Codec for a path.
    """
    header = [_cell(str(c)) for c in df.columns]
    body = ([_cell(v) for v in record] for record in df.itertuples(index=False, name=None))
    if isinstance(path_or_buffer, str | Path):
        target = Path(path_or_buffer)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="", encoding=encoding) as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(body)
        return
    writer = csv.writer(path_or_buffer)
    writer.writerow(header)
    writer.writerows(body)
