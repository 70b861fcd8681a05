"""Request dependencies, as ``Annotated`` aliases named for what they yield.

The request's session is the transaction boundary: it commits when the route returns and rolls
back when it raises, so services only ``flush()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlmodel import Session, select

from broadcast.auth.audit import Actor
from broadcast.auth.models import Role, User, UserVillage
from broadcast.auth.security import read_access_token
from broadcast.config import Settings
from broadcast.errors import Forbidden, Invalid, Unauthorized

ACCESS_COOKIE = "broadcast_access"
_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    with Session(get_engine(request), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# scope="function": commit (or roll back) when the route returns, BEFORE the answer is sent. The
# default ("request") commits after the response: a client could act on a 201 before the row is
# visible, or be told "done" for a change whose commit then failed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _token_from(request: Request, bearer: str | None) -> str | None:
    return bearer or request.cookies.get(ACCESS_COOKIE)


def get_current_user(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    bearer: Annotated[str | None, Depends(_bearer)],
) -> User:
    token = _token_from(request, bearer)
    if not token:
        raise Unauthorized("请先登录：缺少访问令牌 (Authorization: Bearer …)")
    user_id = read_access_token(token, secret=settings.secret_key)
    if user_id is None:
        raise Unauthorized("访问令牌无效或已过期，请重新登录")
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("账号不存在或已停用，请联系管理员")
    # End the read here: the route runs in another worker thread, and holding a pooled
    # connection while waiting for one can deadlock the pool under load (see get_device).
    session.commit()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[User], User]:
    allowed = frozenset(roles) | {Role.admin}
    names = "、".join(sorted(r.value for r in allowed))

    def dependency(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise Forbidden(f"当前角色（{user.role.value}）无权执行此操作，需要：{names}")
        return user

    return dependency


AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
ContentUser = Annotated[User, Depends(require_roles(Role.propagandist))]
DutyUser = Annotated[User, Depends(require_roles(Role.duty_officer))]
StaffUser = Annotated[User, Depends(require_roles(Role.propagandist, Role.duty_officer))]


def get_actor(request: Request, user: CurrentUser) -> Actor:
    address = request.client.host if request.client else None
    return Actor(user_id=user.id, name=user.username, address=address)


ActorDep = Annotated[Actor, Depends(get_actor)]


def village_scope(session: Session, user: User) -> frozenset[int] | None:
    """The village ids a user may see; None means the whole city."""
    if user.role != Role.village_admin:
        return None
    rows = session.exec(select(UserVillage.village_id).where(UserVillage.user_id == user.id))
    return frozenset(rows.all())


def get_scope(session: SessionDep, user: CurrentUser) -> frozenset[int] | None:
    return village_scope(session, user)


ScopeDep = Annotated[frozenset[int] | None, Depends(get_scope)]


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for child in dependant.dependencies:
        names |= _query_names(child)
    return names


def reject_unknown_query(request: Request) -> None:
    """Unknown query parameters are a typo the client should hear about, not silently ignored."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    allowed = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise Invalid(
            f"未知的查询参数：{'、'.join(unknown)}；可用参数：{'、'.join(sorted(allowed)) or '无'}",
            details={"unknown": unknown, "allowed": sorted(allowed)},
        )
