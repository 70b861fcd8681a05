"""Response shapes of the play log and the reports (JSON; the CSV/XLSX exports flatten the rows)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class KeysetPage(BaseModel, Generic[T]):
    """One page in a stable order; pass ``next_cursor`` back as ``cursor`` for the next one."""

    total: int
    limit: int
    next_cursor: str | None
    items: list[T]


class PlayEventOut(BaseModel):
    id: int
    occurred_at: datetime
    received_at: datetime
    type: str
    type_label: str
    endpoint_code: str
    endpoint_name: str
    village_code: str | None
    village_name: str | None
    town_code: str | None
    town_name: str | None
    campaign_id: int | None
    campaign_name: str | None
    slot_id: int | None
    alert_id: int | None
    alert_title: str | None
    drill: bool
    position_ms: int | None
    reason: str | None


class SlotRowOut(BaseModel):
    """A planned slot and what became of it (``pending`` until the reconciliation judged it)."""

    slot_id: int
    starts_at: datetime
    ends_at: datetime
    endpoint_code: str
    endpoint_name: str
    village_code: str
    village_name: str
    town_code: str
    town_name: str
    campaign_id: int
    campaign_name: str
    status: str
    status_label: str
    cause: str | None
    cause_label: str | None
    offline_since: datetime | None
    started_at: datetime | None
    completed_at: datetime | None


class Counts(BaseModel):
    planned: int = 0
    played: int = 0
    partial: int = 0
    failed: int = 0
    missed: int = 0
    pending: int = 0
    played_pct: float | None = None  # of the judged slots (planned minus pending)


class CoverageRow(Counts):
    campaign_id: int
    campaign_name: str
    village_code: str
    village_name: str
    town_code: str
    town_name: str


class CampaignCoverage(Counts):
    campaign_id: int
    campaign_name: str


class CoverageReport(BaseModel):
    start: datetime
    end: datetime
    rows: list[CoverageRow]
    campaigns: list[CampaignCoverage]
    total: Counts


class DailyRow(Counts):
    day: date
    village_code: str
    village_name: str
    town_code: str
    town_name: str
    endpoints: int
    alerts_played: int  # live alerts completed (one per speaker and alert); drills never count here
    drills_played: int
    online_pct: float | None


class DailyReport(BaseModel):
    start: datetime
    end: datetime
    rows: list[DailyRow]


class AlertDeliveryRow(BaseModel):
    endpoint_code: str
    endpoint_name: str
    village_code: str
    village_name: str
    town_code: str
    town_name: str
    state: str
    state_label: str
    reached: bool
    online_at_send: bool
    endpoint_status: str
    sent_at: datetime
    delivered_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    delivered_after_s: float | None
    started_after_s: float | None


class AlertDeliveryReport(BaseModel):
    alert_id: int
    title: str
    level: int
    category: str
    drill: bool
    revision: int
    status: str
    sent_at: datetime | None
    endpoints: int
    delivered: int
    started: int
    completed: int
    never_reached: int
    delivered_median_s: float | None
    delivered_p95_s: float | None
    rows: list[AlertDeliveryRow]
    unreached: list[AlertDeliveryRow]


class AlertSummaryRow(BaseModel):
    alert_id: int
    title: str
    level: int
    category: str
    drill: bool
    status: str
    sent_at: datetime
    endpoints: int
    delivered: int
    completed: int
    never_reached: int


class AlertsReport(BaseModel):
    start: datetime
    end: datetime
    rows: list[AlertSummaryRow]


class HealthRow(BaseModel):
    endpoint_code: str
    endpoint_name: str
    village_code: str
    village_name: str
    town_code: str
    town_name: str
    status: str
    online_pct: float
    last_seen_at: datetime | None
    offline_since: datetime | None
    chronic: bool


class HealthReport(BaseModel):
    start: datetime
    end: datetime
    threshold_pct: float
    offline_days: int
    endpoints: int
    chronic: int
    online_pct: float | None  # mean over the listed endpoints
    rows: list[HealthRow]
