"""Play-event batches from devices: validated one by one, stored in bulk, idempotent.

Each event carries the device's own id; the (endpoint, id) key claimed in ``play_event_keys``
(:mod:`broadcast.playlog.storage`) makes a retried batch count every event once, even when two
retries race. Late and out-of-order events are fine: a device buffers while offline. A bad event
(shape, type, a time too far ahead or older than the retention period, a slot or an alert that is
unknown or not this endpoint's) is rejected alone with its index, id and a code; the others are
stored in one bulk insert. Events about alerts also move the endpoint's delivery on the alert's
board (playing, completed, interrupted, failed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Header
from pydantic import ValidationError
from sqlmodel import Session, col, select

from broadcast.alerts.delivery import record_play
from broadcast.alerts.models import Alert, AlertDelivery
from broadcast.dispatch.device_schemas import MAX_EVENTS, DeviceEvent, EventsResult, RejectedEvent
from broadcast.dispatch.models import PlayEventType
from broadcast.errors import TooLarge
from broadcast.playlog.storage import PlayRow, insert_new, retention_start
from broadcast.regions.models import Endpoint
from broadcast.scheduling.models import RundownSlot

FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_BODY_BYTES = 1024 * 1024


def limit_body(content_length: Annotated[int | None, Header()] = None) -> None:
    """Refuse an oversized batch before reading it."""
    if content_length is not None and content_length > MAX_BODY_BYTES:
        raise TooLarge(f"事件批次过大（{content_length} 字节，上限 {MAX_BODY_BYTES}）：请分批上传")


def _raw_id(raw: Any) -> str | None:
    value = raw.get("id") if isinstance(raw, dict) else None
    return value[:64] if isinstance(value, str) else None


def _invalid(index: int, raw: Any, exc: ValidationError) -> RejectedEvent:
    problems = exc.errors()
    code = "bad_type" if any(tuple(p["loc"]) == ("type",) for p in problems) else "invalid"
    summary = "；".join(f"{'.'.join(str(x) for x in p['loc']) or '事件'}: {p['msg']}" for p in problems)
    return RejectedEvent(index=index, id=_raw_id(raw), code=code, message=f"事件格式有误：{summary}")


def _parse(index: int, raw: Any, now: datetime, oldest: datetime) -> DeviceEvent | RejectedEvent:
    try:
        event = DeviceEvent.model_validate(raw)
    except ValidationError as exc:
        return _invalid(index, raw, exc)
    if event.at > now + FUTURE_TOLERANCE:
        message = f"事件时间 {event.at.isoformat()} 比服务器时间晚 5 分钟以上：请校准终端时钟"
        return RejectedEvent(index=index, id=event.id, code="future_time", message=message)
    if event.at < oldest:
        message = (
            f"事件时间 {event.at.isoformat()} 早于播放日志的保留期（自 {oldest.date().isoformat()} 起）："
            "该事件不再保存，请从终端缓存中删除"
        )
        return RejectedEvent(index=index, id=event.id, code="too_old", message=message)
    return event


def _slots(session: Session, events: list[tuple[int, DeviceEvent]]) -> dict[int, tuple[int, int]]:
    """The named slots that exist: slot id -> (endpoint, campaign)."""
    ids = {event.slot_id for _, event in events if event.slot_id is not None}
    if not ids:
        return {}
    query = select(RundownSlot.id, RundownSlot.endpoint_id, RundownSlot.campaign_id).where(
        col(RundownSlot.id).in_(ids)
    )
    return {slot_id: (owner, campaign) for slot_id, owner, campaign in session.exec(query).all() if slot_id}


def _slot_problem(
    event: DeviceEvent, slots: dict[int, tuple[int, int]], endpoint: Endpoint
) -> tuple[str, str] | None:
    if event.slot_id is None:
        return None
    owner = slots.get(event.slot_id, (None, None))[0]
    if owner is None:
        return "unknown_slot", f"播出时段 {event.slot_id} 不存在：请重新获取播出单"
    if owner != endpoint.id:
        return "foreign_slot", f"播出时段 {event.slot_id} 不属于本终端 {endpoint.code}"
    return None


def _alert_targets(
    session: Session, endpoint: Endpoint, events: list[tuple[int, DeviceEvent]]
) -> tuple[set[int], set[int]]:
    """Of the alerts these events name: those that exist, and those sent to this endpoint."""
    ids = {event.alert_id for _, event in events if event.alert_id is not None}
    if not ids:
        return set(), set()
    known = set(session.exec(select(Alert.id).where(col(Alert.id).in_(ids))).all())
    mine = session.exec(
        select(AlertDelivery.alert_id).where(
            AlertDelivery.endpoint_id == endpoint.id, col(AlertDelivery.alert_id).in_(ids)
        )
    ).all()
    return {i for i in known if i is not None}, set(mine)


def _alert_problem(
    event: DeviceEvent, known: set[int], mine: set[int], endpoint: Endpoint
) -> tuple[str, str] | None:
    if event.alert_id is None:
        return None
    if event.alert_id not in known:
        return "unknown_alert", f"预警 {event.alert_id} 不存在：请重新获取 /device/v1/alerts"
    if event.alert_id not in mine:
        return "foreign_alert", f"预警 {event.alert_id} 没有发给本终端 {endpoint.code}"
    return None


def _row(endpoint: Endpoint, event: DeviceEvent, campaign_id: int | None, now: datetime) -> PlayRow:
    return PlayRow(
        endpoint_id=endpoint.id or 0,
        event_id=event.id,
        type=event.type.value,
        slot_id=event.slot_id,
        alert_id=event.alert_id,
        alert_revision=event.alert_revision,
        program_sha256=event.program_sha256,
        position_ms=event.position_ms,
        reason=event.reason,
        village_id=endpoint.village_id,
        campaign_id=campaign_id,
        occurred_at=event.at.astimezone(UTC),
        received_at=now,
    )


def _validate(
    session: Session, *, endpoint: Endpoint, events: Sequence[Any], now: datetime, retention_months: int
) -> tuple[list[PlayRow], list[RejectedEvent]]:
    """The batch's valid events as rows to store, and the rejected ones by index."""
    oldest = retention_start(now, retention_months)
    rejected: list[RejectedEvent] = []
    parsed: list[tuple[int, DeviceEvent]] = []
    for index, raw in enumerate(events):
        result = _parse(index, raw, now, oldest)
        if isinstance(result, RejectedEvent):
            rejected.append(result)
        else:
            parsed.append((index, result))
    slots = _slots(session, parsed)
    known, mine = _alert_targets(session, endpoint, parsed)
    valid: list[PlayRow] = []
    for index, event in parsed:
        if problem := _slot_problem(event, slots, endpoint) or _alert_problem(event, known, mine, endpoint):
            rejected.append(RejectedEvent(index=index, id=event.id, code=problem[0], message=problem[1]))
        else:
            campaign = slots[event.slot_id][1] if event.slot_id is not None else None
            valid.append(_row(endpoint, event, campaign, now))
    return valid, sorted(rejected, key=lambda r: r.index)


def ingest_events(
    session: Session, *, endpoint: Endpoint, events: Sequence[Any], now: datetime, retention_months: int
) -> EventsResult:
    """Store a device's batch; a repeated id (in this batch or before) is a duplicate, not an error."""
    if len(events) > MAX_EVENTS:
        raise TooLarge(f"一次最多上传 {MAX_EVENTS} 条事件（收到 {len(events)} 条）：请分批上传")
    valid, rejected = _validate(
        session, endpoint=endpoint, events=events, now=now, retention_months=retention_months
    )
    inserted = insert_new(session, valid)
    about_alerts = [
        (row.alert_id, row.alert_revision, PlayEventType(row.type), row.occurred_at, row.reason)
        for row in inserted
        if row.alert_id is not None
    ]
    if about_alerts:
        record_play(session, endpoint_id=endpoint.id or 0, events=about_alerts)
    accepted = len(inserted)
    return EventsResult(accepted=accepted, duplicates=len(valid) - accepted, rejected=rejected)
