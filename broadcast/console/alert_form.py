"""The alert desk's forms (预警中心): the fields as typed and the API bodies they become.

Like the campaign editor, the form keeps what the officer typed (a refused form comes back as it
was) and becomes the body the API takes, so the service and its schema check it exactly once.
The message is either text for the offline engine or a recorded clip from the library; the text
typed before switching to a clip is kept on the form but not sent. Times are typed as the city's
wall clock and leave as UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import Depends, Form

from broadcast.alerts.models import Alert
from broadcast.console.campaign_form import LABELS as TARGET_LABELS
from broadcast.console.campaign_form import TargetForm, target_form
from broadcast.errors import Invalid

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
MESSAGE_KINDS = {"text": "文字播报（语音合成）", "clip": "录音素材"}
DEFAULT_VALIDITY = timedelta(hours=2)
LABELS = {
    **TARGET_LABELS,
    "request_key": "表单编号",
    "title": "标题",
    "text": "播报文本",
    "clip_id": "录音素材",
    "level": "预警级别",
    "category": "预警类别",
    "drill": "演练/真实预警",
    "repeat": "连续播放次数",
    "valid_until": "有效期至",
    "all_clear_text": "解除通知",
    "reach": "确认的终端数",
    "reason": "理由",
}


def local_text(value: datetime, tz: tzinfo) -> str:
    """A stored UTC time as a datetime-local field shows it."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(tz).strftime(LOCAL_FORMAT)


def utc_from_local(text: str, tz: tzinfo) -> datetime | None:
    """The officer's wall-clock time in UTC; None when left empty."""
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(
            f"有效期至“{text.strip()}”不是有效的时间：请用日期时间选择器，或写成 2026-07-01T18:00",
            details={"valid_until": text},
        ) from None
    return (value.replace(tzinfo=tz) if value.tzinfo is None else value).astimezone(UTC)


@dataclass(frozen=True)
class AlertForm:
    """The compose form as text. ``request_key`` is minted once per rendered form: a double
    submit, or a resubmit after an error, is the same draft."""

    request_key: str
    title: str = ""
    message: str = "text"
    text: str = ""
    clip_id: str = ""
    level: str = ""
    category: str = ""
    drill: str = ""
    target: TargetForm = field(default_factory=TargetForm)
    repeat: str = "2"
    valid_until: str = ""
    all_clear_text: str = ""

    @classmethod
    def fresh(cls, *, now: datetime, tz: tzinfo) -> AlertForm:
        return cls(request_key=uuid.uuid4().hex, valid_until=local_text(now + DEFAULT_VALIDITY, tz))

    def body(self, tz: tzinfo, *, clips_listed: Callable[[], bool]) -> dict[str, Any]:
        """The API's AlertCreate body; an unchosen level, category or drill flag stays missing.

        ``clips_listed`` says whether the form offered any clip (asked only when a clip alert came
        without one): without one, "choose a clip" could not be followed, so the officer is told
        why instead."""
        body: dict[str, Any] = {
            "request_key": self.request_key,
            "title": self.title,
            **self._message(clips_listed),
            "selector": self.target.selector(),
            "repeat": self.repeat,
            "all_clear_text": self.all_clear_text.strip() or None,
        }
        for name in ("level", "category", "drill"):
            if getattr(self, name):
                body[name] = getattr(self, name)
        valid_until = utc_from_local(self.valid_until, tz)
        if valid_until is not None:
            body["valid_until"] = valid_until
        return body

    def _message(self, clips_listed: Callable[[], bool]) -> dict[str, str]:
        if self.message == "text":
            return {"text": self.text}
        if self.message != "clip":
            raise Invalid(
                "播报方式只能选“{text}”或“{clip}”".format(**MESSAGE_KINDS), details={"message": self.message}
            )
        if self.clip_id:
            return {"clip_id": self.clip_id}
        if not clips_listed():
            raise Invalid(
                "素材库中还没有可播放的录音素材：请宣传人员先在素材库上传录音，或改用文字播报（语音合成）",
                details={"clip_id": None},
            )
        raise Invalid(
            "请选择要播放的录音素材：在列表中点选一段录音，或改用文字播报（语音合成）",
            details={"clip_id": None},
        )


def alert_form(
    target: Annotated[TargetForm, Depends(target_form)],
    request_key: Annotated[str, Form(max_length=200)] = "",
    title: Annotated[str, Form(max_length=2000)] = "",
    message: Annotated[str, Form(max_length=20)] = "text",
    text: Annotated[str, Form(max_length=50_000)] = "",
    clip_id: Annotated[str, Form(max_length=20)] = "",
    level: Annotated[str, Form(max_length=20)] = "",
    category: Annotated[str, Form(max_length=60)] = "",
    drill: Annotated[str, Form(max_length=20)] = "",
    repeat: Annotated[str, Form(max_length=20)] = "",
    valid_until: Annotated[str, Form(max_length=60)] = "",
    all_clear_text: Annotated[str, Form(max_length=20_000)] = "",
) -> AlertForm:
    return AlertForm(
        request_key=request_key,
        title=title,
        message=message,
        text=text,
        clip_id=clip_id.strip(),
        level=level,
        category=category,
        drill=drill,
        target=target,
        repeat=repeat,
        valid_until=valid_until,
        all_clear_text=all_clear_text,
    )


@dataclass(frozen=True)
class UpdateForm:
    """A sent alert's new title, text, level, repeat count or validity; only what differs from the
    alert is sent, and a field left empty stays as it was. A clip alert has no text to change."""

    title: str = ""
    text: str = ""
    level: str = ""
    repeat: str = ""
    valid_until: str = ""

    @classmethod
    def of(cls, alert: Alert, tz: tzinfo) -> UpdateForm:
        return cls(
            title=alert.title,
            text=alert.text or "",
            level=str(alert.level),
            repeat=str(alert.repeat),
            valid_until=local_text(alert.valid_until, tz),
        )

    def body(self, alert: Alert, tz: tzinfo) -> dict[str, Any]:
        """The API's AlertUpdateIn body: the changed fields (none at all is refused by the schema)."""
        body: dict[str, Any] = {}
        if self.title.strip() and self.title.strip() != alert.title:
            body["title"] = self.title
        if alert.text is not None and self.text.strip() != alert.text:
            body["text"] = self.text
        if self.level and self.level != str(alert.level):
            body["level"] = self.level
        if self.repeat.strip() and self.repeat.strip() != str(alert.repeat):
            body["repeat"] = self.repeat.strip()
        if self.valid_until.strip() and self.valid_until.strip() != local_text(alert.valid_until, tz):
            body["valid_until"] = utc_from_local(self.valid_until, tz)
        return body


def update_form(
    title: Annotated[str, Form(max_length=2000)] = "",
    text: Annotated[str, Form(max_length=50_000)] = "",
    level: Annotated[str, Form(max_length=20)] = "",
    repeat: Annotated[str, Form(max_length=20)] = "",
    valid_until: Annotated[str, Form(max_length=60)] = "",
) -> UpdateForm:
    return UpdateForm(title=title, text=text, level=level, repeat=repeat, valid_until=valid_until)
