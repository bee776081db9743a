"""Charts and a self-contained HTML report over the warehouse's analysis views.

Reads the views of :mod:`transforms.views` from the warehouse (a DuckDB file read-only, or any
dlt SQL destination: :func:`pipelines.warehouse.reads.open_for_reads`). When a view is missing
(a warehouse synced before the views existed, or a push made after the last sync) its
definition is inlined as a CTE, so the report never needs write access.

Every chart is a function ``data -> matplotlib Figure`` listed in ``CHARTS`` together with its
file name, title and a one-sentence caption on how to read it; the notebook reuses them. Figures
are built with ``matplotlib.figure.Figure`` (no pyplot), so nothing depends on, or changes, the
global matplotlib backend.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from pipelines.warehouse import (
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    Warehouse,
    WarehouseError,
    WarehouseNotFoundError,
)
from pipelines.warehouse.reads import WarehouseReader, open_for_reads
from transforms.views import ALL_VIEWS, view_definitions

OUTCOME_COLORS: dict[str, str] = {
    "created": "#2e7d32",
    "updated": "#1565c0",
    "unchanged": "#9e9e9e",
    "rejected": "#ef6c00",
    "failed": "#c62828",
}
#: Views with one row per contact (or per contact and problem): big on big warehouses.
DETAIL_VIEWS = frozenset({"contacts_all", "contacts_current", "contacts_data_quality_issues"})
TOP_TAGS = 15
LAST_RUNS = 10
#: Duplicate checks (ambiguous push matches) are drawn in this red, the other checks in orange.
DUPLICATE_COLOR = "#c62828"
CHECK_COLOR = "#ef6c00"
#: Headroom above the tallest bar, as a share of the axis: bars never touch the frame.
HEADROOM = 0.12
#: Readable names of the data-quality checks (``contacts_data_quality.issue``).
CHECK_LABELS: dict[str, str] = {
    "missing_email_and_phone": "Missing email and phone",
    "missing_email": "Missing email",
    "missing_phone": "Missing phone",
    "phone_not_e164": "Phone not in E.164 form",
    "duplicate_email": "Duplicate email",
    "duplicate_phone": "Duplicate phone",
}


def check_label(issue: str) -> str:
    """The readable name of a data-quality check; an unknown one is de-snake-cased."""
    return CHECK_LABELS.get(issue, issue.replace("_", " ").capitalize())


def _legend_outside(ax: Any, **kwargs: Any) -> None:
    """A legend to the right of the axes, where it can never cover a bar or a line."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, **kwargs)


def open_warehouse(
    path: str | Path = DEFAULT_DUCKDB_FILE,
    dataset: str = DEFAULT_DATASET,
    *,
    destination: str = "duckdb",
) -> WarehouseReader:
    """Open a warehouse for reading (a DuckDB file read-only).

    Args:
        path: The DuckDB file written by ``lynkist sync`` (destination ``duckdb``).
        dataset: The dlt dataset (schema) name.
        destination: dlt destination name; e.g. ``postgres`` with dlt's credentials config.

    Returns:
        An open reader; close it when done.

    Raises:
        WarehouseNotFoundError: When the file or the dataset does not exist.
        WarehouseError: When the warehouse cannot be opened (e.g. a sync holds the DuckDB file).
    """
    return open_for_reads(Warehouse(destination=destination, duckdb_path=path, dataset=dataset))


def load_views(con: WarehouseReader, *, detail_rows: int | None = None) -> dict[str, pd.DataFrame]:
    """Read every analysis view that the warehouse can provide into DataFrames.

    Args:
        con: A reader from :func:`open_warehouse`.
        detail_rows: Read at most this many rows of the one-row-per-contact views
            (``DETAIL_VIEWS``); None reads them whole. The charts need none of them.

    Returns:
        View name -> its rows; the ``push_*`` views are absent when nothing was pushed yet.

    Raises:
        WarehouseNotFoundError: When the warehouse has no ``contacts`` table.
    """
    tables, views = con.tables()
    if "contacts" not in tables:
        raise WarehouseNotFoundError("the warehouse holds no contacts yet: run `lynkist sync`")
    definitions = view_definitions(con.dialect, tables)
    frames: dict[str, pd.DataFrame] = {}
    for position, (name, _) in enumerate(definitions):
        if name in views:
            query = f"SELECT * FROM {name}"
        else:
            ctes = ",\n".join(f"{n} AS (\n{s}\n)" for n, s in definitions[: position + 1])
            query = f"WITH {ctes}\nSELECT * FROM {name}"
        if detail_rows is not None and name in DETAIL_VIEWS:
            query += f"\nLIMIT {int(detail_rows)}"
        frames[name] = con.frame(query)
    if "push_history" in frames and "source" in tables.get("push_results", {}):
        # what each run pushed (the export's file name), for the chart's labels
        sources = con.frame(
            "SELECT run_id, MAX(source) AS source FROM push_results GROUP BY run_id"
        )
        frames["push_history"] = frames["push_history"].merge(sources, on="run_id", how="left")
    return frames


def _no_data(ax: object, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#555")  # type: ignore[attr-defined]


def growth_chart(data: Mapping[str, pd.DataFrame]) -> Figure:
    """Live contacts over time (line) above contacts created and archived per week (bars)."""
    growth = data["contacts_growth"]
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    fig.suptitle("Contact growth")
    daily = growth[growth["grain"] == "day"].sort_values("period_start")
    weekly = growth[growth["grain"] == "week"].sort_values("period_start")
    if daily.empty:
        _no_data(top, "no contacts synced yet")
    dates = pd.to_datetime(daily["period_start"])
    top.step(dates, daily["live_total"], where="post", color="#1565c0")
    top.set_ylabel("Live contacts")
    top.set_title("Live contacts at the end of each day (UTC)", fontsize=10)
    weeks = pd.to_datetime(weekly["period_start"])
    bottom.bar(weeks, weekly["created"], width=6, align="edge", color="#2e7d32", label="created")
    bottom.bar(weeks, -weekly["archived"], width=6, align="edge", color="#c62828", label="archived")
    bottom.axhline(0, color="#333", linewidth=0.8)
    bottom.set_ylabel("Contacts per week")
    bottom.set_xlabel("Date (UTC); bars start on Monday")
    bottom.margins(y=HEADROOM)
    top.margins(y=HEADROOM)
    _legend_outside(bottom)
    return fig


def status_funnel_chart(data: Mapping[str, pd.DataFrame]) -> Figure:
    """Live contacts per status, funnel order top to bottom."""
    funnel = data["contacts_status_funnel"].sort_values(
        ["stage_order", "contacts"], ascending=[True, False]
    )
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.set_title("Status funnel (live contacts)")
    ax.barh(funnel["status"], funnel["contacts"], color="#1565c0")
    for y, (count, pct) in enumerate(zip(funnel["contacts"], funnel["pct_of_live"], strict=True)):
        ax.annotate(f" {count} ({float(pct):.1f}%)", (count, y), va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Live contacts")
    ax.set_ylabel("Status")
    ax.margins(x=0.15)
    if funnel.empty:
        _no_data(ax, "no live contacts")
    return fig


def top_tags_chart(data: Mapping[str, pd.DataFrame]) -> Figure:
    """The most used tags among live contacts."""
    tags = data["contacts_tag_counts"].sort_values(["contacts", "tag"], ascending=[False, True])
    tags = tags.head(TOP_TAGS)
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    ax.set_title(f"Top {TOP_TAGS} tags (live contacts)")
    ax.barh(tags["tag"], tags["contacts"], color="#6a1b9a")
    ax.invert_yaxis()
    ax.set_xlabel("Live contacts with the tag")
    ax.set_ylabel("Tag")
    if tags.empty:
        _no_data(ax, "no tags on live contacts")
    return fig


def data_quality_chart(data: Mapping[str, pd.DataFrame]) -> Figure:
    """Live contacts failing each data-quality check."""
    checks = data["contacts_data_quality"].sort_values("check_order")
    fig = Figure(figsize=(9.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.set_title("Data quality (live contacts)")
    duplicate = [issue.startswith("duplicate") for issue in checks["issue"]]
    colors = [DUPLICATE_COLOR if dup else CHECK_COLOR for dup in duplicate]
    labels = [check_label(issue) for issue in checks["issue"]]
    ax.barh(labels, checks["contacts"], color=colors)
    # a duplicate check with no contact has no bar to be red: its label and count are red too
    for y, (count, color) in enumerate(zip(checks["contacts"], colors, strict=True)):
        ax.annotate(f" {count}", (count, y), va="center", fontsize=8, color=color)
    for tick, color in zip(ax.get_yticklabels(), colors, strict=True):
        tick.set_color(color)
    ax.invert_yaxis()
    ax.set_xlabel("Live contacts affected")
    ax.set_ylabel("Check")
    ax.margins(x=HEADROOM)
    _legend_outside(
        ax,
        handles=[
            Patch(color=DUPLICATE_COLOR, label="duplicate: ambiguous push match"),
            Patch(color=CHECK_COLOR, label="missing or malformed"),
        ],
    )
    return fig


def push_outcomes_chart(data: Mapping[str, pd.DataFrame]) -> Figure:
    """Rows of the most recent push runs, stacked by outcome."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.set_title(f"Push outcomes (last {LAST_RUNS} runs)")
    ax.set_xlabel("Push run (file pushed, start time UTC)")
    ax.set_ylabel("Input rows")
    history = data.get("push_history")
    if history is None or history.empty:
        ax.set_xticks([])
        _no_data(ax, "no push recorded yet: run `lynkist push FILE`")
        return fig
    runs = history.sort_values("started_at").tail(LAST_RUNS)
    sources = runs["source"] if "source" in runs else pd.Series(None, index=runs.index)
    labels = [
        _run_label(t, r, s)
        for t, r, s in zip(runs["started_at"], runs["run_id"], sources, strict=True)
    ]
    bottom = pd.Series(0, index=runs.index)
    for outcome, color in OUTCOME_COLORS.items():
        ax.bar(labels, runs[outcome], bottom=bottom, color=color, label=outcome, width=0.6)
        bottom = bottom + runs[outcome]
    ax.set_ylim(0, max(float(bottom.max()), 1.0) * (1 + HEADROOM))
    _legend_outside(ax, title="outcome")
    # a few runs: keep the columns narrow and centred rather than a wall of colour
    pad = max(0, 5 - len(runs)) / 2
    ax.set_xlim(-0.5 - pad, len(runs) - 0.5 + pad)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return fig


def _run_label(started_at: Any, run_id: str, source: Any) -> str:
    """A push run's column label: the file it pushed over its start time (UTC)."""
    when = (
        pd.Timestamp(started_at).tz_convert("UTC").strftime("%m-%d %H:%M:%S")
        if pd.notna(started_at)
        else str(run_id)
    )
    if isinstance(source, str) and source:
        name = source if len(source) <= 28 else source[:27] + "…"
        # the same file pushed twice gives two columns: the time tells them apart
        return f"{name}\n{when}"
    return when


@dataclass(frozen=True)
class ChartSpec:
    """One chart of the report: how to draw it and how to read it."""

    filename: str
    title: str
    caption: str
    draw: Callable[[Mapping[str, pd.DataFrame]], Figure]
    table: Callable[[Mapping[str, pd.DataFrame]], pd.DataFrame | None] = field(
        default=lambda data: None
    )


def _growth_table(data: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    growth = data["contacts_growth"]
    weekly = growth[growth["grain"] == "week"].sort_values("period_start").tail(8)
    return weekly.drop(columns=["grain"]).rename(columns={"period_start": "week_starting"})


def _push_table(data: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
    history = data.get("push_history")
    if history is None:
        return None
    columns = ["run_id", "started_at", "rows", *OUTCOME_COLORS, "top_error"]
    if "source" in history:
        columns.insert(1, "source")
    return history.sort_values("started_at").tail(LAST_RUNS)[columns]


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec(
        "growth.png",
        "Contact growth",
        "The top line is the number of live contacts at the end of each day; the bars below show "
        "contacts created (green, up) and archived (red, down) per week.",
        growth_chart,
        _growth_table,
    ),
    ChartSpec(
        "status_funnel.png",
        "Status funnel",
        "Each bar counts live contacts with that status, from lead through active to customer "
        "(other statuses below); the label gives the share of all live contacts.",
        status_funnel_chart,
        lambda data: data["contacts_status_funnel"].sort_values(["stage_order", "status"]),
    ),
    ChartSpec(
        "top_tags.png",
        "Top tags",
        "Longer bars are tags carried by more live contacts; a contact with several tags is "
        "counted once under each of them.",
        top_tags_chart,
        lambda data: (
            data["contacts_tag_counts"]
            .sort_values(["contacts", "tag"], ascending=[False, True])
            .head(10)
        ),
    ),
    ChartSpec(
        "data_quality.png",
        "Data quality",
        "Each bar counts live contacts failing a check; the red ones, duplicate emails and "
        "phones, are the contacts that would make a push matched on email or phone ambiguous, "
        "so fix those first.",
        data_quality_chart,
        lambda data: (
            data["contacts_data_quality"].sort_values("check_order").drop(columns=["check_order"])
        ),
    ),
    ChartSpec(
        "push_outcomes.png",
        "Push outcomes",
        "Each column is one `lynkist push` run, labelled with the file it pushed, its height "
        "the rows in that file, coloured by what happened to them; orange and red parts need "
        "attention.",
        push_outcomes_chart,
        _push_table,
    ),
)


@dataclass
class RenderedChart:
    """A chart drawn to PNG, with its texts."""

    spec: ChartSpec
    png: bytes
    table: pd.DataFrame | None


@dataclass
class ReportResult:
    """Where ``build_report`` wrote its files."""

    html_path: Path
    png_paths: list[Path]


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """Render a figure to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def render_charts(data: Mapping[str, pd.DataFrame]) -> list[RenderedChart]:
    """Draw every chart of ``CHARTS`` from the views' data."""
    return [RenderedChart(spec, figure_png(spec.draw(data)), spec.table(data)) for spec in CHARTS]


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1000px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
section { border-top: 1px solid #ddd; padding-top: 1rem; margin-top: 1.5rem; }
img { max-width: 100%; height: auto; display: block; }
.how { background: #f5f7fb; border-left: 4px solid #1565c0; padding: 0.5rem 0.8rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin-top: 0.8rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f0f0f0; }
.kpis { display: flex; gap: 1rem; flex-wrap: wrap; }
.kpi { border: 1px solid #ddd; border-radius: 6px; padding: 0.5rem 1rem; }
.kpi b { display: block; font-size: 1.4rem; }
code { background: #eef; padding: 0 0.2rem; border-radius: 3px; }
"""


def _caption_html(caption: str) -> str:
    """Escape a caption; `backticked` words become <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(caption))


def _kpis(data: Mapping[str, pd.DataFrame]) -> list[tuple[str, int]]:
    quality = data["contacts_data_quality"].set_index("issue")["contacts"]
    summary = data["contacts_summary"].iloc[0]
    kpis = [
        ("live contacts", int(summary["live_contacts"])),
        ("archived", int(summary["archived_contacts"])),
    ]
    kpis += [
        (f"{name.replace('_', ' ')}", int(quality.get(name, 0)))
        for name in ("duplicate_email", "duplicate_phone")
    ]
    history = data.get("push_history")
    kpis.append(("push runs", 0 if history is None else len(history)))
    return kpis


def render_html(
    charts: list[RenderedChart], data: Mapping[str, pd.DataFrame], *, source: str
) -> str:
    """Build the self-contained report page (inline CSS, PNGs as data URIs, no scripts).

    Args:
        charts: The rendered charts.
        data: The views' data (for the headline numbers).
        source: What to name as the data source (the warehouse file name).

    Returns:
        The HTML text.
    """
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Lynkist contacts report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Lynkist contacts report</h1>",
        f'<p class="meta">Warehouse {html.escape(source)} · generated {generated}</p>',
        '<div class="kpis">',
        *(
            f'<div class="kpi"><b>{value}</b>{html.escape(label)}</div>'
            for label, value in _kpis(data)
        ),
        "</div>",
    ]
    for chart in charts:
        encoded = base64.b64encode(chart.png).decode("ascii")
        stem = Path(chart.spec.filename).stem
        parts += [
            f'<section id="{stem}"><h2>{html.escape(chart.spec.title)}</h2>',
            f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(chart.spec.title)}">',
            f'<p class="how"><b>How to read it:</b> {_caption_html(chart.spec.caption)}</p>',
        ]
        if chart.table is not None and not chart.table.empty:
            parts.append(chart.table.to_html(index=False, border=0, na_rep=""))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _source_label(warehouse: Warehouse) -> str:
    return warehouse.duckdb_file.name if warehouse.is_duckdb else warehouse.describe()


def build_report(
    duckdb_path: str | Path = DEFAULT_DUCKDB_FILE,
    out_dir: str | Path = "report",
    *,
    dataset: str = DEFAULT_DATASET,
    destination: str = "duckdb",
) -> ReportResult:
    """Write every chart as a PNG plus ``report.html`` (self-contained) into ``out_dir``.

    Args:
        duckdb_path: The warehouse written by ``lynkist sync``.
        out_dir: Output directory, created when missing.
        dataset: The dlt dataset (schema) name.
        destination: dlt destination name (``duckdb`` reads ``duckdb_path``).

    Returns:
        The paths written.

    Raises:
        WarehouseNotFoundError: When there is no warehouse or no synced contacts in it.
    """
    con = open_warehouse(duckdb_path, dataset, destination=destination)
    try:
        data = load_views(con, detail_rows=0)
    finally:
        con.close()
    charts = render_charts(data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png_paths = []
    for chart in charts:
        path = out / chart.spec.filename
        path.write_bytes(chart.png)
        png_paths.append(path)
    html_path = out / "report.html"
    html_path.write_text(render_html(charts, data, source=_source_label(con.warehouse)), "utf-8")
    return ReportResult(html_path=html_path, png_paths=png_paths)


__all__ = [
    "ALL_VIEWS",
    "CHARTS",
    "ChartSpec",
    "ReportResult",
    "WarehouseError",
    "WarehouseNotFoundError",
    "build_report",
    "figure_png",
    "load_views",
    "open_warehouse",
    "render_charts",
    "render_html",
]
