"""Every API route, for every role: who gets in and who gets 401/403.

The matrix below is the authorization policy written down once. The first test fails when a
route exists without an entry here (or an entry names a route that is gone), so no route can be
added without deciding who may call it.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadcast.auth.models import Role

A, P, D, V = Role.admin, Role.propagandist, Role.duty_officer, Role.village_admin
PUBLIC: frozenset[Role | None] = frozenset({None, A, P, D, V})
ANY = frozenset({A, P, D, V})
ADMIN = frozenset({A})
CONTENT = frozenset({A, P})
STAFF = frozenset({A, P, D})
DUTY = frozenset({A, D})
# Device routes take a device token only: a user's login is as good as no credential there.
DEVICE: frozenset[Role | None] = frozenset()

MATRIX: dict[tuple[str, str], frozenset[Role | None] | frozenset[Role]] = {
    ("GET", "/api/v1/health"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("GET", "/api/v1/auth/me"): ANY,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("GET", "/api/v1/users/{user_id}"): ADMIN,
    ("PATCH", "/api/v1/users/{user_id}"): ADMIN,
    ("GET", "/api/v1/audit"): ADMIN,
    # the city: everyone reads (a village admin only her villages), admins write
    ("GET", "/api/v1/towns"): ANY,
    ("POST", "/api/v1/towns"): ADMIN,
    ("GET", "/api/v1/towns/{code}"): ANY,
    ("PATCH", "/api/v1/towns/{code}"): ADMIN,
    ("DELETE", "/api/v1/towns/{code}"): ADMIN,
    ("GET", "/api/v1/villages"): ANY,
    ("POST", "/api/v1/villages"): ADMIN,
    ("GET", "/api/v1/villages/{code}"): ANY,
    ("PATCH", "/api/v1/villages/{code}"): ADMIN,
    ("DELETE", "/api/v1/villages/{code}"): ADMIN,
    ("GET", "/api/v1/endpoints"): ANY,
    ("POST", "/api/v1/endpoints"): ADMIN,
    ("GET", "/api/v1/endpoints/export"): ANY,
    ("POST", "/api/v1/endpoints/import"): ADMIN,
    ("GET", "/api/v1/endpoints/{code}"): ANY,
    ("PATCH", "/api/v1/endpoints/{code}"): ADMIN,
    ("DELETE", "/api/v1/endpoints/{code}"): ADMIN,
    ("GET", "/api/v1/endpoints/{code}/tokens"): ADMIN,
    ("POST", "/api/v1/endpoints/{code}/tokens"): ADMIN,
    ("DELETE", "/api/v1/endpoints/{code}/tokens/{token_id}"): ADMIN,
    # targets: the people who send things
    ("POST", "/api/v1/targets/preview"): STAFF,
    ("GET", "/api/v1/groups"): STAFF,
    ("POST", "/api/v1/groups"): STAFF,
    ("GET", "/api/v1/groups/{group_id}"): STAFF,
    ("PATCH", "/api/v1/groups/{group_id}"): STAFF,
    ("DELETE", "/api/v1/groups/{group_id}"): STAFF,
    # content: propaganda staff
    ("GET", "/api/v1/clips"): CONTENT,
    ("POST", "/api/v1/clips"): CONTENT,
    ("GET", "/api/v1/clips/{clip_id}"): CONTENT,
    ("PATCH", "/api/v1/clips/{clip_id}"): CONTENT,
    ("DELETE", "/api/v1/clips/{clip_id}"): CONTENT,
    ("GET", "/api/v1/chimes"): CONTENT,
    ("GET", "/api/v1/audio/{sha256}"): ANY,
    ("GET", "/api/v1/tts/engines"): CONTENT,
    ("GET", "/api/v1/bulletins"): CONTENT,
    ("POST", "/api/v1/bulletins"): CONTENT,
    ("GET", "/api/v1/bulletins/{bulletin_id}"): CONTENT,
    ("PATCH", "/api/v1/bulletins/{bulletin_id}"): CONTENT,
    ("DELETE", "/api/v1/bulletins/{bulletin_id}"): CONTENT,
    ("POST", "/api/v1/bulletins/{bulletin_id}/preview"): CONTENT,
    ("GET", "/api/v1/playlists"): CONTENT,
    ("POST", "/api/v1/playlists"): CONTENT,
    ("GET", "/api/v1/playlists/{playlist_id}"): CONTENT,
    ("DELETE", "/api/v1/playlists/{playlist_id}"): CONTENT,
    ("GET", "/api/v1/playlists/{playlist_id}/revisions"): CONTENT,
    ("POST", "/api/v1/playlists/{playlist_id}/revisions"): CONTENT,
    ("GET", "/api/v1/playlists/{playlist_id}/revisions/{number}"): CONTENT,
    ("POST", "/api/v1/playlists/{playlist_id}/revisions/{number}/renders"): CONTENT,
    ("GET", "/api/v1/renders/{render_id}"): CONTENT,
    # campaigns: propaganda staff write, duty officers read; quiet hours: admins write
    ("GET", "/api/v1/campaigns"): STAFF,
    ("POST", "/api/v1/campaigns"): CONTENT,
    ("GET", "/api/v1/campaigns/{campaign_id}"): STAFF,
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): CONTENT,
    ("DELETE", "/api/v1/campaigns/{campaign_id}"): CONTENT,
    ("POST", "/api/v1/campaigns/{campaign_id}/submit"): CONTENT,
    ("POST", "/api/v1/campaigns/{campaign_id}/withdraw"): CONTENT,
    ("POST", "/api/v1/campaigns/{campaign_id}/approve"): CONTENT,
    ("POST", "/api/v1/campaigns/{campaign_id}/reject"): CONTENT,
    ("POST", "/api/v1/campaigns/{campaign_id}/pause"): CONTENT,
    ("POST", "/api/v1/campaigns/{campaign_id}/resume"): CONTENT,
    ("POST", "/api/v1/campaigns/{campaign_id}/end"): CONTENT,
    ("GET", "/api/v1/campaigns/{campaign_id}/conflicts"): STAFF,
    ("GET", "/api/v1/quiet-hours"): ANY,
    ("PUT", "/api/v1/villages/{code}/quiet-hours"): ADMIN,
    ("DELETE", "/api/v1/villages/{code}/quiet-hours"): ADMIN,
    ("GET", "/api/v1/campaigns/{campaign_id}/calendar.ics"): ANY,
    ("GET", "/api/v1/villages/{code}/calendar.ics"): ANY,
    ("GET", "/api/v1/rundowns/endpoints/{code}"): ANY,
    ("GET", "/api/v1/rundowns/villages/{code}"): ANY,
    # devices
    ("GET", "/api/v1/signing-keys"): ADMIN,
    ("POST", "/api/v1/signing-keys/rotate"): ADMIN,
    # alerts: the duty desk only
    ("POST", "/api/v1/alerts"): DUTY,
    ("GET", "/api/v1/alerts"): DUTY,
    ("GET", "/api/v1/alerts/{alert_id}"): DUTY,
    ("GET", "/api/v1/alerts/{alert_id}/preview"): DUTY,
    ("POST", "/api/v1/alerts/{alert_id}/send"): DUTY,
    ("POST", "/api/v1/alerts/{alert_id}/approve"): DUTY,
    ("POST", "/api/v1/alerts/{alert_id}/break-glass"): DUTY,
    ("POST", "/api/v1/alerts/{alert_id}/update"): DUTY,
    ("POST", "/api/v1/alerts/{alert_id}/cancel"): DUTY,
    ("GET", "/api/v1/alerts/{alert_id}/board"): DUTY,
    ("GET", "/api/v1/alerts/{alert_id}/deliveries"): DUTY,
    ("POST", "/api/v1/alerts/cap"): DUTY,
    ("GET", "/api/v1/alerts/{alert_id}/cap"): DUTY,
    # play logs and reports: everyone reads, a village admin only her villages
    ("GET", "/api/v1/playlog"): ANY,
    ("GET", "/api/v1/playlog/slots"): ANY,
    ("GET", "/api/v1/reports/coverage"): ANY,
    ("GET", "/api/v1/reports/daily"): ANY,
    ("GET", "/api/v1/reports/alerts"): ANY,
    ("GET", "/api/v1/reports/alerts/{alert_id}"): ANY,
    ("GET", "/api/v1/reports/health"): ANY,
    ("GET", "/device/v1/keys"): PUBLIC,
    ("GET", "/device/v1/alerts"): DEVICE,
    ("GET", "/device/v1/rundown"): DEVICE,
    ("GET", "/device/v1/audio/{sha256}"): DEVICE,
    ("POST", "/device/v1/events"): DEVICE,
}


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    """Authorization does not depend on the SQL dialect: one database is enough here."""
    return sqlite_engine


def _api_routes(app: FastAPI) -> set[tuple[str, str]]:
    # The OpenAPI document is the public list of routes (included routers are not flattened
    # into app.routes in this FastAPI version).
    paths = app.openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_every_route_has_a_policy(app: FastAPI) -> None:
    routes = _api_routes(app)
    assert routes - MATRIX.keys() == set(), "routes without an authorization policy"
    assert MATRIX.keys() - routes == set(), "policies for routes that no longer exist"


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "999999", path)


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    kwargs: dict[str, object] = {"headers": headers}
    if method in {"POST", "PUT", "PATCH"}:
        kwargs["json"] = {}
    return client.request(method, _concrete(path), **kwargs).status_code  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
def test_route_admits_exactly_its_roles(
    client: TestClient, headers: dict[Role, dict[str, str]], method: str, path: str
) -> None:
    allowed = MATRIX[(method, path)]
    anonymous = _call(client, method, path, {})
    if None in allowed:
        assert anonymous not in {401, 403}, f"{method} {path} should be public"
    else:
        assert anonymous == 401, f"{method} {path} lets anonymous callers in ({anonymous})"
    for role in Role:
        status = _call(client, method, path, headers[role])
        if allowed is DEVICE:
            assert status == 401, f"{method} {path} accepts a user login ({role.value}: {status})"
        elif role in allowed:
            assert status not in {401, 403}, f"{method} {path} refuses {role.value} ({status})"
        else:
            assert status == 403, f"{method} {path} lets {role.value} in ({status})"
