"""Towns, villages and endpoints under /api/v1: everyone logged in reads (a village admin only her
villages), admins write. Endpoint CSV import/export and device tokens live here too."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi import status as http

from broadcast.deps import ActorDep, AdminUser, CurrentUser, ScopeDep, SessionDep, SettingsDep
from broadcast.dispatch.push import publish_push
from broadcast.pagination import Page, PageDep, page_of
from broadcast.regions import csv_io, service, tokens
from broadcast.regions.models import Endpoint, Town, Village
from broadcast.regions.schemas import (
    DeviceTokenOut,
    EndpointCreate,
    EndpointFilters,
    EndpointOut,
    EndpointUpdate,
    ImportResult,
    IssuedDeviceToken,
    TownCreate,
    TownOut,
    TownUpdate,
    VillageCreate,
    VillageOut,
    VillageUpdate,
)

router = APIRouter()
towns = APIRouter(tags=["towns"])
villages = APIRouter(tags=["villages"])
endpoints = APIRouter(tags=["endpoints"])
NO_CONTENT = http.HTTP_204_NO_CONTENT


def _town(code: str, session: SessionDep, scope: ScopeDep) -> Town:
    return service.get_town_or_raise(session, code, scope=scope)


def _village(code: str, session: SessionDep, scope: ScopeDep) -> Village:
    return service.get_village_or_raise(session, code, scope=scope)


def _endpoint(code: str, session: SessionDep, scope: ScopeDep) -> Endpoint:
    return service.get_endpoint_or_raise(session, code, scope=scope)


def _filters(
    town: Annotated[str | None, Query(max_length=12, description="乡镇代码")] = None,
    village: Annotated[str | None, Query(max_length=12, description="村（社区）代码")] = None,
    tag: Annotated[str | None, Query(max_length=32, description="标签")] = None,
    status: Annotated[str | None, Query(max_length=32, description="状态")] = None,
    q: Annotated[str | None, Query(max_length=64, description="代码或名称包含的文字")] = None,
) -> EndpointFilters:
    return EndpointFilters(town=town, village=village, tag=tag, status=status, q=q)


TownDep = Annotated[Town, Depends(_town)]
VillageDep = Annotated[Village, Depends(_village)]
EndpointDep = Annotated[Endpoint, Depends(_endpoint)]
FiltersDep = Annotated[EndpointFilters, Depends(_filters)]


# Towns ----------------------------------------------------------------------------------------


@towns.get("/towns", response_model=Page[TownOut])
def list_towns(session: SessionDep, _: CurrentUser, scope: ScopeDep, page: PageDep) -> Page[TownOut]:
    rows = [
        TownOut.model_validate(town, from_attributes=True)
        for town in service.list_towns(session, scope=scope)
    ]
    return page_of(rows, page)


@towns.get("/towns/{code}", response_model=TownOut)
def get_town(_: CurrentUser, town: TownDep) -> Town:
    return town


@towns.post("/towns", response_model=TownOut, status_code=http.HTTP_201_CREATED)
def create_town(data: TownCreate, session: SessionDep, _: AdminUser, actor: ActorDep) -> Town:
    return service.create_town(session, data=data, actor=actor)


@towns.patch("/towns/{code}", response_model=TownOut)
def update_town(data: TownUpdate, session: SessionDep, _: AdminUser, town: TownDep, actor: ActorDep) -> Town:
    return service.update_town(session, town=town, data=data, actor=actor)


@towns.delete("/towns/{code}", status_code=NO_CONTENT)
def delete_town(session: SessionDep, _: AdminUser, town: TownDep, actor: ActorDep) -> None:
    service.delete_town(session, town=town, actor=actor)


# Villages -------------------------------------------------------------------------------------


@villages.get("/villages", response_model=Page[VillageOut])
def list_villages(
    session: SessionDep,
    _: CurrentUser,
    scope: ScopeDep,
    page: PageDep,
    town: Annotated[str | None, Query(max_length=12, description="乡镇代码")] = None,
    q: Annotated[str | None, Query(max_length=64, description="代码或名称包含的文字")] = None,
) -> Page[VillageOut]:
    return page_of(service.list_villages(session, scope=scope, town=town, q=q), page)


@villages.get("/villages/{code}", response_model=VillageOut)
def get_village(session: SessionDep, _: CurrentUser, village: VillageDep) -> VillageOut:
    return service.get_village_out(session, village)


@villages.post("/villages", response_model=VillageOut, status_code=http.HTTP_201_CREATED)
def create_village(data: VillageCreate, session: SessionDep, _: AdminUser, actor: ActorDep) -> VillageOut:
    return service.get_village_out(session, service.create_village(session, data=data, actor=actor))


@villages.patch("/villages/{code}", response_model=VillageOut)
def update_village(
    data: VillageUpdate, session: SessionDep, _: AdminUser, village: VillageDep, actor: ActorDep
) -> VillageOut:
    village = service.update_village(session, village=village, data=data, actor=actor)
    return service.get_village_out(session, village)


@villages.delete("/villages/{code}", status_code=NO_CONTENT)
def delete_village(session: SessionDep, _: AdminUser, village: VillageDep, actor: ActorDep) -> None:
    service.delete_village(session, village=village, actor=actor)


# Endpoints ------------------------------------------------------------------------------------


@endpoints.get("/endpoints", response_model=Page[EndpointOut])
def list_endpoints(
    session: SessionDep, _: CurrentUser, scope: ScopeDep, filters: FiltersDep, page: PageDep
) -> Page[EndpointOut]:
    total, items = service.list_endpoints(session, filters=filters, scope=scope, params=page)
    return Page(total=total, limit=page.limit, offset=page.offset, items=items)


@endpoints.get("/endpoints/export", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_endpoints(session: SessionDep, _: CurrentUser, scope: ScopeDep, filters: FiltersDep) -> Response:
    out = io.StringIO()
    csv_io.write_csv(session, filters=filters, scope=scope, out=out)
    return Response(
        out.getvalue().encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="endpoints.csv"'},
    )


@endpoints.post("/endpoints/import", response_model=ImportResult)
def import_endpoints(
    session: SessionDep,
    _: AdminUser,
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="CSV（UTF-8，可带 BOM）")],
    partial: Annotated[bool, Query(description="true：只导入正确的行并报告错误行")] = False,
) -> ImportResult:
    data = file.file.read(csv_io.MAX_IMPORT_BYTES + 1)
    return csv_io.import_endpoints(session, data=data, partial=partial, actor=actor)


@endpoints.get("/endpoints/{code}", response_model=EndpointOut)
def get_endpoint(session: SessionDep, _: CurrentUser, endpoint: EndpointDep) -> EndpointOut:
    return service.endpoint_outs(session, [endpoint])[0]


@endpoints.post("/endpoints", response_model=EndpointOut, status_code=http.HTTP_201_CREATED)
def create_endpoint(data: EndpointCreate, session: SessionDep, _: AdminUser, actor: ActorDep) -> EndpointOut:
    endpoint = service.create_endpoint(session, data=data, actor=actor)
    return service.endpoint_outs(session, [endpoint])[0]


@endpoints.patch("/endpoints/{code}", response_model=EndpointOut)
def update_endpoint(
    request: Request,
    data: EndpointUpdate,
    session: SessionDep,
    _: AdminUser,
    endpoint: EndpointDep,
    actor: ActorDep,
    settings: SettingsDep,
) -> EndpointOut:
    volume = endpoint.volume
    endpoint = service.update_endpoint(session, endpoint=endpoint, data=data, actor=actor)
    if endpoint.volume != volume:
        # The speaker hears of it at once; its rundown carries the volume too (for offline ones).
        publish_push(
            request.app,
            session,
            targets=[endpoint.id or 0],
            payload_type="volume",
            body={"volume": endpoint.volume},
            settings=settings,
        )
    return service.endpoint_outs(session, [endpoint])[0]


@endpoints.delete("/endpoints/{code}", status_code=NO_CONTENT)
def delete_endpoint(session: SessionDep, _: AdminUser, endpoint: EndpointDep, actor: ActorDep) -> None:
    service.delete_endpoint(session, endpoint=endpoint, actor=actor)


# Device tokens --------------------------------------------------------------------------------


@endpoints.post(
    "/endpoints/{code}/tokens",
    response_model=IssuedDeviceToken,
    status_code=http.HTTP_201_CREATED,
    description="签发新令牌并吊销该终端此前所有有效令牌（轮换）。密钥只在此响应中出现一次。",
)
def issue_token(
    session: SessionDep, _: AdminUser, endpoint: EndpointDep, actor: ActorDep
) -> IssuedDeviceToken:
    token, secret, revoked = tokens.issue_token(session, endpoint=endpoint, actor=actor)
    return IssuedDeviceToken.model_validate(
        {**token.model_dump(), "secret": secret, "revoked_token_ids": revoked}
    )


@endpoints.get("/endpoints/{code}/tokens", response_model=list[DeviceTokenOut])
def list_tokens(session: SessionDep, _: AdminUser, endpoint: EndpointDep) -> list[DeviceTokenOut]:
    return [DeviceTokenOut.model_validate(t) for t in tokens.list_tokens(session, endpoint=endpoint)]


@endpoints.delete("/endpoints/{code}/tokens/{token_id}", response_model=DeviceTokenOut)
def revoke_token(
    token_id: int, session: SessionDep, _: AdminUser, endpoint: EndpointDep, actor: ActorDep
) -> DeviceTokenOut:
    token = tokens.revoke_token(session, endpoint=endpoint, token_id=token_id, actor=actor)
    return DeviceTokenOut.model_validate(token)


for child in (towns, villages, endpoints):
    router.include_router(child)
