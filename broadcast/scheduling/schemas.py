"""API shapes for campaigns (宣传计划), quiet hours (静默时段) and the conflict report.

A campaign's recurrence arrives either as a preset ("daily at 06:40, 12:10 and 18:20") or as raw
RFC 5545 parts; both are stored as RFC 5545 (DTSTART, RRULE, RDATE, EXDATE). Times of day, windows
and datetimes are checked by the pure scheduling core, whose Chinese messages become 422s.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from broadcast.scheduling.models import CampaignStatus
from broadcast.targets.schemas import Selector

DEFAULT_WINDOWS = ("06:30-07:30", "12:00-12:30", "18:00-19:00")
MAX_DATES = 1000
Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
HourMinute = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]

STATUS_NAMES = {
    CampaignStatus.draft: "草稿",
    CampaignStatus.submitted: "待审批",
    CampaignStatus.approved: "已批准",
    CampaignStatus.active: "播出中",
    CampaignStatus.paused: "已暂停",
    CampaignStatus.ended: "已结束",
}


class SeasonIn(BaseModel):
    """First and last local date, both inclusive (checked by the core: last must not precede first)."""

    model_config = ConfigDict(extra="forbid")

    first: dt.date
    last: dt.date


class RecurrenceIn(BaseModel):
    """EITHER a preset (``preset`` + ``times``, with ``n`` or ``dates``) OR raw RFC 5545 (``dtstart`` ...)."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["daily", "weekdays", "every_n_days", "dates"] | None = Field(
        default=None, description="每天 / 工作日 / 每 N 天 / 指定日期"
    )
    times: list[str] = Field(default_factory=list, max_length=48, description="播出时间 HH:MM（预设用）")
    n: int | None = Field(default=None, ge=1, le=366, description="每 N 天（every_n_days 用）")
    dates: list[dt.date] = Field(
        default_factory=list, max_length=MAX_DATES, description="指定日期（dates 用）"
    )
    dtstart: dt.datetime | None = Field(default=None, description="RFC 5545 DTSTART，须带时区")
    rrule: str | None = Field(
        default=None, max_length=500, description="RFC 5545 RRULE，如 FREQ=DAILY;BYHOUR=6"
    )
    rdates: list[dt.datetime] = Field(default_factory=list, max_length=MAX_DATES)
    exdates: list[dt.datetime] = Field(default_factory=list, max_length=MAX_DATES)

    @model_validator(mode="after")
    def _one_form(self) -> RecurrenceIn:
        raw = self.dtstart is not None or self.rrule is not None or self.rdates or self.exdates
        if self.preset is None:
            if self.dtstart is None:
                raise ValueError("重复规则需要 preset（预设）或 dtstart（RFC 5545），二者选一")
            if self.times or self.n is not None or self.dates:
                raise ValueError(
                    "times、n、dates 只用于预设（preset），RFC 5545 写法请用 dtstart/rrule/rdates"
                )
            return self
        if raw:
            raise ValueError("预设（preset）不能同时带 dtstart、rrule、rdates 或 exdates，二者选一")
        if not self.times:
            raise ValueError('预设需要至少一个播出时间 times，例如 ["06:40"]')
        if (self.preset == "every_n_days") != (self.n is not None):
            raise ValueError("n（间隔天数）只用于且必须用于 every_n_days 预设")
        if (self.preset == "dates") != bool(self.dates):
            raise ValueError("dates（日期列表）只用于且必须用于 dates 预设")
        return self


class _CampaignFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("field_values", check_fields=False)
    @classmethod
    def _field_sizes(cls, values: dict[str, str] | None) -> dict[str, str] | None:
        for key, value in (values or {}).items():
            if not key.isidentifier() or len(key) > 64 or len(value) > 200:
                raise ValueError(f"自定义字段 {key[:64]!r} 无效：名称须为字母/数字/下划线，值不超过 200 字")
        return values


class CampaignCreate(_CampaignFields):
    key: Key | None = Field(default=None, description="稳定标识（小写字母、数字、连字符）；不填则自动生成")
    name: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=1000)
    playlist_id: int = Field(ge=1)
    revision: int | None = Field(default=None, ge=1, description="节目单版本号；默认当前最新版")
    selector: Selector
    season: SeasonIn | None = Field(default=None, description="季节；dates 预设可不填（取首末日期）")
    recurrence: RecurrenceIn
    windows: list[str] = Field(default_factory=lambda: list(DEFAULT_WINDOWS), min_length=1, max_length=12)
    priority: int = Field(default=5, ge=1, le=9, description="1-9，5 为普通，越大越优先")
    max_plays_per_day: int = Field(default=3, ge=1, le=48)
    exception_dates: list[dt.date] = Field(
        default_factory=list, max_length=MAX_DATES, description="例外日，不播"
    )
    field_values: dict[str, str] = Field(
        default_factory=dict, max_length=50, description="文字稿自定义字段的值"
    )


class CampaignUpdate(_CampaignFields):
    """Only the fields sent change; ``recurrence`` and ``season`` are replaced whole."""

    name: str | None = Field(default=None, min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=1000)
    playlist_id: int | None = Field(default=None, ge=1)
    revision: int | None = Field(default=None, ge=1)
    selector: Selector | None = None
    season: SeasonIn | None = None
    recurrence: RecurrenceIn | None = None
    windows: list[str] | None = Field(default=None, min_length=1, max_length=12)
    priority: int | None = Field(default=None, ge=1, le=9)
    max_plays_per_day: int | None = Field(default=None, ge=1, le=48)
    exception_dates: list[dt.date] | None = Field(default=None, max_length=MAX_DATES)
    field_values: dict[str, str] | None = Field(default=None, max_length=50)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="退回原因")


class RecurrenceOut(BaseModel):
    dtstart: dt.datetime = Field(description="本地时间（带时区）")
    rrule: str | None
    rdates: list[str]
    exdates: list[str]
    text: str = Field(description="中文描述，如“每天 06:40、12:10、18:20”")


class CampaignOut(BaseModel):
    id: int
    key: str
    name: str
    description: str
    playlist_id: int
    playlist_name: str
    revision_id: int
    revision: int
    selector: Selector
    endpoints: int | None = Field(description="当前选择范围覆盖的终端数；范围无法求值时为空")
    target_problem: str | None = Field(default=None, description="范围无法求值的原因")
    season: SeasonIn
    recurrence: RecurrenceOut
    windows: list[str]
    priority: int
    max_plays_per_day: int
    exception_dates: list[dt.date]
    field_values: dict[str, str]
    status: CampaignStatus
    status_name: str
    version: int
    created_by: int | None
    created_by_name: str | None
    submitted_by_name: str | None
    submitted_at: dt.datetime | None
    approved_by_name: str | None
    approved_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CollisionOut(BaseModel):
    """Another campaign whose wanted slots overlap this one's on shared endpoints."""

    campaign_id: int
    key: str
    name: str
    priority: int
    status: CampaignStatus
    endpoints: int = Field(description="发生冲突的终端数")
    times: list[str] = Field(description="冲突的本地时刻 HH:MM")
    first_day: dt.date
    last_day: dt.date
    days: int = Field(description="检查范围内发生冲突的天数")
    message: str


class ConflictReport(BaseModel):
    """Which other campaigns collide; a warning only, never a refusal."""

    campaign_id: int
    checked_days: int = Field(description="对每个重叠的季节，只检查其前若干天")
    note: str
    collisions: list[CollisionOut]


class SubmitOut(BaseModel):
    campaign: CampaignOut
    conflicts: ConflictReport


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: HourMinute = Field(description="开始 HH:MM（本地时间）")
    end: HourMinute = Field(description="结束 HH:MM；早于开始表示跨越午夜")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursIn:
        if self.start == self.end:
            raise ValueError("静默时段的开始和结束不能相同，例如 22:00 至 06:00")
        return self


class VillageQuietHoursOut(BaseModel):
    village_code: str
    village_name: str
    town_code: str
    start: str
    end: str
    updated_at: dt.datetime


class QuietHoursOverview(BaseModel):
    city: str = Field(description="全市默认静默时段，如 22:00-06:00")
    villages: list[VillageQuietHoursOut] = Field(description="单独设置了静默时段的村（社区）")
