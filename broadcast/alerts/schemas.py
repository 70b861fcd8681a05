"""Alert API shapes. Every limit here is one a duty officer can read in the error message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from broadcast.alerts.models import AlertCategory, AlertSource, AlertStatus, DeliveryState
from broadcast.targets.schemas import Selector, TargetPreview

MAX_TEXT = 1000
RequestKey = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
AllClearText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class AlertCreate(BaseModel):
    """A new alert. ``request_key`` is the form's own id: the same key from the same person is the
    same alert (a double click or a retry creates nothing twice)."""

    model_config = ConfigDict(extra="forbid")

    request_key: RequestKey = Field(description="客户端生成的唯一编号（如 uuid4），重复提交返回同一条预警")
    title: Title = Field(description="标题，如“山洪橙色预警”")
    text: Text | None = Field(default=None, description=f"播报文本（离线语音合成），至多 {MAX_TEXT} 字")
    clip_id: int | None = Field(default=None, ge=1, description="或：录音素材编号")
    level: int = Field(ge=1, le=4, description="预警级别：1=I级红色 … 4=IV级蓝色")
    category: AlertCategory
    drill: bool = Field(description="true=演练，false=真实预警；必须明确填写")
    selector: Selector
    repeat: int = Field(default=2, ge=1, le=10, description="连续播放次数")
    valid_until: AwareDatetime = Field(description="有效期至（带时区）")
    all_clear_text: AllClearText | None = Field(
        default=None, description="预置的解除通知；缺省时按标题自动生成"
    )

    @model_validator(mode="after")
    def _one_message(self) -> AlertCreate:
        if (self.text is None) == (self.clip_id is None):
            raise ValueError("请二选一：填写播报文本 text，或选择录音素材 clip_id")
        return self


class SendIn(BaseModel):
    """What the officer saw when confirming: refused if the alert would now reach something else."""

    model_config = ConfigDict(extra="forbid")

    reach: int = Field(ge=1, description="确认框中显示的终端数")
    drill: bool = Field(description="确认框中显示的演练/真实标记")


class BreakGlassIn(SendIn):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=500)] = Field(
        description="为何无法等待第二人审批（至少 10 个字，记入审计日志）"
    )


class AlertUpdateIn(BaseModel):
    """A new revision of a sent alert: devices stop the old one and play this."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    text: Text | None = None
    level: int | None = Field(default=None, ge=1, le=4)
    repeat: int | None = Field(default=None, ge=1, le=10)
    valid_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _something(self) -> AlertUpdateIn:
        if not self.model_fields_set:
            raise ValueError("更新内容为空：请至少修改标题、文本、级别、播放次数或有效期之一")
        return self


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="解除原因")
    all_clear: bool = Field(default=True, description="同时播发预置的解除通知")


class AlertOut(BaseModel):
    id: int
    title: str
    text: str | None
    spoken: str | None = Field(description="实际朗读的文字（演练含前后提示语）")
    clip_id: int | None
    level: int
    level_name: str
    colour: str
    category: AlertCategory
    category_name: str
    drill: bool
    selector: Selector
    repeat: int
    valid_until: datetime
    status: AlertStatus
    status_name: str
    revision: int
    program_sha256: str
    program_duration_ms: int
    program_url: str = Field(description="试听地址")
    all_clear_text: str | None
    all_clear_url: str | None
    reach: int | None
    needs_approval: bool
    source: AlertSource
    cap_identifier: str | None
    created_by: str | None
    confirmed_by: str | None
    confirmed_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    break_glass_reason: str | None
    sent_at: datetime | None
    cancelled_by: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    created_at: datetime


class AlertDraftOut(AlertOut):
    preview: TargetPreview = Field(description="将到达的终端：数量、在线数、乡镇与村分布")


class StateCounts(BaseModel):
    total: int = 0
    sent: int = 0
    delivered: int = 0
    playing: int = 0
    completed: int = 0
    interrupted: int = 0
    failed: int = 0
    offline: int = Field(default=0, description="尚未送达且终端当前离线")

    @property
    def reached(self) -> int:
        return self.total - self.sent - self.offline


class AreaCounts(BaseModel):
    code: str
    name: str
    counts: StateCounts


class Board(BaseModel):
    alert_id: int
    revision: int
    status: AlertStatus
    drill: bool
    sent_at: datetime | None
    totals: StateCounts
    towns: list[AreaCounts]
    villages: list[AreaCounts]
    first_delivered_s: float | None = Field(description="发出到第一个终端确认的秒数")
    last_delivered_s: float | None = Field(description="发出到最后一个终端确认的秒数")
    p50_delivered_s: float | None


class DeliveryOut(BaseModel):
    endpoint_code: str
    endpoint_name: str
    village_code: str
    village_name: str
    town_name: str
    state: DeliveryState
    shown_state: str = Field(description="看板上的状态：含“离线”")
    online_now: bool
    online_at_send: bool
    sent_at: datetime
    delivered_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    delivered_after_s: float | None
    started_after_s: float | None
    detail: str | None
