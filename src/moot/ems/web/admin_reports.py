"""/admin/reports: choose a report and its days, see the table and the chart, take the CSV.

The chart is an SVG that pygal draws on the server (no script: pygal's tooltip script from
a CDN is switched off), shown with `<img>` from this origin, which the pages' CSP allows
(`img-src 'self'`); the table under it is its text alternative. The form is a GET: it
changes nothing, so its address can be bookmarked and needs no CSRF token.
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from moot.core import reports as pure
from moot.ems.deps import ReportsDep
from moot.ems.web.admin_base import require_admin_page
from moot.ems.web.calendar import reader_zone
from moot.ems.web.meeting_form import COMMON_ZONES
from moot.ems.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_admin_page)])

Text = Annotated[str | None, Query(max_length=64)]


def _without_scripts(root: Any) -> Any:
    """pygal embeds its configuration for its tooltip script, as a <script>: drop it."""
    for parent in list(root.iter()):
        for child in list(parent):
            if str(child.tag).rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def _count_ticks(chart: pure.Chart | None) -> list[int]:
    """Whole numbers on the y axis (the charts count things), about eight of them."""
    if chart is None or not chart.series:
        return [0, 1]
    columns = zip(*(values for _, values in chart.series), strict=True)
    sums = [sum(c) for c in columns] if chart.kind == "stacked" else []
    top = max([*sums, *(v for _, values in chart.series for v in values), 1])
    step = max(1, math.ceil(top / 8))
    return list(range(0, math.ceil(top / step) * step + 1, step))


@cache
def _pygal() -> tuple[Any, Any]:
    """pygal and the charts' style, imported at the first chart: not at every EMS's
    start-up (most never draw one)."""
    import pygal
    from pygal.style import Style

    # pygal puts a finder with only the pre-3.4 import API (find_module, for its map
    # plugins, which Moot does not use) on sys.meta_path: Python then warns at every import
    # that fails after it (optional modules tried by other libraries). Take it out again.
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]
    return pygal, Style(
        background="#ffffff",
        plot_background="#ffffff",
        foreground="#1f2933",
        foreground_strong="#1f2933",
        foreground_subtle="#6b7280",
        font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        title_font_size=18,
        label_font_size=12,
        major_label_font_size=12,
        legend_font_size=13,
        colors=("#1d4ed8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c"),
    )


def chart_svg(report: pure.Report) -> bytes:
    """The report's chart as a standalone SVG document."""
    pygal, style = _pygal()
    chart = report.chart
    kind = chart.kind if chart else "bar"
    cls = {"line": pygal.Line, "bar": pygal.Bar, "stacked": pygal.StackedBar}[kind]
    labels = chart.labels if chart else []
    every = max(1, math.ceil(len(labels) / 14))  # about 14 day labels, however long the range
    graph = cls(
        js=[],  # no script from a CDN (and _without_scripts drops the inline one)
        style=style,
        width=960,
        height=400,
        title=f"{report.title}, {report.rng.first} to {report.rng.last} ({report.rng.zone.key})",
        y_title=chart.y_title if chart else "",
        legend_at_bottom=True,
        x_label_rotation=30 if len(labels) > 7 else 0,
        show_minor_x_labels=every == 1,
        x_labels_major_every=every,
        truncate_label=-1,
        show_dots=len(labels) <= 62,
        include_x_axis=True,  # counts start at 0
        min_scale=1,
        max_scale=8,
        no_data_text="Nothing in these days",
    )
    graph.x_labels = labels
    graph.y_labels = _count_ticks(chart)
    graph.add_xml_filter(_without_scripts)
    for name, values in chart.series if chart else []:
        graph.add(name, values)
    svg: bytes = graph.render()
    return svg


def _links(report: pure.Report) -> dict[str, str]:
    query = urlencode(
        {
            "from": report.rng.first.isoformat(),
            "to": report.rng.last.isoformat(),
            "tz": report.rng.zone.key,
        }
    )
    return {
        "csv": f"/admin/reports/{report.name}.csv?{query}",
        "svg": f"/admin/reports/{report.name}.svg?{query}",
        "json": f"/api/v1/reports/{report.name}?{query}",
    }


def _range_or_errors(
    from_: str | None, to: str | None, tz: str | None
) -> tuple[pure.DateRange | None, dict[str, str]]:
    try:
        return pure.parse_range(from_, to, tz, datetime.now(UTC)), {}
    except pure.RangeError as exc:
        return None, {exc.field: str(exc)}


@router.get("/admin/reports", response_class=HTMLResponse)
async def reports_page(
    request: Request,
    reports: ReportsDep,
    report: Annotated[str, Query(max_length=64)] = "logins",
    from_: Annotated[str | None, Query(alias="from", max_length=32)] = None,
    to: Annotated[str | None, Query(max_length=32)] = None,
    tz: Text = None,
) -> HTMLResponse:
    zone = tz if tz is not None else reader_zone(request, None).key
    errors: dict[str, str] = {}
    if pure.kind_of(report) is None:
        errors["report"] = f"there is no report named {report!r}: choose one from the list"
    rng, range_errors = _range_or_errors(from_, to, zone)
    errors.update(range_errors)
    built = None
    if rng is not None and not errors:
        built = await reports.build(report, rng, datetime.now(UTC))
    zones = list(COMMON_ZONES)
    if zone not in zones:
        zones.insert(0, zone)
    context: dict[str, Any] = {
        "admin_section": "reports",
        "kinds": pure.REPORTS,
        "chosen": report,
        "form": {
            "from": from_ or (rng.first.isoformat() if rng else ""),
            "to": to or (rng.last.isoformat() if rng else ""),
            "tz": zone,
        },
        "zones": zones,
        "errors": errors,
        "report": built,
        "links": _links(built) if built else {},
    }
    return templates.TemplateResponse(
        request, "admin/reports.html", context, status_code=422 if errors else 200
    )


async def _report_or_problem(
    reports: ReportsDep, name: str, from_: str | None, to: str | None, tz: str | None
) -> pure.Report | PlainTextResponse:
    rng, errors = _range_or_errors(from_, to, tz)
    if rng is None:
        field, message = next(iter(errors.items()))
        return PlainTextResponse(f"{field}: {message}", status_code=422)
    if pure.kind_of(name) is None:
        return PlainTextResponse(f"there is no report named {name!r}", status_code=404)
    return await reports.build(name, rng, datetime.now(UTC))


@router.get("/admin/reports/{name}.csv", response_model=None)
async def report_csv(
    name: str,
    reports: ReportsDep,
    from_: Annotated[str | None, Query(alias="from", max_length=32)] = None,
    to: Annotated[str | None, Query(max_length=32)] = None,
    tz: Text = "UTC",
) -> Response:
    """The report's rows as CSV (UTF-8, a header of column keys), to download."""
    report = await _report_or_problem(reports, name, from_, to, tz)
    if isinstance(report, Response):
        return report
    return Response(
        pure.csv_text(report).encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{pure.csv_filename(report)}"'},
    )


@router.get("/admin/reports/{name}.svg", response_model=None)
async def report_svg(
    name: str,
    reports: ReportsDep,
    from_: Annotated[str | None, Query(alias="from", max_length=32)] = None,
    to: Annotated[str | None, Query(max_length=32)] = None,
    tz: Text = "UTC",
) -> Response:
    """The report's chart (SVG, no script)."""
    report = await _report_or_problem(reports, name, from_, to, tz)
    if isinstance(report, Response):
        return report
    return Response(
        chart_svg(report),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=60"},
    )
