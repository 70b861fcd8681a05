"""Use cases for accounts: login with rate limiting, user management, the audit log."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broadcast.auth import audit
from broadcast.auth.audit import Actor
from broadcast.auth.models import AuditEntry, LoginFailure, Role, User, UserVillage
from broadcast.auth.schemas import UserCreate, UserUpdate
from broadcast.auth.security import hash_password, verify_password
from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.errors import Conflict, Invalid, NotFound, TooManyRequests, Unauthorized
from broadcast.pagination import PageParams, paginate
from broadcast.regions.models import Village


def _recent_failures(session: Session, *, username: str, address: str, window_s: int) -> int:
    since = utc_now() - timedelta(seconds=window_s)
    query = select(func.count()).where(
        LoginFailure.at >= since,
        or_(col(LoginFailure.username) == username, col(LoginFailure.address) == address),
    )
    return int(session.exec(query).one())


def authenticate(session: Session, *, username: str, password: str, address: str, settings: Settings) -> User:
    """The user behind these credentials. Too many recent failures lock the name and the address."""
    failures = _recent_failures(session, username=username, address=address, window_s=settings.login_window_s)
    if failures >= settings.login_max_failures:
        raise TooManyRequests(
            f"登录失败次数过多，请 {settings.login_window_s // 60} 分钟后再试",
            details={"retry_after_s": settings.login_window_s},
        )
    user = session.exec(select(User).where(User.username == username)).first()
    ok, new_hash = verify_password(password, user.password_hash) if user else (False, None)
    if user is None or not ok or not user.is_active:
        session.add(LoginFailure(username=username, address=address))
        # The request fails, so its transaction would roll back: the failure must outlive it.
        session.commit()
        raise Unauthorized("用户名或密码错误，或账号已停用")
    if new_hash:
        user.password_hash = new_hash
    session.exec(delete(LoginFailure).where(col(LoginFailure.username) == username))
    return user


def _villages_by_code(session: Session, codes: list[str]) -> list[Village]:
    villages = list(session.exec(select(Village).where(col(Village.code).in_(codes))).all())
    missing = sorted(set(codes) - {v.code for v in villages})
    if missing:
        raise Invalid(f"以下村（社区）代码不存在：{'、'.join(missing)}", details={"village_codes": missing})
    return villages


def village_codes_of(session: Session, user: User) -> list[str]:
    query = (
        select(Village.code).join(UserVillage).where(UserVillage.user_id == user.id).order_by(Village.code)
    )
    return list(session.exec(query).all())


def _set_villages(session: Session, user: User, codes: list[str]) -> None:
    if user.role != Role.village_admin:
        if codes:
            raise Invalid("只有村（社区）管理员可以绑定村（社区）")
        codes = []
    elif not codes:
        raise Invalid("村（社区）管理员至少要绑定一个村（社区）")
    villages = _villages_by_code(session, codes)
    session.exec(delete(UserVillage).where(col(UserVillage.user_id) == user.id))
    for village in villages:
        session.add(UserVillage(user_id=user.id, village_id=village.id))  # type: ignore[arg-type]


def _user_snapshot(session: Session, user: User) -> dict[str, object]:
    data = audit.snapshot(user) or {}
    data["village_codes"] = village_codes_of(session, user)
    return data


def create_user(session: Session, *, data: UserCreate, actor: Actor) -> User:
    if session.exec(select(User).where(User.username == data.username)).first():
        raise Conflict(f"用户名 {data.username} 已存在")
    user = User(
        username=data.username,
        display_name=data.display_name,
        password_hash=hash_password(data.password),
        role=data.role,
    )
    session.add(user)
    session.flush()
    _set_villages(session, user, data.village_codes)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        entity_type="user",
        entity_id=user.id,
        after=_user_snapshot(session, user),
    )
    return user


def get_user_or_raise(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"用户 {user_id} 不存在")
    return user


def update_user(session: Session, *, user: User, data: UserUpdate, actor: Actor) -> User:
    before = _user_snapshot(session, user)
    if data.display_name is not None:
        user.display_name = data.display_name
    if data.password is not None:
        user.password_hash = hash_password(data.password)
    if data.is_active is not None:
        if not data.is_active and user.id == actor.user_id:
            raise Invalid("不能停用自己的账号")
        user.is_active = data.is_active
    role_changed = data.role is not None and data.role != user.role
    if data.role is not None:
        user.role = data.role
    if data.village_codes is not None or role_changed:
        codes = data.village_codes if data.village_codes is not None else village_codes_of(session, user)
        _set_villages(session, user, codes)
    user.updated_at = utc_now()
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.update",
        entity_type="user",
        entity_id=user.id,
        before=before,
        after=_user_snapshot(session, user),
    )
    return user


def list_users(session: Session, *, params: PageParams) -> tuple[int, list[User]]:
    return paginate(session, select(User).order_by(col(User.id)), params)


def list_audit(
    session: Session,
    *,
    params: PageParams,
    entity_type: str | None,
    entity_id: str | None,
    action: str | None,
    actor: str | None,
) -> tuple[int, list[AuditEntry]]:
    query = select(AuditEntry)
    if entity_type:
        query = query.where(AuditEntry.entity_type == entity_type)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor_name == actor)
    return paginate(session, query.order_by(col(AuditEntry.id).desc()), params)


def ensure_bootstrap_admin(session: Session, *, settings: Settings) -> User | None:
    """On a database without any admin, create ``admin`` with BROADCAST_ADMIN_PASSWORD.

    This is how a fresh production install gets its first account; production mode refuses to
    start while that password is still the default.
    """
    if session.exec(select(User).where(User.role == Role.admin)).first() is not None:
        return None
    if session.exec(select(User).where(User.username == "admin")).first() is not None:
        return None
    data = UserCreate(
        username="admin", display_name="系统管理员", password=settings.admin_password, role=Role.admin
    )
    try:
        with session.begin_nested():
            return create_user(session, data=data, actor=audit.SYSTEM)
    except IntegrityError:
        return None  # another server process starting at the same moment made it first
