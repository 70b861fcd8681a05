"""The FastAPI application factory: REST API, OpenAPI docs and the console on one server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import Engine

from broadcast import migrations
from broadcast.alerts.cap_routes import router as cap_router
from broadcast.alerts.routes import router as alerts_router
from broadcast.auth.routes import router as auth_router
from broadcast.auth.service import ensure_bootstrap_admin
from broadcast.bulletins.routes import router as bulletins_router
from broadcast.config import Settings, get_settings, with_secret_key
from broadcast.console.routes import mount_console
from broadcast.content.routes import router as content_router
from broadcast.db import backend_name, make_engine, transaction
from broadcast.deps import reject_unknown_query
from broadcast.dispatch.device_routes import router as device_router
from broadcast.dispatch.gateway import router as gateway_router
from broadcast.dispatch.key_routes import keys_router
from broadcast.dispatch.runtime import start_dispatch, stop_dispatch
from broadcast.errors import install_handlers
from broadcast.health import router as health_router
from broadcast.playlists.jobs import start_render_workers, stop_render_workers
from broadcast.playlists.routes import router as playlists_router
from broadcast.playlog.routes import router as playlog_router
from broadcast.regions.routes import router as regions_router
from broadcast.scheduling.ics_routes import ics_router
from broadcast.scheduling.routes import router as scheduling_router
from broadcast.scheduling.rundown_routes import router as rundowns_router
from broadcast.scheduling.scheduler import start_embedded_scheduler, stop_embedded_scheduler
from broadcast.targets.routes import router as targets_router


class UnsafeConfiguration(RuntimeError):
    pass


def check_production(settings: Settings) -> None:
    if settings.mode == "production" and (problems := settings.production_problems()):
        raise UnsafeConfiguration("拒绝以生产模式启动：" + "；".join(problems))


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", dependencies=[Depends(reject_unknown_query)])
    children = (
        health_router,
        auth_router,
        regions_router,
        targets_router,
        content_router,
        bulletins_router,
        playlists_router,
        keys_router,
        scheduling_router,
        ics_router,
        rundowns_router,
        alerts_router,
        playlog_router,
        cap_router,
    )
    for child in children:
        router.include_router(child)
    return router


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, upgrade_db: bool = True
) -> FastAPI:
    settings = with_secret_key(settings or get_settings())
    check_production(settings)
    engine = engine or make_engine(settings.effective_database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if upgrade_db:
            migrations.upgrade(engine)
            with transaction(engine) as session:
                ensure_bootstrap_admin(session, settings=settings)
        if settings.render_workers > 0:
            start_render_workers(app)
        await start_dispatch(app)
        if settings.scheduler_embedded:
            start_embedded_scheduler(app)
        try:
            yield
        finally:
            stop_embedded_scheduler(app)
            await stop_dispatch(app)
            stop_render_workers(app)

    app = FastAPI(
        title="broadcast 应急云广播调度",
        version="0.1.0",
        lifespan=lifespan,
        description="Content scheduler for a city's emergency cloud-broadcast network.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.database = backend_name(engine)
    app.state.broker = "redis" if settings.redis_url else "memory"
    install_handlers(app)
    app.include_router(api_router())
    app.include_router(device_router)
    app.include_router(gateway_router)
    mount_console(app)
    return app
