"""The alert lifecycle: draft → (confirm) → (approve | break glass) → active → update / cancel / expire.

Safeguards, each learnt from real false alarms:

- a live alert leaves only after a confirmation that names the reach and the drill flag the
  officer saw; if either changed since, the send is refused (409) with the current figures;
- levels in ``settings.alert_approval_levels`` (I and II by default) need a second duty officer
  or an admin; the one who drafted or confirmed cannot approve; one person alone can only *break
  the glass*, with a written reason that goes to the audit log;
- a drill says so in its audio (``program.DRILL_OPENING``), in every message (``drill``), in the
  console and in the logs, and is never counted as live;
- repeats are harmless: the same ``request_key`` is the same draft, a second send of a sent
  alert changes nothing, devices play each (alert, revision) once.

Sending commits the alert, one delivery row per endpoint and the signed push (outbox) in one
transaction; the outbox relay publishes after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broadcast.alerts import delivery, program
from broadcast.alerts.models import (
    STATUS_LABELS,
    Alert,
    AlertDelivery,
    AlertSource,
    AlertStatus,
    DeliveryState,
)
from broadcast.alerts.schemas import AlertCreate, AlertUpdateIn, BreakGlassIn, CancelIn, SendIn
from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.auth.models import User
from broadcast.config import Settings
from broadcast.content.models import AudioBlob, Clip
from broadcast.content.store import AudioStore
from broadcast.dispatch.envelope import format_time
from broadcast.dispatch.outbox import enqueue
from broadcast.dispatch.rundown_doc import AUDIO_PATH
from broadcast.dispatch.signing import sign, sign_many
from broadcast.errors import Conflict, Forbidden, Invalid, NotFound
from broadcast.regions.models import Endpoint, EndpointStatus
from broadcast.targets.schemas import Selector, TargetPreview
from broadcast.targets.service import preview, resolve_endpoint_ids

log = logging.getLogger(__name__)
Wake = Callable[[], None] | None
MIN_VALIDITY = timedelta(minutes=1)
MAX_VALIDITY = timedelta(days=7)


def default_all_clear(title: str) -> str:
    return f"现在解除{title}。请大家恢复正常生产生活，留意后续通知。"


def needs_approval(alert: Alert, settings: Settings) -> bool:
    return alert.level in settings.alert_approval_levels


def get_alert_or_raise(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"预警 {alert_id} 不存在：请检查编号，或在预警列表中查找")
    return alert


def _check_validity(valid_until: datetime, now: datetime) -> None:
    if valid_until <= now + MIN_VALIDITY:
        raise Invalid(
            f"有效期 {valid_until.isoformat()} 已过或不足 1 分钟：请设置一个将来的时间",
            details={"valid_until": valid_until.isoformat(), "now": now.isoformat()},
        )
    if valid_until > now + MAX_VALIDITY:
        raise Invalid(
            "有效期最长 7 天：更长的提醒请改用宣传计划",
            details={"valid_until": valid_until.isoformat()},
        )


def reach_of(session: Session, selector: dict[str, Any]) -> TargetPreview:
    """Where an alert would go now; 422 when that is nowhere."""
    found = preview(session, selector=Selector.model_validate(selector))
    if found.total == 0:
        raise Invalid(
            "播发范围内没有任何终端：请检查所选乡镇、村（社区）、标签或分组", details={"selector": selector}
        )
    return found


def _clip_or_raise(session: Session, clip_id: int, store: AudioStore) -> Clip:
    clip = session.get(Clip, clip_id)
    if clip is None:
        raise Invalid(f"录音素材 {clip_id} 不存在：请在素材库中选择已有的录音", details={"clip_id": clip_id})
    if not store.exists(clip.blob_sha256):
        raise Invalid(
            f"录音素材「{clip.title}」的音频文件在音频存储中找不到，不能播放：请改选其他录音或改用文字播报，"
            "并请管理员检查音频存储（如备份是否完整恢复）",
            details={"clip_id": clip_id, "sha256": clip.blob_sha256},
        )
    return clip


def _same_request(alert: Alert, data: AlertCreate) -> bool:
    return (
        alert.title == data.title
        and alert.text == data.text
        and alert.clip_id == data.clip_id
        and alert.level == data.level
        and alert.drill == data.drill
        and alert.selector == data.selector.model_dump(mode="json")
    )


def _existing(session: Session, user: User, request_key: str) -> Alert | None:
    query = select(Alert).where(Alert.created_by == user.id, Alert.request_key == request_key)
    return session.exec(query).first()


def _repeat_of(existing: Alert, data: AlertCreate) -> Alert:
    if not _same_request(existing, data):
        raise Conflict(
            f"编号 {data.request_key} 已用于预警 {existing.id}（{existing.title}），内容不同："
            "新预警请使用新的编号",
            details={"alert_id": existing.id},
        )
    return existing


def create_alert(
    session: Session,
    *,
    data: AlertCreate,
    user: User,
    actor: Actor,
    store: AudioStore,
    settings: Settings,
    now: datetime,
    source: AlertSource = AlertSource.console,
    cap: dict[str, Any] | None = None,
) -> tuple[Alert, bool]:
    """A draft with its audio made; (alert, created). A repeated request returns the first draft."""
    existing = _existing(session, user, data.request_key)
    if existing is not None:
        return _repeat_of(existing, data), False
    _check_validity(data.valid_until, now)
    selector = data.selector.model_dump(mode="json")
    reach_of(session, selector)
    clip = _clip_or_raise(session, data.clip_id, store) if data.clip_id is not None else None
    blob = program.make_program(
        session, text=data.text, clip=clip, drill=data.drill, store=store, settings=settings
    )
    all_clear_text = data.all_clear_text or default_all_clear(data.title)
    all_clear = program.make_program(
        session, text=all_clear_text, clip=None, drill=data.drill, store=store, settings=settings
    )
    alert = Alert(
        request_key=data.request_key,
        title=data.title,
        text=data.text,
        clip_id=data.clip_id,
        level=data.level,
        category=data.category,
        drill=data.drill,
        selector=selector,
        repeat=data.repeat,
        valid_until=data.valid_until,
        program_sha256=blob.sha256,
        program_duration_ms=blob.duration_ms,
        all_clear_text=all_clear_text,
        all_clear_sha256=all_clear.sha256,
        source=source,
        created_by=user.id,
        **(cap or {}),
    )
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        # The same request raced in from a second click: the other one won.
        raced = _existing(session, user, data.request_key)
        if raced is None:
            raise
        return _repeat_of(raced, data), False
    audit.record(
        session,
        actor=actor,
        action="alert.draft",
        entity_type="alert",
        entity_id=alert.id,
        after=snapshot(alert),
    )
    return alert, True


def snapshot(alert: Alert) -> dict[str, Any]:
    return audit.snapshot(alert) or {}


def _audit(
    session: Session, actor: Actor, action: str, alert: Alert, before: dict[str, Any], **extra: Any
) -> None:
    """One audit entry for a step of the lifecycle: the alert before and after it."""
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="alert",
        entity_id=alert.id,
        before=before,
        after={**snapshot(alert), **extra},
    )


def _refuse_stale_confirmation(session: Session, alert: Alert, data: SendIn) -> TargetPreview:
    found = reach_of(session, alert.selector)
    if data.reach != found.total or data.drill != alert.drill:
        kind = "演练" if alert.drill else "真实预警"
        raise Conflict(
            f"确认信息已过时：该预警现在是{kind}，将到达 {found.total} 个终端（确认时为 {data.reach} 个、"
            f"{'演练' if data.drill else '真实预警'}）；请核对后重新确认",
            details={"reach": found.total, "drill": alert.drill, "preview": found.model_dump(mode="json")},
        )
    return found


def _check_sendable(alert: Alert, now: datetime) -> None:
    if alert.valid_until <= now:
        raise Invalid(
            f"预警已于 {alert.valid_until.isoformat()} 过期，不能再发送：请重新起草",
            details={"valid_until": alert.valid_until.isoformat()},
        )


def send_alert(
    session: Session,
    *,
    alert: Alert,
    data: SendIn,
    user: User,
    actor: Actor,
    settings: Settings,
    now: datetime,
    wake: Wake = None,
) -> Alert:
    """The officer's confirmation: sent now, or waiting for a second person when the level needs one."""
    if alert.status in (AlertStatus.active, AlertStatus.awaiting_approval) and alert.confirmed_by is not None:
        return alert  # a second click on "send": already done
    if alert.status != AlertStatus.draft:
        raise Conflict(
            f"预警 {alert.id} 当前为“{STATUS_LABELS[alert.status]}”，不能发送",
            details={"status": alert.status},
        )
    _check_sendable(alert, now)
    found = _refuse_stale_confirmation(session, alert, data)
    before = snapshot(alert)
    alert.reach, alert.confirmed_by, alert.confirmed_at = found.total, user.id, now
    if needs_approval(alert, settings):
        alert.status = AlertStatus.awaiting_approval
        _touch(session, alert, now)
        _audit(session, actor, "alert.confirm", alert, before)
        return alert
    _dispatch(session, alert, settings=settings, now=now, wake=wake)
    _audit(session, actor, "alert.send", alert, before)
    return alert


def approve_alert(
    session: Session,
    *,
    alert: Alert,
    user: User,
    actor: Actor,
    settings: Settings,
    now: datetime,
    wake: Wake = None,
) -> Alert:
    """The second person's approval: the alert goes out now."""
    if alert.status == AlertStatus.active and alert.approved_by == user.id:
        return alert
    if alert.status != AlertStatus.awaiting_approval:
        raise Conflict(
            f"预警 {alert.id} 当前为“{STATUS_LABELS[alert.status]}”，不在待审批状态",
            details={"status": alert.status},
        )
    if user.id in (alert.created_by, alert.confirmed_by):
        raise Forbidden(
            "不能审批自己起草或确认的预警：请另一位值班员或管理员审批；确需一人发布时使用“紧急越级发布”并写明理由"
        )
    _check_sendable(alert, now)
    before = snapshot(alert)
    alert.approved_by, alert.approved_at = user.id, now
    _dispatch(session, alert, settings=settings, now=now, wake=wake)
    _audit(session, actor, "alert.approve", alert, before)
    return alert


def break_glass(
    session: Session,
    *,
    alert: Alert,
    data: BreakGlassIn,
    user: User,
    actor: Actor,
    settings: Settings,
    now: datetime,
    wake: Wake = None,
) -> Alert:
    """One person sends a level that needs approval, with a reason kept in the audit log."""
    if alert.status == AlertStatus.active and alert.break_glass_reason is not None:
        return alert
    if alert.status not in (AlertStatus.draft, AlertStatus.awaiting_approval):
        raise Conflict(
            f"预警 {alert.id} 当前为“{STATUS_LABELS[alert.status]}”，不能越级发布",
            details={"status": alert.status},
        )
    if not needs_approval(alert, settings):
        raise Invalid(f"{alert.level} 级预警无需审批，请直接发送", details={"level": alert.level})
    _check_sendable(alert, now)
    found = _refuse_stale_confirmation(session, alert, data)
    before = snapshot(alert)
    alert.reach, alert.confirmed_by, alert.confirmed_at = found.total, user.id, now
    alert.break_glass_reason = data.reason
    _dispatch(session, alert, settings=settings, now=now, wake=wake)
    _audit(session, actor, "alert.break_glass", alert, before)
    return alert


def _touch(session: Session, alert: Alert, now: datetime) -> None:
    alert.updated_at = now
    session.add(alert)
    session.flush()


def program_ref(blob: AudioBlob) -> dict[str, Any]:
    return {
        "sha256": blob.sha256,
        "size_bytes": blob.size_bytes,
        "duration_ms": blob.duration_ms,
        "url": AUDIO_PATH.format(sha256=blob.sha256),
    }


def alert_payload(session: Session, alert: Alert) -> dict[str, Any]:
    """What a device is told to play (signed by the caller)."""
    return {
        "type": "alert",
        "alert_id": alert.id,
        "revision": alert.revision,
        "level": alert.level,
        "category": alert.category.value,
        "drill": alert.drill,
        "title": alert.title,
        "repeat": alert.repeat,
        "valid_until": format_time(alert.valid_until),
        "program": program_ref(session.get_one(AudioBlob, alert.program_sha256)),
    }


def cancel_payload(session: Session, alert: Alert, *, all_clear: bool) -> dict[str, Any]:
    """Stop the alert; play the prepared all-clear if there is one."""
    clear = session.get(AudioBlob, alert.all_clear_sha256) if all_clear and alert.all_clear_sha256 else None
    return {
        "type": "cancel",
        "alert_id": alert.id,
        "revision": alert.revision,
        "drill": alert.drill,
        "valid_until": format_time(alert.valid_until),
        "all_clear": program_ref(clear) if clear is not None else None,
    }


def _publish(
    session: Session,
    alert: Alert,
    payload: dict[str, Any],
    targets: list[int],
    settings: Settings,
    wake: Wake,
) -> None:
    envelope = sign(session, payload, settings=settings)
    meta = {"id": alert.id, "revision": alert.revision, "type": payload["type"]}
    enqueue(session, {"targets": targets, "envelope": envelope, "alert": meta}, wake=wake)


def _dispatch(session: Session, alert: Alert, *, settings: Settings, now: datetime, wake: Wake) -> None:
    """Active now: delivery rows for every endpoint reached, and the signed push in the outbox."""
    ids = resolve_endpoint_ids(session, selector=Selector.model_validate(alert.selector))
    online = set(
        session.exec(
            select(Endpoint.id).where(col(Endpoint.id).in_(ids), Endpoint.status == EndpointStatus.online)
        ).all()
    ) if ids else set()  # fmt: skip
    rows = [
        {
            "alert_id": alert.id,
            "endpoint_id": endpoint_id,
            "state": DeliveryState.sent,
            "online_at_send": endpoint_id in online,
            "sent_at": now,
        }
        for endpoint_id in ids
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(AlertDelivery), rows[start : start + 5000])
    alert.status, alert.sent_at, alert.reach = AlertStatus.active, now, len(ids)
    _touch(session, alert, now)
    _publish(session, alert, alert_payload(session, alert), ids, settings, wake)
    log.warning(
        "%s alert %s (level %s, %s) sent to %d endpoints (%d online)",
        "DRILL 演练" if alert.drill else "LIVE 真实预警",
        alert.id,
        alert.level,
        alert.category.value,
        len(ids),
        len(online),
    )


def delivery_targets(session: Session, alert: Alert) -> list[int]:
    query = select(AlertDelivery.endpoint_id).where(AlertDelivery.alert_id == alert.id)
    return sorted(session.exec(query).all())


def update_alert(
    session: Session,
    *,
    alert: Alert,
    data: AlertUpdateIn,
    actor: Actor,
    user: User,
    store: AudioStore,
    settings: Settings,
    now: datetime,
    wake: Wake = None,
) -> Alert:
    """A new revision of an active alert to the same endpoints: devices replace the old one."""
    if alert.status != AlertStatus.active:
        raise Conflict(
            f"只能更新播发中的预警；预警 {alert.id} 当前为“{STATUS_LABELS[alert.status]}”",
            details={"status": alert.status},
        )
    if data.valid_until is not None:
        _check_validity(data.valid_until, now)
    if data.text is not None and alert.clip_id is not None:
        raise Invalid(
            "该预警播放的是录音素材，不能改为文本；请解除后重新起草", details={"clip_id": alert.clip_id}
        )
    before = snapshot(alert)
    for name in ("title", "level", "repeat", "valid_until"):
        value = getattr(data, name)
        if value is not None:
            setattr(alert, name, value)
    if data.text is not None and data.text != alert.text:
        alert.text = data.text
        blob = program.make_program(
            session, text=data.text, clip=None, drill=alert.drill, store=store, settings=settings
        )
        alert.program_sha256, alert.program_duration_ms = blob.sha256, blob.duration_ms
    alert.revision += 1
    alert.updated_by = user.id
    _touch(session, alert, now)
    session.execute(
        update(AlertDelivery)
        .where(col(AlertDelivery.alert_id) == alert.id)
        .values(
            state=DeliveryState.sent,
            sent_at=now,
            delivered_at=None,
            started_at=None,
            finished_at=None,
            detail=None,
        )
    )
    _publish(session, alert, alert_payload(session, alert), delivery_targets(session, alert), settings, wake)
    _audit(session, actor, "alert.update", alert, before)
    return alert


def cancel_alert(
    session: Session,
    *,
    alert: Alert,
    data: CancelIn,
    actor: Actor,
    user: User,
    settings: Settings,
    now: datetime,
    wake: Wake = None,
) -> Alert:
    """Stop a sent alert everywhere (with the prepared all-clear), or withdraw one not yet sent."""
    if alert.status in (AlertStatus.cancelled, AlertStatus.discarded):
        when = alert.cancelled_at.isoformat() if alert.cancelled_at else ""
        raise Conflict(
            f"预警 {alert.id} 已于 {when} 解除或作废，无需重复操作", details={"status": alert.status}
        )
    if alert.status == AlertStatus.expired:
        raise Conflict(f"预警 {alert.id} 已过期，终端已自行停止播放", details={"status": alert.status})
    before = snapshot(alert)
    sent = alert.status == AlertStatus.active
    alert.status = AlertStatus.cancelled if sent else AlertStatus.discarded
    alert.cancelled_by, alert.cancelled_at, alert.cancel_reason = user.id, now, data.reason
    _touch(session, alert, now)
    if sent:
        payload = cancel_payload(session, alert, all_clear=data.all_clear)
        _publish(session, alert, payload, delivery_targets(session, alert), settings, wake)
    _audit(
        session,
        actor,
        "alert.cancel" if sent else "alert.discard",
        alert,
        before,
        all_clear=data.all_clear and sent,
    )
    return alert


def expire_alerts(session: Session, *, now: datetime) -> list[int]:
    """Active alerts past their validity: expired (devices stop on their own at valid_until)."""
    statement = (
        update(Alert)
        .where(col(Alert.status) == AlertStatus.active, col(Alert.valid_until) <= now)
        .values(status=AlertStatus.expired, updated_at=now)
        .returning(col(Alert.id))
    )
    return [int(row[0]) for row in session.execute(statement).all()]


def device_alerts(
    session: Session, *, endpoint: Endpoint, settings: Settings, now: datetime
) -> list[dict[str, Any]]:
    """Signed alerts (and cancels) this endpoint must know about now: what a device that was
    offline at send time gets on reconnecting. Serving it counts as delivery."""
    query = (
        select(Alert)
        .join(AlertDelivery, col(AlertDelivery.alert_id) == Alert.id)
        .where(AlertDelivery.endpoint_id == endpoint.id, *delivery.known_now(now))
        .order_by(col(Alert.level), col(Alert.id))
    )
    alerts = list(session.exec(query).all())
    if not alerts:
        return []
    payloads = [
        alert_payload(session, alert)
        if alert.status == AlertStatus.active
        else cancel_payload(session, alert, all_clear=False)
        for alert in alerts
    ]
    active = [alert.id for alert in alerts if alert.status == AlertStatus.active]
    if active:
        session.execute(
            update(AlertDelivery)
            .where(
                col(AlertDelivery.endpoint_id) == endpoint.id,
                col(AlertDelivery.alert_id).in_(active),
                col(AlertDelivery.state) == DeliveryState.sent,
            )
            .values(state=DeliveryState.delivered, delivered_at=now)
        )
    return sign_many(session, payloads, settings=settings, now=now)
