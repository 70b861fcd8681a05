"""Login, the current user, user management and the audit log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from broadcast.auth import service
from broadcast.auth.models import User
from broadcast.auth.schemas import AuditOut, TokenOut, UserCreate, UserOut, UserUpdate
from broadcast.auth.security import issue_access_token
from broadcast.deps import ActorDep, AdminUser, CurrentUser, SessionDep, SettingsDep
from broadcast.pagination import Page, PageDep

router = APIRouter(tags=["auth"])


def _user_out(session: SessionDep, user: User) -> UserOut:
    return UserOut.model_validate(
        {**user.model_dump(), "village_codes": service.village_codes_of(session, user)}
    )


@router.post("/auth/token", response_model=TokenOut)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> TokenOut:
    address = request.client.host if request.client else "unknown"
    user = service.authenticate(
        session, username=form.username, password=form.password, address=address, settings=settings
    )
    token, expires_at = issue_access_token(
        user_id=user.id or 0,
        role=user.role.value,
        secret=settings.secret_key,
        minutes=settings.access_token_minutes,
    )
    return TokenOut(access_token=token, expires_at=expires_at)


@router.get("/auth/me", response_model=UserOut)
def me(session: SessionDep, user: CurrentUser) -> UserOut:
    return _user_out(session, user)


@router.get("/users", response_model=Page[UserOut])
def list_users(session: SessionDep, _: AdminUser, page: PageDep) -> Page[UserOut]:
    total, users = service.list_users(session, params=page)
    return Page(
        total=total, limit=page.limit, offset=page.offset, items=[_user_out(session, u) for u in users]
    )


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(data: UserCreate, session: SessionDep, _: AdminUser, actor: ActorDep) -> UserOut:
    return _user_out(session, service.create_user(session, data=data, actor=actor))


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: int, session: SessionDep, _: AdminUser) -> UserOut:
    return _user_out(session, service.get_user_or_raise(session, user_id))


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(
    user_id: int, data: UserUpdate, session: SessionDep, _: AdminUser, actor: ActorDep
) -> UserOut:
    user = service.get_user_or_raise(session, user_id)
    return _user_out(session, service.update_user(session, user=user, data=data, actor=actor))


@router.get("/audit", response_model=Page[AuditOut])
def list_audit(
    session: SessionDep,
    _: AdminUser,
    page: PageDep,
    entity_type: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[AuditOut]:
    total, rows = service.list_audit(
        session, params=page, entity_type=entity_type, entity_id=entity_id, action=action, actor=actor
    )
    items = [AuditOut.model_validate(r.model_dump()) for r in rows]
    return Page(total=total, limit=page.limit, offset=page.offset, items=items)
