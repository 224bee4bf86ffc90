"""/api/v1/reports: the usage reports as JSON, for administrators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from moot.core import reports as pure
from moot.ems.deps import ReportsDep, require_admin
from moot.ems.errors import InvalidQuery
from moot.ems.store.reports import Reports

router = APIRouter(
    dependencies=[Depends(require_admin)], prefix="/api/v1/reports", tags=["reports"]
)


FromQuery = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=10,
        description="First day, YYYY-MM-DD, in `tz`; default 29 days before `to`",
    ),
]
ToQuery = Annotated[
    str | None,
    Query(max_length=10, description="Last day (included), YYYY-MM-DD; default today in `tz`"),
]
TzQuery = Annotated[
    str,
    Query(max_length=64, description="IANA time zone the days are counted in, e.g. Europe/Paris"),
]


class ReportKindOut(BaseModel):
    name: str
    title: str
    description: str


class ColumnOut(BaseModel):
    key: str
    label: str
    kind: str = Field(description="`day`, `text`, `number` or `time` (ISO 8601, local offset)")


class ReportOut(BaseModel):
    name: str
    title: str
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    tz: str
    columns: list[ColumnOut]
    rows: list[dict[str, int | float | str | None]]
    summary: list[dict[str, int | float | str | None]] = Field(
        description="Figures over the whole range (distinct people are not the rows' sum)"
    )


def report_range(from_: str | None, to: str | None, tz: str | None) -> pure.DateRange:
    """The range asked for, or InvalidQuery (422, naming the parameter)."""
    try:
        return pure.parse_range(from_, to, tz, datetime.now(UTC))
    except pure.RangeError as exc:
        raise InvalidQuery(exc.field, str(exc)) from None


async def build(reports: Reports, name: str, rng: pure.DateRange) -> pure.Report:
    """The report `name`, or 404 naming the reports there are."""
    if pure.kind_of(name) is None:
        raise HTTPException(
            404, f"no report named {name!r}; the reports are {', '.join(pure.REPORT_NAMES)}"
        )
    return await reports.build(name, rng, datetime.now(UTC))


def report_out(report: pure.Report) -> ReportOut:
    return ReportOut.model_validate(
        {
            "name": report.name,
            "title": report.title,
            "from": report.rng.first.isoformat(),
            "to": report.rng.last.isoformat(),
            "tz": report.rng.zone.key,
            "columns": [ColumnOut(key=c.key, label=c.label, kind=c.kind) for c in report.columns],
            "rows": report.rows,
            "summary": report.summary,
        }
    )


@router.get("", response_model=list[ReportKindOut])
async def list_reports() -> list[ReportKindOut]:
    """The reports there are."""
    return [
        ReportKindOut(name=r.name, title=r.title, description=r.description) for r in pure.REPORTS
    ]


@router.get(
    "/{name}",
    response_model=ReportOut,
    response_model_by_alias=True,
    responses={404: {"description": "No report of that name"}},
)
async def get_report(
    name: str, reports: ReportsDep, from_: FromQuery = None, to: ToQuery = None, tz: TzQuery = "UTC"
) -> ReportOut:
    """One report over the days `from` to `to` (both included) of the zone `tz`: a row per
    day (per server for `server_peaks`), and the whole range's figures in `summary`."""
    return report_out(await build(reports, name, report_range(from_, to, tz)))
