"""Property tests: any CSV export goes through read -> map -> clean without crashing, and every
input row ends up either valid or rejected with a reason (nothing lost, nothing doubled)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.cleaning import CleanResult, clean_contacts
from transforms.csv_io import (
    FORMULA_PREFIXES,
    EmptyExportError,
    NotTextError,
    read_export,
    write_csv,
)
from transforms.mapping import apply_mapping

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Lossless encodings: the frame read back must equal the rows written, cell for cell.
LOSSLESS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le")
ENCODINGS = (*LOSSLESS, "cp1252", "latin-1")
REASON_PREFIXES = ("first_name: ", "phone: ", "email: ", "tags: ", "custom_fields: ", "row: ")

IDENTITY_HEADERS = st.sampled_from(["First Name", "first_name", "FirstName", "Email", "email"])
OTHER_HEADERS = st.sampled_from(
    [
        "Record ID", "First Name", "Last Name", "Email", "Phone Number", "Mobile Phone Number",
        "Company Name", "Job Title", "Lifecycle Stage", "Id", "Name", "Phone", "Account.Name",
        "Contact ID", "Mobile", "City", "id", "phone", "tags", "custom_fields", "status",
        "custom_fields.plan", "Notes", "Country/Region", "Create Date",
    ]
)  # fmt: skip
NASTY_CELLS = st.sampled_from(
    [
        "", " ", "  \t ", "=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(A1)", "\t=1", "\r=2",
        "12ab", "+1 415 555 2671", "(415) 555-2671", "a@b.test", "Ann@ACME.test", "foo@", "NA",
        "null", '"quoted"', 'say "hi"', "a,b;c|d\te", "line\nbreak", "crlf\r\ninside",
        "vip; VIP, vip", '["a", {"b": 1}]', '{"plan": "pro"}', "{bad json", "Lee, Ann",
        "\x00nul", "\x1b[31mred", "\ufeffbom", "zero\u200bwidth", "Zoë José Søren", "x" * 3000,
    ]
)  # fmt: skip
CELLS = st.one_of(NASTY_CELLS, st.text(max_size=25))


def cleaned_partition(result: CleanResult, n: int) -> None:
    valid = result.valid["_row_number"].tolist()
    rejected = result.rejected["_row_number"].tolist()
    assert sorted(valid + rejected) == list(range(1, n + 1))
    for reason, reasons in zip(result.rejected["reason"], result.rejected["reasons"], strict=True):
        assert reasons, "a rejected row without a reason"
        assert all(part.startswith(REASON_PREFIXES) for part in reasons), reasons
        assert reason == "; ".join(reasons)


def assert_results_csv_is_formula_safe(result: CleanResult) -> None:
    buffer = io.StringIO()
    write_csv(pd.concat([result.rejected, result.valid], ignore_index=True), buffer)
    for row in csv.reader(io.StringIO(buffer.getvalue(), newline="")):
        for cell in row:
            assert not cell.startswith(FORMULA_PREFIXES), cell


def map_any(df: pd.DataFrame, mapping: str) -> pd.DataFrame:
    try:
        return apply_mapping(df, mapping)
    except ValueError as exc:
        # Refusing is legitimate (ambiguous headers, a preset matching no column): a usage
        # error with a message, after which the user gives a mapping.
        assert "--mapping" in str(exc) or "matches none of the export's columns" in str(exc)
        return apply_mapping(df, {str(df.columns[0]): "first_name"})


@st.composite
def exports(draw: st.DrawFn) -> dict[str, Any]:
    headers = [draw(IDENTITY_HEADERS), *draw(st.lists(OTHER_HEADERS, min_size=1, max_size=7))]
    rows = draw(
        st.lists(
            st.lists(CELLS, min_size=len(headers), max_size=len(headers)), min_size=0, max_size=12
        )
    )
    return {
        "headers": headers,
        "rows": rows,
        "encoding": draw(st.sampled_from(ENCODINGS)),
        "delimiter": draw(st.sampled_from([",", ";", "\t", "|"])),
        "quoting": draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        "lineterminator": draw(st.sampled_from(["\r\n", "\n"])),
        "mapping": draw(st.sampled_from(["auto", "hubspot", "salesforce", "lynkist"])),
    }


def render(export: dict[str, Any]) -> bytes:
    quoting = export["quoting"]
    if export["lineterminator"] == "\n" and any("\r" in c for r in export["rows"] for c in r):
        # csv.writer only quotes the characters of its own line terminator; a bare CR left
        # unquoted would be an ambiguous file that no CRM writes.
        quoting = csv.QUOTE_ALL
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=export["delimiter"],
        quoting=quoting,
        lineterminator=export["lineterminator"],
    )
    writer.writerow(export["headers"])
    writer.writerows(export["rows"])
    return buffer.getvalue().encode(export["encoding"], errors="replace")


@pytest.mark.filterwarnings("ignore::transforms.csv_io.DuplicateHeaderWarning")
@FUZZ
@given(exports())
def test_any_generated_export_keeps_every_row(export: dict[str, Any]) -> None:
    data = render(export)
    try:
        df = read_export(data)
    except NotTextError:
        # refused as binary only when it is mostly control bytes or full of different ones,
        # never for a stray NUL or escape code in a cell
        text = data.decode(export["encoding"], errors="replace")
        controls = [ch for ch in text if ch < " " and ch not in "\t\r\n\f"]
        share = len(controls) / len(text)
        assert share > 0.3 or (len(set(controls)) >= 16 and share > 0.05), text[:200]
        return
    n = len(export["rows"])
    assert len(df) == n
    assert df.attrs["delimiter"] == export["delimiter"]
    assert len(df.columns) == len(export["headers"])
    if export["encoding"] in LOSSLESS:
        assert [list(row) for row in df.itertuples(index=False)] == export["rows"]
    result = clean_contacts(map_any(df, export["mapping"]), default_region="US")
    cleaned_partition(result, n)
    assert_results_csv_is_formula_safe(result)


@pytest.mark.filterwarnings("ignore::transforms.csv_io.DuplicateHeaderWarning")
@FUZZ
@given(
    st.one_of(
        st.binary(max_size=600),
        st.text(max_size=400).map(lambda t: t.encode("utf-8")),
        st.text(max_size=200).map(lambda t: t.encode("utf-16")),
    ),
    st.sampled_from([None, "GB", "IN"]),
)
def test_arbitrary_bytes_never_crash_and_lose_nothing(data: bytes, region: str | None) -> None:
    try:
        df = read_export(data)
    except (EmptyExportError, NotTextError):
        return  # refused with a message: nothing is half-read
    columns = [c for c in df.columns if c != "_row_error"]
    targets = ["first_name", "phone", "email", "tags", "custom_fields", "full_name", "status"]
    mapping = dict(zip(columns, targets, strict=False))
    result = clean_contacts(apply_mapping(df, mapping), default_region=region)
    cleaned_partition(result, len(df))
    assert_results_csv_is_formula_safe(result)


@pytest.mark.parametrize("bom", [b"\xfe\xff", b"\xff\xfe", b"\xff\xfe\x00\x00"])
def test_a_damaged_file_behind_a_utf16_or_utf32_mark_is_refused_as_not_text(bom: bytes) -> None:
    # found by the fuzz test: an odd byte after a UTF-16 BOM escaped as a bare ValueError whose
    # message told the user to leave out an encoding they had not given
    with pytest.raises(NotTextError, match="damaged or cut short"):
        read_export(bom + b"\x00a\x00,\x00")
