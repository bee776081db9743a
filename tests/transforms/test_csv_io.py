"""Tests for transforms.csv_io: robust export reading and formula-safe CSV writing."""

from __future__ import annotations

import codecs
import csv
import io
import warnings
from pathlib import Path

import pandas as pd
import pytest

from transforms.csv_io import (
    DuplicateHeaderWarning,
    EmptyExportError,
    detect_encoding,
    neutralize_formula,
    read_export,
    sniff_delimiter,
    write_csv,
)

TEXT = "First Name,Last Name,Email\nJosé,Müller,jose@acme.test\nZoë,Ø'Brien,zoe@acme.test\n"
ROWS = [
    {"First Name": "José", "Last Name": "Müller", "Email": "jose@acme.test"},
    {"First Name": "Zoë", "Last Name": "Ø'Brien", "Email": "zoe@acme.test"},
]


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("utf-16"), "utf-16"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),
        (TEXT.encode("utf-16-be"), "utf-16-be"),
        (TEXT.encode("utf-32"), "utf-32"),
        (TEXT.encode("cp1252"), "cp1252"),
        # 0x81 is undefined in cp1252, so only Latin-1 decodes this one.
        (TEXT.replace("Müller", "M\x81ller").encode("latin-1"), "latin-1"),
    ],
)
def test_encodings_are_detected(data: bytes, encoding: str) -> None:
    assert detect_encoding(data) == encoding
    frame = read_export(data)
    assert frame.attrs["encoding"] == encoding
    expected = ROWS if encoding != "latin-1" else [{**ROWS[0], "Last Name": "M\x81ller"}, ROWS[1]]
    assert frame.to_dict("records") == expected
    assert list(frame.columns) == ["First Name", "Last Name", "Email"]


def test_cp1252_punctuation_is_decoded() -> None:
    frame = read_export("Name;Note\nAnn;“quoted” – €5\n".encode("cp1252"))
    assert frame.loc[0, "Note"] == "“quoted” – €5"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_sniffed(delimiter: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(["First Name", "Company", "Notes"])
    writer.writerow(["Ann", "Smith, Jones; Partners | Co", "tab\there"])
    writer.writerow(["Bo", "Acme", ""])
    frame = read_export(buffer.getvalue().encode())
    assert frame.attrs["delimiter"] == delimiter
    assert frame.loc[0, "Company"] == "Smith, Jones; Partners | Co"
    assert frame.loc[0, "Notes"] == "tab\there"
    assert len(frame) == 2


def test_sniffing_prefers_consistent_splits() -> None:
    # Commas appear in values, but only ";" splits every record the same way.
    text = "Name;Company\nAnn;Smith, Jones, Partners\nBo;Acme, Inc\n"
    assert sniff_delimiter(text) == ";"
    assert sniff_delimiter("single column\nvalue\n") == ","


def test_forced_delimiter_and_encoding() -> None:
    data = "a;b\n1,5;2\n".encode("cp1252")
    frame = read_export(data, delimiter=";", encoding="cp1252")
    assert frame.to_dict("records") == [{"a": "1,5", "b": "2"}]
    with pytest.raises(ValueError, match="cannot decode the export as utf-8"):
        read_export("é".encode("latin-1") + b",x\n", encoding="utf-8")


def test_all_cells_are_text_and_nothing_is_guessed() -> None:
    frame = read_export(b"zip,flag,n,missing\n00123,NA,1e5,null\n,,,\n")
    assert frame.to_dict("records") == [
        {"zip": "00123", "flag": "NA", "n": "1e5", "missing": "null"},
        {"zip": "", "flag": "", "n": "", "missing": ""},
    ]
    assert all(str(dtype) == "str" for dtype in frame.dtypes)


@pytest.mark.parametrize("data", [b"", b"   \n\n", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, b"\r\n"])
def test_empty_files_raise_a_clear_error(data: bytes) -> None:
    with pytest.raises(EmptyExportError, match="empty"):
        read_export(data)


def test_blank_header_line_is_an_error() -> None:
    with pytest.raises(EmptyExportError, match="no header row"):
        read_export(b",,\na,b,c\n")


def test_header_only_file_gives_an_empty_frame() -> None:
    frame = read_export(b"First Name,Email\r\n")
    assert list(frame.columns) == ["First Name", "Email"]
    assert len(frame) == 0


def test_duplicate_and_blank_headers_are_made_unique_with_a_warning() -> None:
    with pytest.warns(DuplicateHeaderWarning, match="'Email' -> 'Email_3'"):
        frame = read_export(b"Email,Email, ,Email_2\na,b,c,d\n")
    assert list(frame.columns) == ["Email", "Email_3", "column_3", "Email_2"]
    assert list(frame.iloc[0]) == ["a", "b", "c", "d"]
    assert frame.attrs["renamed_headers"] == {"Email_3": "Email", "column_3": ""}


def test_trailing_empty_columns_are_dropped_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = read_export(b"a,b,\n1,2,\n3,4,\n")
    assert list(frame.columns) == ["a", "b"]


def test_headers_are_trimmed() -> None:
    frame = read_export(b"  First   Name ,\xef\xbb\xbfEmail\nAnn,a@x.test\n")
    assert list(frame.columns) == ["First Name", "Email"]


def test_short_rows_are_padded_long_rows_flagged_blank_lines_skipped() -> None:
    frame = read_export(b"a,b,c\n1\n\n2,3,4,5\n6,7,8,,\n")
    assert frame[["a", "b", "c"]].to_dict("records") == [
        {"a": "1", "b": "", "c": ""},
        {"a": "2", "b": "3", "c": "4"},
        {"a": "6", "b": "7", "c": "8"},
    ]
    errors = frame["_row_error"].tolist()
    assert pd.isna(errors[0]) and pd.isna(errors[2])
    assert (
        errors[1]
        == "row: 4 values but the header has 3 columns (an unquoted delimiter in a value?)"
    )


def test_quoted_newlines_quotes_and_crlf() -> None:
    data = b'Name,Note\r\n"Ann","line one\r\nline ""two"""\r\nBo,plain\r\n'
    frame = read_export(data)
    assert frame["Note"].tolist() == ['line one\r\nline "two"', "plain"]


def test_lone_carriage_return_line_endings() -> None:
    frame = read_export(b"a,b\r1,2\r3,4\r")
    assert frame.to_dict("records") == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


def test_huge_cells_and_control_characters() -> None:
    huge = "x" * 300_000
    data = f'a,b\n"{huge}",\x00\x07\x1b\n'.encode()
    frame = read_export(data)
    assert frame.loc[0, "a"] == huge
    assert frame.loc[0, "b"] == "\x00\x07\x1b"


def test_reads_paths_text_and_binary_files(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(TEXT.encode("utf-16"))
    assert read_export(path).to_dict("records") == ROWS
    assert read_export(str(path)).to_dict("records") == ROWS
    with path.open("rb") as handle:
        assert read_export(handle).to_dict("records") == ROWS
    assert read_export(io.StringIO(TEXT)).to_dict("records") == ROWS


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("+14155552671", "'+14155552671"),
        ("Ann", "Ann"),
        (" =1", " =1"),
        ("", ""),
        ("a=b", "a=b"),
        (42, 42),
        (None, None),
    ],
)
def test_neutralize_formula(value: object, safe: object) -> None:
    assert neutralize_formula(value) == safe


def test_write_csv_neutralizes_and_serializes(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "=col": ["=1+2", None, "plain"],
            "data": [{"a": 1}, ["x", "y"], float("nan")],
            "n": [1, 2, 3],
            "when": [pd.Timestamp("2026-05-12T08:00:00Z"), pd.NaT, None],
        }
    )
    path = tmp_path / "out" / "results.csv"
    write_csv(frame, path)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["'=col", "data", "n", "when"],
        ["'=1+2", '{"a": 1}', "1", "2026-05-12T08:00:00+00:00"],
        ["", '["x", "y"]', "2", ""],
        ["plain", "", "3", ""],
    ]


def test_write_csv_to_a_buffer_round_trips_through_read_export() -> None:
    frame = pd.DataFrame({"name": ["Zoë", "-5", 'say "hi"\nbye']})
    buffer = io.StringIO()
    write_csv(frame, buffer)
    back = read_export(buffer.getvalue().encode())
    assert back["name"].tolist() == ["Zoë", "'-5", 'say "hi"\nbye']


def test_write_csv_utf8_sig_for_excel(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    write_csv(pd.DataFrame({"a": ["é"]}), path, encoding="utf-8-sig")
    assert path.read_bytes().startswith(codecs.BOM_UTF8)
    assert read_export(path).loc[0, "a"] == "é"
