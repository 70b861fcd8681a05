"""Admin API for the platform's signing keys: list them, rotate the active one (audited)."""

from __future__ import annotations

from fastapi import APIRouter, status

from broadcast.clock import utc_now
from broadcast.config import Settings
from broadcast.deps import ActorDep, AdminUser, SessionDep, SettingsDep
from broadcast.dispatch import keys
from broadcast.dispatch.device_schemas import SigningKeyOut
from broadcast.dispatch.models import SigningKey

keys_router = APIRouter(tags=["signing-keys"])


def key_out(key: SigningKey, *, settings: Settings) -> SigningKeyOut:
    published = keys.is_published(key, settings=settings, now=utc_now())
    return SigningKeyOut.model_validate({**keys.key_snapshot(key), "published": published})


@keys_router.get("/signing-keys", response_model=list[SigningKeyOut])
def list_signing_keys(session: SessionDep, settings: SettingsDep, _: AdminUser) -> list[SigningKeyOut]:
    """Every signing key, newest first; ``published`` ones are still given to devices."""
    return [key_out(key, settings=settings) for key in keys.list_keys(session)]


@keys_router.post("/signing-keys/rotate", response_model=SigningKeyOut, status_code=status.HTTP_201_CREATED)
def rotate_signing_key(
    session: SessionDep, settings: SettingsDep, _: AdminUser, actor: ActorDep
) -> SigningKeyOut:
    """Make a new active key; the previous one stays published until what it signed has expired."""
    return key_out(keys.rotate_key(session, settings=settings, actor=actor), settings=settings)
