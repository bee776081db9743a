"""``lynkist report``: PNG charts and a self-contained HTML page, checked in headless Chromium."""

from __future__ import annotations

import base64
import html
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import cast

import duckdb
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from pipelines.cli import main
from pipelines.report import (
    CHARTS,
    CHECK_COLOR,
    DUPLICATE_COLOR,
    WarehouseError,
    build_report,
    load_views,
    open_warehouse,
)
from tests.analysis_support import PUSH_SOURCE, DemoWarehouse, duckdb_warehouse  # noqa: F401
from transforms.views import ALL_VIEWS, PUSH_VIEWS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Appended to a copy of the page: once loaded, writes each image's decoded width into the DOM.
PROBE = (
    '<script>window.addEventListener("load", function () {'
    " var out = [];"
    ' document.querySelectorAll("img").forEach(function (i) {'
    '  out.push(i.alt + "=" + (i.complete ? i.naturalWidth : -1)); });'
    ' var pre = document.createElement("pre"); pre.id = "img-probe";'
    ' pre.textContent = out.join("|"); document.body.appendChild(pre); });</script>'
)


def png_width(data: bytes) -> int:
    assert data[:8] == PNG_MAGIC
    return int(struct.unpack(">I", data[16:20])[0])


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail(
        "headless Chromium is needed to check the HTML report: `make test` installs it "
        "(.ci/ensure-chromium), or run `apt-get install -y chromium` as root",
        pytrace=False,
    )


def image_widths_in_browser(page: Path, tmp_path: Path) -> dict[str, int]:
    """Open ``page`` in headless Chromium; return alt -> naturalWidth of every <img>."""
    probe = tmp_path / f"probe-{page.name}"
    probe.write_text(page.read_text("utf-8").replace("</body>", PROBE + "</body>"), "utf-8")
    proc = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r'<pre id="img-probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"Chromium did not render the page (exit {proc.returncode}): {proc.stderr[-800:]}"
    pairs = [item.rsplit("=", 1) for item in match.group(1).split("|") if item]
    return {alt: int(width) for alt, width in pairs}


@pytest.fixture(scope="module")
def warehouse(request: pytest.FixtureRequest) -> DemoWarehouse:
    return request.getfixturevalue("duckdb_warehouse")


@pytest.fixture(scope="module")
def report_dir(warehouse: DemoWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert warehouse.duckdb_path is not None
    result = build_report(warehouse.duckdb_path, out)
    assert result.html_path == out / "report.html"
    assert result.png_paths == [out / spec.filename for spec in CHARTS]
    return out


def test_report_writes_one_png_per_chart(report_dir: Path) -> None:
    assert sorted(p.name for p in report_dir.iterdir()) == sorted(
        [*(spec.filename for spec in CHARTS), "report.html"]
    )
    for spec in CHARTS:
        data = (report_dir / spec.filename).read_bytes()
        assert png_width(data) >= 600, spec.filename
        assert len(data) > 10_000, f"{spec.filename} looks empty"


def test_html_is_self_contained_with_titles_and_captions(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text("utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', page)
    assert [alt for _, alt in images] == [spec.title for spec in CHARTS]
    for (encoded, _), spec in zip(images, CHARTS, strict=True):
        assert base64.b64decode(encoded) == (report_dir / spec.filename).read_bytes()
        assert html.escape(spec.caption.replace("`", "")) in re.sub(r"</?code>", "", page)
    assert page.count("How to read it:") == len(CHARTS)
    assert page.count("<table") >= 4


def test_html_charts_render_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    widths = image_widths_in_browser(report_dir / "report.html", tmp_path)
    assert widths == {
        spec.title: png_width((report_dir / spec.filename).read_bytes()) for spec in CHARTS
    }

    # the probe tells a broken image apart: a truncated PNG decodes to width 0
    broken = tmp_path / "broken.html"
    page = (report_dir / "report.html").read_text("utf-8")
    broken.write_text(re.sub(r'base64,[^"]{200}', "base64,", page, count=1), "utf-8")
    assert 0 in image_widths_in_browser(broken, tmp_path).values()


def test_charts_have_titles_labelled_axes_and_the_views_numbers(
    warehouse: DemoWarehouse,
) -> None:
    assert warehouse.duckdb_path is not None
    con = open_warehouse(warehouse.duckdb_path)
    try:
        data = load_views(con)
    finally:
        con.close()
    for spec in CHARTS:
        fig = spec.draw(data)
        for ax in fig.axes:
            assert ax.get_ylabel(), spec.filename
        assert any(ax.get_title() for ax in fig.axes) or fig.get_suptitle(), spec.filename
        assert fig.axes[-1].get_xlabel(), spec.filename
        assert spec.caption.endswith("."), spec.filename

    funnel = next(s for s in CHARTS if s.filename == "status_funnel.png").draw(data)
    ax = funnel.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    widths = [bar.get_width() for bar in cast(BarContainer, ax.containers[0]).patches]
    bars = dict(zip(labels, widths, strict=True))
    live = warehouse.live
    assert bars["lead"] == sum(1 for c in live if c["status"] == "lead")
    assert sum(bars.values()) == len(live)


def test_report_without_views_or_pushes_reads_the_tables(
    warehouse: DemoWarehouse, tmp_path: Path
) -> None:
    """A warehouse synced before the views existed, never pushed to: still a full report."""
    assert warehouse.duckdb_path is not None
    copy = tmp_path / "old.duckdb"
    shutil.copy(warehouse.duckdb_path, copy)
    with duckdb.connect(str(copy)) as con:
        for name in reversed(ALL_VIEWS):
            con.execute(f"DROP VIEW IF EXISTS lynkist.{name}")
        con.execute("DROP TABLE lynkist.push_results")
    con = open_warehouse(copy)
    try:
        data = load_views(con)
    finally:
        con.close()
    assert not set(PUSH_VIEWS) & set(data)
    assert len(data["contacts_current"]) == len(warehouse.live)
    result = build_report(copy, tmp_path / "out")
    assert all(p.stat().st_size > 0 for p in result.png_paths)
    assert "push runs" in result.html_path.read_text("utf-8")


def test_cli_report(
    warehouse: DemoWarehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli-report"
    assert main(["report", "--duckdb", str(warehouse.duckdb_path), "--out", str(out)]) == 0
    assert str(out / "report.html") in capsys.readouterr().out.replace("\n", "")
    assert (out / "growth.png").read_bytes()[:8] == PNG_MAGIC

    missing = tmp_path / "nope.duckdb"
    assert main(["report", "--duckdb", str(missing), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "run `lynkist sync` first" in err and "Traceback" not in err


def test_report_on_a_warehouse_being_written(tmp_path: Path) -> None:
    """A sync holding the write lock in another process: a clear error, not a DuckDB trace."""
    db = tmp_path / "busy.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(db)!r}); "
            "c.execute('CREATE SCHEMA lynkist'); print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseError, match="is a sync running"):
            open_warehouse(db)
    finally:
        holder.communicate("", timeout=30)


def _drawn(fig: Figure) -> Figure:
    FigureCanvasAgg(fig).draw()  # lays out texts and legends: their extents become real
    return fig


def test_charts_are_readable_red_where_the_caption_says_and_legends_off_the_data(
    warehouse: DemoWarehouse,
) -> None:
    assert warehouse.duckdb_path is not None
    con = open_warehouse(warehouse.duckdb_path)
    try:
        data = load_views(con)
    finally:
        con.close()
    figures = {spec.filename: _drawn(spec.draw(data)) for spec in CHARTS}

    quality = figures["data_quality.png"].axes[0]
    labels = [t.get_text() for t in quality.get_yticklabels()]
    assert labels[0] == "Missing email and phone"
    assert not any("_" in label for label in labels), labels
    bars = cast(BarContainer, quality.containers[0]).patches
    for label, tick, bar in zip(labels, quality.get_yticklabels(), bars, strict=True):
        expected = DUPLICATE_COLOR if label.startswith("Duplicate") else CHECK_COLOR
        assert to_hex(bar.get_facecolor()) == expected, label
        assert to_hex(tick.get_color()) == expected, label
    caption = next(s.caption for s in CHARTS if s.filename == "data_quality.png")
    assert "the red ones, duplicate" in caption and DUPLICATE_COLOR == "#c62828"

    for name, fig in figures.items():
        for ax in fig.axes:
            # the tallest bar (or the longest, lying down) stays inside the frame
            for container in ax.containers:
                bars = cast(BarContainer, container)
                vertical = bars.orientation == "vertical"
                low, high = sorted(ax.get_ylim() if vertical else ax.get_xlim())
                for bar in bars.patches:
                    start = bar.get_y() if vertical else bar.get_x()
                    length = bar.get_height() if vertical else bar.get_width()
                    # the far end (from the baseline) short of the frame, up or down
                    assert low < start + length < high or length == 0, name
            legend = ax.get_legend()
            if legend is not None:
                box = legend.get_window_extent()
                for other in fig.axes:
                    assert not box.overlaps(other.get_window_extent()), f"{name}: legend on data"

    runs = figures["push_outcomes.png"].axes[0]
    assert any(PUSH_SOURCE in t.get_text() for t in runs.get_xticklabels())
