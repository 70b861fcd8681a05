"""CAP 1.2 over HTTP for the duty desk: import a message from another agency, export any alert.

The body is raw XML, read here with its size capped both from Content-Length and while
streaming, so a huge upload is refused before it is held in memory.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field

from broadcast.alerts import cap, cap_io, service
from broadcast.alerts.models import CapAction
from broadcast.alerts.outputs import alert_out
from broadcast.alerts.routes import wake_of
from broadcast.alerts.schemas import AlertOut
from broadcast.clock import utc_now
from broadcast.content.store import get_store
from broadcast.deps import ActorDep, DutyUser, SessionDep, SettingsDep
from broadcast.errors import TooLarge, UnsupportedMedia
from broadcast.targets.schemas import TargetPreview

router = APIRouter(prefix="/alerts", tags=["alerts"])

XML_MEDIA_TYPES = ("application/cap+xml", "application/xml", "text/xml")
CAP_MEDIA_TYPE = "application/cap+xml; charset=utf-8"
_TOO_LARGE = f"CAP 消息超过 {cap.MAX_CAP_BYTES // 1024 // 1024} MiB 上限：请只发送单条预警的 XML"


class CapImportOut(BaseModel):
    action: CapAction = Field(
        description="draft=生成草稿（需在预警台确认发送）；update=已更新播发中的预警；cancel=已解除"
    )
    alert: AlertOut
    preview: TargetPreview | None = Field(description="草稿将到达的终端；更新与解除时为空")
    unmatched_codes: list[str] = Field(description="不属于本市、已忽略的行政区划代码")
    notes: list[str] = Field(default_factory=list, description="值班员需要知道的提示")


async def cap_body(request: Request, _: DutyUser) -> bytes:
    """The raw XML, after the login (so a stranger learns nothing about what we accept)."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in XML_MEDIA_TYPES:
        raise UnsupportedMedia(
            f"Content-Type 为“{media or '（未指定）'}”：CAP 消息请以原始 XML 发送，"
            f"Content-Type 用 {'、'.join(XML_MEDIA_TYPES)} 之一",
            details={"accepted": list(XML_MEDIA_TYPES)},
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap.MAX_CAP_BYTES:
        raise TooLarge(_TOO_LARGE, details={"max_bytes": cap.MAX_CAP_BYTES})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap.MAX_CAP_BYTES:
            raise TooLarge(_TOO_LARGE, details={"max_bytes": cap.MAX_CAP_BYTES})
        chunks.append(chunk)
    return b"".join(chunks)


CapBody = Annotated[bytes, Depends(cap_body)]


@router.post(
    "/cap",
    response_model=CapImportOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "更新、解除，或重复导入同一条消息（按首次导入的结果回答，不重复处理）"},
        413: {"description": "超过 1 MiB"},
        415: {"description": "不是 XML"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {media: {"schema": {"type": "string"}} for media in XML_MEDIA_TYPES},
        }
    },
)
def import_cap(
    body: CapBody,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    user: DutyUser,
    actor: ActorDep,
) -> CapImportOut:
    """Alert → a draft to confirm on the desk; Update → a new revision; Cancel → cancelled with all-clear."""
    done = cap_io.import_cap(
        session,
        data=body,
        user=user,
        actor=actor,
        store=get_store(settings),
        settings=settings,
        now=utc_now(),
        wake=wake_of(request),
    )
    if not done.created:
        response.status_code = status.HTTP_200_OK
    return CapImportOut(
        action=done.action,
        alert=alert_out(session, done.alert, settings),
        preview=done.preview,
        unmatched_codes=done.unmatched_codes,
        notes=done.notes,
    )


@router.get(
    "/{alert_id}/cap",
    response_class=Response,
    responses={200: {"content": {"application/cap+xml": {"schema": {"type": "string"}}}}},
)
def export_cap(alert_id: int, session: SessionDep, settings: SettingsDep, _: DutyUser) -> Response:
    """The alert as CAP 1.2 as it stands now (Draft / Alert / Update / Cancel), schema-validated."""
    alert = service.get_alert_or_raise(session, alert_id)
    data = cap_io.render_alert(session, alert, sender=settings.cap_sender)
    return Response(content=data, media_type=CAP_MEDIA_TYPE)
