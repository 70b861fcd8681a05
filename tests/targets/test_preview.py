"""POST /api/v1/targets/preview: totals, per-region counts, online/offline and a sample."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from broadcast.auth.models import Role
from broadcast.regions.models import EndpointStatus
from tests import builders
from tests.targets.conftest import load_city

Headers = dict[Role, dict[str, str]]


def test_preview_counts_by_region_and_status(client: TestClient, headers: Headers, session: Session) -> None:
    city = load_city(session)
    big = builders.make_village(session, town=city.towns[1], name="大村")
    for i in range(25):
        status = EndpointStatus.offline if i < 2 else EndpointStatus.online
        builders.make_endpoint(session, village=big, tags=("river",), status=status)
    builders.make_endpoint(session, village=city.villages[0], tags=("river",), status=EndpointStatus.fault)
    session.commit()
    body = {"tags": ["river"], "exclude": {"villages": [city.villages[3].code]}}
    response = client.post("/api/v1/targets/preview", json=body, headers=headers[Role.duty_officer])
    assert response.status_code == 200, response.text
    preview = response.json()
    # river in the small city: v0 e0 e2, v1 e4, v2 e6 e8, v3 e10 (excluded); plus 25 in 大村 and 1 fault in v0
    assert (preview["total"], preview["online"], preview["offline"]) == (31, 28, 3)
    assert [(t["code"], t["count"]) for t in preview["towns"]] == [
        (city.towns[1].code, 27),
        (city.towns[0].code, 4),
    ]
    expected_villages = [
        (big.code, 25),
        (city.villages[0].code, 3),
        (city.villages[2].code, 2),
        (city.villages[1].code, 1),
    ]
    assert [(v["code"], v["count"]) for v in preview["villages"]] == expected_villages
    assert preview["villages"][0]["name"] == "大村"
    sample = preview["sample"]
    assert len(sample) == 20
    assert [s["code"] for s in sample] == sorted(s["code"] for s in sample)
    assert set(sample[0]) == {"code", "name", "village_code", "village_name"}


def test_preview_of_nothing_reached_is_zero(client: TestClient, headers: Headers) -> None:
    body = {"tags": ["school"], "exclude": {"tags": ["river"]}}
    preview = client.post("/api/v1/targets/preview", json=body, headers=headers[Role.propagandist]).json()
    assert preview == {"total": 0, "online": 0, "offline": 0, "towns": [], "villages": [], "sample": []}


def test_preview_refuses_empty_and_unknown(client: TestClient, headers: Headers) -> None:
    staff = headers[Role.admin]
    empty = client.post("/api/v1/targets/preview", json={}, headers=staff)
    assert empty.status_code == 422
    assert "选择范围为空" in empty.json()["error"]["message"]
    unknown = client.post(
        "/api/v1/targets/preview", json={"towns": ["000000000"], "groups": ["无此分组"]}, headers=staff
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"]["unknown"] == {"towns": ["000000000"], "groups": ["无此分组"]}
