"""CAP 1.2 on the alert desk: an incoming message becomes a draft, an update or a cancel, and any
alert leaves as a CAP message.

An imported Alert is only ever a draft: the officer still confirms it on the desk (and a second
person approves levels I-II), because an upstream system must never make every speaker in the
city talk on its own. Updates and cancels act on the alert their ``<references>`` name.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from broadcast.alerts import cap, service
from broadcast.alerts.models import (
    CATEGORY_LABELS,
    STATUS_LABELS,
    Alert,
    AlertCategory,
    AlertDelivery,
    AlertSource,
    AlertStatus,
    CapAction,
    CapMessageRecord,
)
from broadcast.alerts.schemas import MAX_TEXT, AlertCreate, AlertUpdateIn, CancelIn
from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.auth.models import User
from broadcast.config import Settings
from broadcast.content.store import AudioStore
from broadcast.errors import Conflict, Invalid, NotFound
from broadcast.regions.models import Endpoint, Town, Village
from broadcast.targets.schemas import Selector, TargetPreview
from broadcast.targets.service import preview, resolve_selector

# CAP's <expires> is optional; an alert without an end would play until someone cancels it.
DEFAULT_VALIDITY = timedelta(hours=6)
DEFAULT_CANCEL_REASON = "上游 CAP 解除通知"
GEOCODE_NAME = "行政区划代码"
TITLE_MAX = 64
REASON_MAX = 500
AREA_NAMES_SHOWN = 3
IMPORT_ACTION = "alert.cap_import"
_EARTH_RADIUS_KM = 6371.0088
_KM_PER_DEGREE = 111.32
_STOPS = ("。", "！", "？", "；", ".", "!", "?", ";")
_ACTIVE_STATES = (AlertStatus.draft, AlertStatus.awaiting_approval, AlertStatus.active)
_ACTION_OF = {"Alert": CapAction.draft, "Update": CapAction.update, "Cancel": CapAction.cancel}


@dataclass
class AreaMatch:
    """What a CAP area reaches in our city, and what of it we could not place."""

    towns: list[str] = field(default_factory=list)
    villages: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    unmatched_codes: list[str] = field(default_factory=list)
    empty_shapes: list[str] = field(default_factory=list)

    def selector(self) -> dict[str, list[str]]:
        kinds = {"towns": self.towns, "villages": self.villages, "endpoints": self.endpoints}
        return {kind: values for kind, values in kinds.items() if values}


@dataclass
class Imported:
    action: CapAction
    alert: Alert
    created: bool
    preview: TargetPreview | None
    unmatched_codes: list[str]
    notes: list[str]


# --- incoming ------------------------------------------------------------------------------


def request_key(sender: str, identifier: str) -> str:
    """The draft's idempotency key: one (sender, identifier) is one alert, however often it comes."""
    digest = hashlib.sha256(f"{sender}\n{identifier}".encode()).hexdigest()
    return f"cap:{digest[:60]}"


def pick_info(message: cap.CapMessage) -> cap.CapInfo:
    """The Chinese <info> when there is one (messages often carry an English copy too)."""
    if not message.infos:
        raise Invalid(
            f"CAP {message.msg_type} 消息没有 <info>：无法得知播报内容、级别和区域，请发送方补充 <info>",
            details={"identifier": message.identifier},
        )
    chinese = [info for info in message.infos if info.language.lower().startswith("zh")]
    return (chinese or message.infos)[0]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def title_of(info: cap.CapInfo) -> str:
    title = _one_line(info.headline or info.event)
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"


def text_of(info: cap.CapInfo, title: str) -> str:
    """What the speakers say: the description, then the instruction (the title when both are absent)."""
    parts = [_one_line(part) for part in (info.description, info.instruction) if part and part.strip()]
    if not parts:
        return title
    text = parts[0]
    if len(parts) == 2:
        text = (text if text.endswith(_STOPS) else text + "。") + parts[1]
    if len(text) > MAX_TEXT:
        raise Invalid(
            f"CAP 消息的播报文本（<description> 加 <instruction>）共 {len(text)} 字，超过 {MAX_TEXT} 字上限："
            "请发送方精简，或在预警台手工起草",
            details={"length": len(text), "max": MAX_TEXT},
        )
    return text


def valid_until_of(message: cap.CapMessage, info: cap.CapInfo, now: datetime) -> datetime:
    """<expires>, else sent + 6 h; refused when that is already past."""
    if info.expires is not None:
        if info.expires <= now:
            raise Invalid(
                f"CAP 消息的 <expires>（失效时间）{cap.cap_time(info.expires)} 已过：过期的预警不再播发",
                details={"expires": info.expires.isoformat(), "now": now.isoformat()},
            )
        return info.expires
    until = message.sent + DEFAULT_VALIDITY
    if until <= now:
        raise Invalid(
            f"CAP 消息没有 <expires>，按发送时间 {cap.cap_time(message.sent)} 加 6 小时计已于 "
            f"{cap.cap_time(until)} 失效：过期的预警不再播发",
            details={"sent": message.sent.isoformat(), "now": now.isoformat()},
        )
    return until


def level_of(info: cap.CapInfo) -> int:
    try:
        return cap.level_for_severity(info.severity)
    except cap.CapError as exc:
        raise Invalid(exc.reason, details={"severity": info.severity}) from exc


def _codes(session: Session, column: Any, values: list[str]) -> set[str]:
    if not values:
        return set()
    return set(session.exec(select(column).where(column.in_(values))).all())


def _towns_of_counties(session: Session, counties: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for county in counties:
        query = select(Town.code).where(col(Town.code).startswith(county)).order_by(col(Town.code))
        found[county] = list(session.exec(query).all())
    return found


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def _endpoints_in_box(
    session: Session, lat_min: float, lat_max: float, lon_min: float, lon_max: float
) -> Sequence[tuple[str, float | None, float | None]]:
    query = select(Endpoint.code, Endpoint.latitude, Endpoint.longitude).where(
        col(Endpoint.latitude).between(lat_min, lat_max), col(Endpoint.longitude).between(lon_min, lon_max)
    )
    return session.exec(query).all()


def _in_polygon(session: Session, polygon: list[tuple[float, float]]) -> list[str]:
    lats, lons = [p[0] for p in polygon], [p[1] for p in polygon]
    rows = _endpoints_in_box(session, min(lats), max(lats), min(lons), max(lons))
    return [
        code
        for code, lat, lon in rows
        if lat is not None and lon is not None and cap.point_in_polygon(lat, lon, polygon)
    ]


def _in_circle(session: Session, circle: tuple[float, float, float]) -> list[str]:
    lat, lon, radius = circle
    dlat = radius / _KM_PER_DEGREE
    dlon = radius / (_KM_PER_DEGREE * max(math.cos(math.radians(lat)), 1e-6))
    rows = _endpoints_in_box(session, lat - dlat, lat + dlat, lon - dlon, lon + dlon)
    return [
        code
        for code, p_lat, p_lon in rows
        if p_lat is not None and p_lon is not None and _distance_km(lat, lon, p_lat, p_lon) <= radius
    ]


def match_areas(session: Session, areas: Sequence[cap.CapArea]) -> AreaMatch:
    """Administrative codes → towns and villages; polygons and circles → the endpoints inside."""
    match = AreaMatch()
    codes = list(dict.fromkeys(code for area in areas for code in cap.admin_codes(area)))
    villages = [c for c in codes if len(c) == 12]
    towns = [c for c in codes if len(c) == 9]
    known_villages = _codes(session, col(Village.code), villages)
    known_towns = _codes(session, col(Town.code), towns)
    county_towns = _towns_of_counties(session, [c for c in codes if len(c) == 6])
    for code in codes:
        if code in known_villages:
            match.villages.append(code)
        elif code in known_towns:
            match.towns.append(code)
        elif county_towns.get(code):
            match.towns.extend(t for t in county_towns[code] if t not in match.towns)
        else:
            match.unmatched_codes.append(code)
    endpoints: dict[str, None] = {}
    for area in areas:
        if not (area.polygons or area.circles):
            continue
        inside = [c for polygon in area.polygons for c in _in_polygon(session, polygon)]
        inside += [c for circle in area.circles for c in _in_circle(session, circle)]
        if not inside:
            match.empty_shapes.append(area.description)
        endpoints.update(dict.fromkeys(inside))
    match.endpoints = sorted(endpoints)
    return match


def _nothing_reached(match: AreaMatch, areas: Sequence[cap.CapArea]) -> Invalid:
    problems = []
    if match.unmatched_codes:
        problems.append(f"行政区划代码 {'、'.join(match.unmatched_codes)} 不属于本市")
    if match.empty_shapes:
        problems.append(f"区域“{'”“'.join(match.empty_shapes)}”的多边形或圆内没有标注了坐标的终端")
    if not problems:
        described = "”“".join(area.description for area in areas) or "（无 <area>）"
        problems.append(f"区域“{described}”没有本市可用的行政区划代码、多边形或圆")
    return Invalid(
        f"CAP 消息的区域在本市找不到任何终端：{'；'.join(problems)}。请核对区域，或在预警台手工起草",
        details={
            "unmatched_codes": match.unmatched_codes,
            "areas": [area.description for area in areas],
            "selector": match.selector(),
        },
    )


def _reach_or_refuse(session: Session, match: AreaMatch, areas: Sequence[cap.CapArea]) -> TargetPreview:
    selector = match.selector()
    if not selector:
        raise _nothing_reached(match, areas)
    found = preview(session, selector=Selector.model_validate(selector))
    if found.total == 0:
        raise _nothing_reached(match, areas)
    return found


def _polygons(areas: Iterable[cap.CapArea]) -> list[list[list[float]]]:
    return [[[lat, lon] for lat, lon in polygon] for area in areas for polygon in area.polygons]


def _audit_import(
    session: Session, actor: Actor, alert: Alert, message: cap.CapMessage, unmatched: list[str]
) -> None:
    """The upstream header in the audit log: who imported what, sent by whom and when."""
    audit.record(
        session,
        actor=actor,
        action=IMPORT_ACTION,
        entity_type="alert",
        entity_id=alert.id,
        after={
            "sender": message.sender,
            "identifier": message.identifier,
            "sent": message.sent.isoformat(),
            "msg_type": message.msg_type,
            "status": message.status,
            "unmatched_codes": unmatched,
        },
    )


def _safe_preview(session: Session, selector: dict[str, Any]) -> TargetPreview | None:
    try:
        return preview(session, selector=Selector.model_validate(selector))
    except (Invalid, ValidationError):
        return None


def _draft(
    session: Session,
    *,
    message: cap.CapMessage,
    user: User,
    actor: Actor,
    store: AudioStore,
    settings: Settings,
    now: datetime,
) -> Imported:
    info = pick_info(message)
    title = title_of(info)
    text = text_of(info, title)
    level = level_of(info)
    valid_until = valid_until_of(message, info, now)
    match = match_areas(session, info.areas)
    _reach_or_refuse(session, match, info.areas)
    try:
        data = AlertCreate(
            request_key=request_key(message.sender, message.identifier),
            title=title,
            text=text,
            level=level,
            category=AlertCategory(cap.category_for(info)),
            drill=cap.is_drill(message),
            selector=Selector.model_validate(match.selector()),
            valid_until=valid_until,
        )
    except ValidationError as exc:
        problem = "；".join(str(error["msg"]) for error in exc.errors())
        raise Invalid(
            f"CAP 消息无法转成预警草稿：{problem}", details={"identifier": message.identifier}
        ) from exc
    alert, created = service.create_alert(
        session,
        data=data,
        user=user,
        actor=actor,
        store=store,
        settings=settings,
        now=now,
        source=AlertSource.cap,
        cap={
            "cap_sender": message.sender,
            "cap_identifier": message.identifier,
            "cap_polygons": _polygons(info.areas),
        },
    )
    if created:
        _audit_import(session, actor, alert, message, match.unmatched_codes)
    notes = (
        [f"以下行政区划代码不属于本市，已忽略：{'、'.join(match.unmatched_codes)}"]
        if match.unmatched_codes
        else []
    )
    return Imported(
        CapAction.draft,
        alert,
        created,
        service.reach_of(session, alert.selector),
        match.unmatched_codes,
        notes,
    )


def _referenced(session: Session, message: cap.CapMessage) -> list[Alert]:
    """The alerts the referenced messages made or changed, oldest first: a reference may name the
    original Alert or any Update or Cancel we imported after it."""
    named = [
        and_(col(CapMessageRecord.sender) == r.sender, col(CapMessageRecord.identifier) == r.identifier)
        for r in message.references
    ]
    ids = select(CapMessageRecord.alert_id).where(or_(*named))
    found = session.exec(select(Alert).where(col(Alert.id).in_(ids)).order_by(col(Alert.id))).all()
    if not found:
        listed = "、".join(f"{r.sender},{r.identifier}" for r in message.references)
        raise NotFound(
            f"找不到 <references> 所指的原预警（{listed}）：请先导入原预警（msgType 为 Alert），"
            "或核对发送方与标识",
            details={
                "references": [{"sender": r.sender, "identifier": r.identifier} for r in message.references]
            },
        )
    return list(found)


def _check_same_kind(message: cap.CapMessage, alert: Alert) -> None:
    drill = cap.is_drill(message)
    if drill != alert.drill:
        said, ours = ("演练", "真实预警") if drill else ("真实预警", "演练")
        raise Invalid(
            f"上游消息是{said}（<status>{message.status}</status>），而预警 {alert.id} 是{ours}："
            "不予处理，请与发送方核实",
            details={"alert_id": alert.id, "status": message.status},
        )


def _changes(alert: Alert, message: cap.CapMessage, info: cap.CapInfo, now: datetime) -> dict[str, Any]:
    title = title_of(info)
    wanted: dict[str, Any] = {
        "title": title,
        "text": text_of(info, title),
        "level": level_of(info),
        "valid_until": valid_until_of(message, info, now),
    }
    return {name: value for name, value in wanted.items() if getattr(alert, name) != value}


def _outside_note(session: Session, alert: Alert, info: cap.CapInfo) -> list[str]:
    """An update cannot move an alert: say so when upstream's area now reaches more speakers."""
    selector = match_areas(session, info.areas).selector()
    if not selector:
        return []
    reached = col(Endpoint.id).in_(resolve_selector(session, selector=Selector.model_validate(selector)))
    targets = set(service.delivery_targets(session, alert))
    extra = [i for i in session.exec(select(Endpoint.id).where(reached)).all() if i not in targets]
    if not extra:
        return []
    return [
        f"上游更新后的区域比预警 {alert.id} 的播发范围多出 {len(extra)} 个终端：更新只发往原有终端，"
        "如需覆盖新增区域，请另行起草预警"
    ]


def _update(
    session: Session,
    *,
    message: cap.CapMessage,
    user: User,
    actor: Actor,
    store: AudioStore,
    settings: Settings,
    now: datetime,
    wake: service.Wake,
) -> Imported:
    candidates = _referenced(session, message)
    live = [alert for alert in candidates if alert.status != AlertStatus.discarded]
    if not live:
        # Every alert it refers to was a draft the officer discarded: for us this is a new alert.
        return _draft(
            session, message=message, user=user, actor=actor, store=store, settings=settings, now=now
        )
    alert = live[-1]
    _check_same_kind(message, alert)
    if alert.status in (AlertStatus.draft, AlertStatus.awaiting_approval):
        raise Conflict(
            f"预警 {alert.id} 尚未发送（{STATUS_LABELS[alert.status]}），上游更新不能改动它："
            f"请先作废该草稿（解除预警 {alert.id}），再重新导入这条更新消息，系统会据此生成新的草稿",
            details={"alert_id": alert.id, "status": alert.status},
        )
    if alert.status != AlertStatus.active:
        raise Conflict(
            f"预警 {alert.id} 当前为“{STATUS_LABELS[alert.status]}”，只能更新播发中的预警",
            details={"alert_id": alert.id, "status": alert.status},
        )
    info = pick_info(message)
    changes = _changes(alert, message, info, now)
    notes = _outside_note(session, alert, info)
    if not changes:
        notes.append(f"更新内容与预警 {alert.id} 当前内容相同，未生成新版本")
        return Imported(CapAction.update, alert, False, None, [], notes)
    try:
        data = AlertUpdateIn(**changes)
    except ValidationError as exc:
        problem = "；".join(str(error["msg"]) for error in exc.errors())
        raise Invalid(
            f"CAP 更新消息无法用于预警 {alert.id}：{problem}", details={"alert_id": alert.id}
        ) from exc
    service.update_alert(
        session,
        alert=alert,
        data=data,
        actor=actor,
        user=user,
        store=store,
        settings=settings,
        now=now,
        wake=wake,
    )
    _audit_import(session, actor, alert, message, [])
    return Imported(CapAction.update, alert, False, None, [], notes)


def _cancel(
    session: Session,
    *,
    message: cap.CapMessage,
    user: User,
    actor: Actor,
    settings: Settings,
    now: datetime,
    wake: service.Wake,
) -> Imported:
    candidates = _referenced(session, message)
    open_ = [alert for alert in candidates if alert.status in _ACTIVE_STATES]
    alert = (open_ or candidates)[-1]
    _check_same_kind(message, alert)
    reason = (_one_line(message.note) if message.note else "") or DEFAULT_CANCEL_REASON
    data = CancelIn(reason=reason[:REASON_MAX], all_clear=True)
    service.cancel_alert(
        session, alert=alert, data=data, actor=actor, user=user, settings=settings, now=now, wake=wake
    )
    _audit_import(session, actor, alert, message, [])
    return Imported(CapAction.cancel, alert, False, None, [], [])


def _known_query(sender: str, identifier: str) -> SelectOfScalar[CapMessageRecord]:
    return select(CapMessageRecord).where(
        CapMessageRecord.sender == sender, CapMessageRecord.identifier == identifier
    )


def _known(session: Session, sender: str, identifier: str) -> CapMessageRecord | None:
    return session.exec(_known_query(sender, identifier)).first()


def _claim(
    session: Session, message: cap.CapMessage, user: User, now: datetime
) -> tuple[CapMessageRecord, bool]:
    """(the message's row, whether this import is its first). The row is written before any work,
    so a second import of the same message, even at the same instant on another server, stops at
    the unique key until the first one commits (or rolls back), then answers with its alert."""
    known = _known(session, message.sender, message.identifier)
    if known is not None:
        return known, False
    # INSERT … ON CONFLICT DO NOTHING: no error to catch and no savepoint; a concurrent second
    # insert of the same key waits for the first transaction, then inserts nothing.
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(CapMessageRecord)
        .values(
            sender=message.sender,
            identifier=message.identifier,
            sent_at=message.sent,
            msg_type=message.msg_type,
            status=message.status,
            action=_ACTION_OF[message.msg_type],
            unmatched_codes=[],
            notes=[],
            imported_at=now,
            imported_by=user.id,
        )
        .on_conflict_do_nothing(index_elements=["sender", "identifier"])
        .returning(col(CapMessageRecord.id))
    )
    claimed = session.execute(statement).scalar_one_or_none()
    if claimed is None:  # another import of it committed first (PostgreSQL waited for it)
        return session.exec(_known_query(message.sender, message.identifier)).one(), False
    return session.get_one(CapMessageRecord, claimed), True


def _repeat(session: Session, record: CapMessageRecord, settings: Settings) -> Imported:
    """A message imported before: the first import's answer, with the alert as it is now."""
    alert = session.get_one(Alert, record.alert_id)
    when = record.imported_at.astimezone(settings.tz)
    notes = [
        *record.notes,
        f"这条 CAP 消息（{record.sender},{record.identifier}）已于 {when:%Y-%m-%d %H:%M} 导入，"
        f"对应预警 {alert.id}：本次未重复处理",
    ]
    found = _safe_preview(session, alert.selector) if record.action == CapAction.draft else None
    return Imported(record.action, alert, False, found, list(record.unmatched_codes), notes)


def _apply(
    session: Session,
    *,
    message: cap.CapMessage,
    user: User,
    actor: Actor,
    store: AudioStore,
    settings: Settings,
    now: datetime,
    wake: service.Wake,
) -> Imported:
    if message.msg_type == "Alert":
        return _draft(
            session, message=message, user=user, actor=actor, store=store, settings=settings, now=now
        )
    if message.msg_type == "Update":
        return _update(
            session,
            message=message,
            user=user,
            actor=actor,
            store=store,
            settings=settings,
            now=now,
            wake=wake,
        )
    return _cancel(session, message=message, user=user, actor=actor, settings=settings, now=now, wake=wake)


def import_cap(
    session: Session,
    *,
    data: bytes,
    user: User,
    actor: Actor,
    store: AudioStore,
    settings: Settings,
    now: datetime,
    wake: service.Wake = None,
) -> Imported:
    """Alert → a draft (never sent here); Update → a new revision; Cancel → cancelled with all-clear.

    Each message acts once: importing it again (by anyone) answers like the first time."""
    try:
        message = cap.parse_cap(data)
    except cap.CapError as exc:
        raise Invalid(exc.reason) from exc
    record, first = _claim(session, message, user, now)
    if not first:
        return _repeat(session, record, settings)
    done = _apply(
        session,
        message=message,
        user=user,
        actor=actor,
        store=store,
        settings=settings,
        now=now,
        wake=wake,
    )
    record.action, record.alert_id = done.action, done.alert.id
    record.unmatched_codes, record.notes = done.unmatched_codes, done.notes
    session.add(record)
    session.flush()
    return done


# --- outgoing ------------------------------------------------------------------------------


def identifier(alert: Alert, revision: int, *, sender: str) -> str:
    return f"{sender}.alert.{alert.id}.r{revision}"


def _first_sent(alert: Alert) -> datetime:
    return alert.sent_at or alert.created_at


def _upstream(session: Session, alert: Alert) -> cap.CapReference | None:
    """The message we imported this alert from, with its own sent time."""
    if alert.cap_sender is None or alert.cap_identifier is None:
        return None
    record = _known(session, alert.cap_sender, alert.cap_identifier)
    sent = record.sent_at if record is not None else alert.created_at
    return cap.CapReference(sender=alert.cap_sender, identifier=alert.cap_identifier, sent=sent)


def _reached_villages(session: Session, alert: Alert) -> list[tuple[str, str]]:
    """(code, name) of the villages reached: the deliveries once sent, the selector's reach before."""
    base = select(Village.code, Village.name).join(Endpoint, col(Endpoint.village_id) == col(Village.id))
    if alert.sent_at is not None:
        query = base.join(AlertDelivery, col(AlertDelivery.endpoint_id) == col(Endpoint.id)).where(
            AlertDelivery.alert_id == alert.id
        )
    else:
        try:
            reached = resolve_selector(session, selector=Selector.model_validate(alert.selector))
        except (Invalid, ValidationError):
            return []
        query = base.where(col(Endpoint.id).in_(reached))
    return [(code, name) for code, name in session.exec(query.distinct().order_by(col(Village.code))).all()]


def _area_description(villages: list[tuple[str, str]]) -> str:
    if not villages:
        return "播发范围内暂无终端"
    names = "、".join(name for _, name in villages[:AREA_NAMES_SHOWN])
    return names if len(villages) <= AREA_NAMES_SHOWN else f"{names}等 {len(villages)} 个村（社区）"


def _status(alert: Alert) -> str:
    if alert.sent_at is None:
        return "Draft"
    return "Exercise" if alert.drill else "Actual"


def _note(alert: Alert, msg_type: str) -> str | None:
    if alert.sent_at is None:
        kind = "演练" if alert.drill else "真实预警"
        withdrawn = "，已作废" if msg_type == "Cancel" else ""
        return f"尚未发送的{kind}草稿{withdrawn}"
    if msg_type == "Cancel":
        return alert.cancel_reason
    return None


def export_alert(session: Session, alert: Alert, *, sender: str) -> cap.CapExport:
    """The alert as it stands now: Alert, Update (revision > 1) or Cancel (cancelled or discarded),
    sent by ``sender`` (``settings.cap_sender``)."""
    if alert.status in (AlertStatus.cancelled, AlertStatus.discarded):
        msg_type = "Cancel"
        own = f"{identifier(alert, alert.revision, sender=sender)}.cancel"
        sent = alert.cancelled_at or alert.updated_at
    elif alert.revision > 1:
        msg_type, own, sent = "Update", identifier(alert, alert.revision, sender=sender), alert.updated_at
    else:
        msg_type, own, sent = "Alert", identifier(alert, 1, sender=sender), _first_sent(alert)
    references = []
    if msg_type != "Alert":
        references.append(
            cap.CapReference(
                sender=sender, identifier=identifier(alert, 1, sender=sender), sent=_first_sent(alert)
            )
        )
    upstream = _upstream(session, alert)
    if upstream is not None:
        references.append(upstream)
    villages = _reached_villages(session, alert)
    return cap.CapExport(
        identifier=own,
        sender=sender,
        sent=sent,
        status=_status(alert),
        msg_type=msg_type,
        category=alert.category.value,
        event=f"{CATEGORY_LABELS[alert.category]}预警",
        level=alert.level,
        headline=alert.title,
        description=alert.text or "播放录音素材",
        area_description=_area_description(villages),
        references=references,
        note=_note(alert, msg_type),
        expires=alert.valid_until,
        geocodes=[(GEOCODE_NAME, code) for code, _ in villages],
        polygons=[[(float(lat), float(lon)) for lat, lon in polygon] for polygon in alert.cap_polygons],
    )


def render_alert(session: Session, alert: Alert, *, sender: str) -> bytes:
    try:
        return cap.render_cap(export_alert(session, alert, sender=sender))
    except cap.CapError as exc:
        raise Invalid(
            f"预警 {alert.id} 无法导出为 CAP 1.2：{exc.reason}", details={"alert_id": alert.id}
        ) from exc
