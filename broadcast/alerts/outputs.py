"""Alert rows as the API shows them: labels, the spoken text and people by name."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from broadcast.alerts.models import CATEGORY_LABELS, LEVEL_COLOURS, LEVEL_NAMES, STATUS_LABELS, Alert
from broadcast.alerts.program import Spoken
from broadcast.alerts.schemas import AlertDraftOut, AlertOut
from broadcast.alerts.service import needs_approval
from broadcast.auth.models import User
from broadcast.config import Settings
from broadcast.content.schemas import audio_url
from broadcast.targets.schemas import Selector, TargetPreview

_PEOPLE = ("created_by", "confirmed_by", "approved_by", "cancelled_by")


def _names(session: Session, alerts: Sequence[Alert]) -> dict[int, str]:
    ids = {getattr(alert, name) for alert in alerts for name in _PEOPLE} - {None}
    if not ids:
        return {}
    rows = session.exec(select(User.id, User.username).where(col(User.id).in_(ids))).all()
    return {user_id: username for user_id, username in rows if user_id is not None}


def _out(alert: Alert, names: dict[int, str], settings: Settings) -> AlertOut:
    def who(name: str) -> str | None:
        user_id = getattr(alert, name)
        return names.get(user_id) if user_id is not None else None

    return AlertOut(
        id=alert.id or 0,
        title=alert.title,
        text=alert.text,
        spoken=Spoken(alert.text, alert.drill).full if alert.text is not None else None,
        clip_id=alert.clip_id,
        level=alert.level,
        level_name=LEVEL_NAMES[alert.level],
        colour=LEVEL_COLOURS[alert.level],
        category=alert.category,
        category_name=CATEGORY_LABELS[alert.category],
        drill=alert.drill,
        selector=Selector.model_validate(alert.selector),
        repeat=alert.repeat,
        valid_until=alert.valid_until,
        status=alert.status,
        status_name=STATUS_LABELS[alert.status],
        revision=alert.revision,
        program_sha256=alert.program_sha256,
        program_duration_ms=alert.program_duration_ms,
        program_url=audio_url(alert.program_sha256),
        all_clear_text=alert.all_clear_text,
        all_clear_url=audio_url(alert.all_clear_sha256) if alert.all_clear_sha256 else None,
        reach=alert.reach,
        needs_approval=needs_approval(alert, settings),
        source=alert.source,
        cap_identifier=alert.cap_identifier,
        created_by=who("created_by"),
        confirmed_by=who("confirmed_by"),
        confirmed_at=alert.confirmed_at,
        approved_by=who("approved_by"),
        approved_at=alert.approved_at,
        break_glass_reason=alert.break_glass_reason,
        sent_at=alert.sent_at,
        cancelled_by=who("cancelled_by"),
        cancelled_at=alert.cancelled_at,
        cancel_reason=alert.cancel_reason,
        created_at=alert.created_at,
    )


def alert_out(session: Session, alert: Alert, settings: Settings) -> AlertOut:
    return _out(alert, _names(session, [alert]), settings)


def alert_outs(session: Session, alerts: Sequence[Alert], settings: Settings) -> list[AlertOut]:
    names = _names(session, alerts)
    return [_out(alert, names, settings) for alert in alerts]


def draft_out(session: Session, alert: Alert, preview: TargetPreview, settings: Settings) -> AlertDraftOut:
    return AlertDraftOut(**alert_out(session, alert, settings).model_dump(), preview=preview)
