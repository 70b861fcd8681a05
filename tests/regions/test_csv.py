from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, col, select

from broadcast.auth.audit import CLI
from broadcast.auth.models import AuditEntry
from broadcast.regions import csv_io
from broadcast.regions.models import Endpoint, EndpointStatus, EndpointTag
from tests.builders import City

HEADER = "code,name,village_code,tags,latitude,longitude,volume,status"


def _import(client: TestClient, headers: dict[str, str], text: str | bytes, **params: Any) -> Any:
    data = text.encode() if isinstance(text, str) else text
    files = {"file": ("endpoints.csv", data, "text/csv")}
    return client.post("/api/v1/endpoints/import", files=files, params=params, headers=headers)


def _count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Endpoint)).one()


def test_export_then_import_changes_nothing(
    client: TestClient, session: Session, city: City, admin: dict[str, str]
) -> None:
    exported = client.get("/api/v1/endpoints/export", headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads the Chinese right
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[0] == HEADER
    assert len(lines) == 13
    result = _import(client, admin, exported.content)
    assert result.status_code == 200, result.text
    assert result.json() == {"created": 0, "updated": 0, "unchanged": 12, "errors": []}
    assert _count(session) == 12


def test_export_uses_the_list_filters(client: TestClient, city: City, admin: dict[str, str]) -> None:
    text = client.get(f"/api/v1/endpoints/export?tag=forest&town={city.towns[0].code}", headers=admin).text
    rows = text.removeprefix("\ufeff").splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [city.endpoints[1].code, city.endpoints[5].code]
    assert client.get("/api/v1/endpoints/export?tag=lava", headers=admin).status_code == 422


def test_reimport_updates_by_code_never_duplicates(
    client: TestClient, session: Session, city: City, admin: dict[str, str]
) -> None:
    first, village = city.endpoints[0], city.villages[3]
    text = "\n".join(
        [
            HEADER,
            f"{first.code},改名的终端,{village.code},forest|school,28.5,113.25,,",
            f"NEW-1,新终端,{village.code},reservoir;river,,,55,disabled",
        ]
    )
    result = _import(client, admin, text)  # no BOM this time
    assert result.json() == {"created": 1, "updated": 1, "unchanged": 0, "errors": []}
    again = _import(client, admin, text)
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 2, "errors": []}
    assert _count(session) == 13
    updated = client.get(f"/api/v1/endpoints/{first.code}", headers=admin).json()
    assert updated["name"] == "改名的终端"
    assert updated["tags"] == ["forest", "school"]
    assert (updated["village_code"], updated["latitude"], updated["longitude"]) == (
        village.code,
        28.5,
        113.25,
    )
    assert (updated["volume"], updated["status"]) == (80, "online")  # empty cells keep stored values
    new = client.get("/api/v1/endpoints/NEW-1", headers=admin).json()
    assert (new["tags"], new["latitude"], new["volume"], new["status"]) == (
        ["reservoir", "river"],
        None,
        55,
        "disabled",
    )
    audits = session.exec(select(AuditEntry).where(AuditEntry.action == "endpoint.import")).all()
    assert len(audits) == 2
    assert audits[0].after is not None
    assert (audits[0].after["created"], audits[0].after["updated"]) == (1, 1)
    assert audits[0].after["created_codes"] == ["NEW-1"]
    assert audits[0].actor_name.startswith("admin")


def _bad_file(city: City) -> str:
    village = city.villages[0].code
    return "\n".join(
        [
            HEADER,
            f"OK-1,好终端,{village},,,,,",
            f"BAD-1,坐标错,{village},,95,113,,",
            "BAD-2,村不存在,999999,,,,,",
            f"BAD-3,标签错,{village},forest;volcano,,,,",
            f"OK-1,重复,{village},,,,,",
            f"BAD-4,音量错,{village},,,,loud,asleep",
            "BAD-5,少一列",
        ]
    )


def test_bad_rows_refuse_the_whole_file(
    client: TestClient, session: Session, city: City, admin: dict[str, str]
) -> None:
    response = _import(client, admin, _bad_file(city))
    assert response.status_code == 422
    error = response.json()["error"]
    assert "未写入任何数据" in error["message"]
    found = [(e["line"], e["column"]) for e in error["details"]["errors"]]
    assert found == [
        (3, "latitude"),
        (4, "village_code"),
        (5, "tags"),
        (6, "code"),
        (7, "volume"),
        (7, "status"),
        (8, None),
    ]
    messages = [e["message"] for e in error["details"]["errors"]]
    assert messages[0].startswith("第 3 行 latitude：")
    assert "95" in messages[0]
    assert "999999" in messages[1]
    assert "volcano" in messages[2]
    assert "forest" in messages[2]  # lists the valid tags
    assert "第 2 行" in messages[3]
    assert _count(session) == 12
    assert session.exec(select(AuditEntry).where(AuditEntry.action == "endpoint.import")).all() == []


def test_partial_import_keeps_good_rows(
    client: TestClient, session: Session, city: City, admin: dict[str, str]
) -> None:
    response = _import(client, admin, _bad_file(city), partial="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 0, 0)
    assert len(body["errors"]) == 7
    assert _count(session) == 13
    assert session.exec(select(Endpoint).where(col(Endpoint.code).like("BAD%"))).all() == []


def test_whole_file_problems(client: TestClient, session: Session, city: City, admin: dict[str, str]) -> None:
    missing = _import(client, admin, "code,name,village_code,tags\nA,甲,1,\n")
    assert missing.status_code == 422
    assert "latitude" in missing.json()["error"]["message"]
    assert missing.json()["error"]["details"]["missing"] == ["latitude", "longitude", "volume", "status"]
    unknown = _import(client, admin, HEADER + ",colour\n")
    assert "colour" in unknown.json()["error"]["message"]
    assert _import(client, admin, b"").status_code == 422
    gbk = _import(client, admin, (HEADER + "\nA,中文,1,,,,,\n").encode("gbk"))
    assert gbk.status_code == 422
    assert "UTF-8" in gbk.json()["error"]["message"]
    assert _import(client, admin, b"PK\x03\x04 an xlsx workbook").status_code == 415
    assert _count(session) == 12


def test_bom_header_and_labels(
    client: TestClient, session: Session, city: City, admin: dict[str, str]
) -> None:
    text = f"\ufeff{HEADER.upper()}\r\nX-1,带 BOM 的文件,{city.villages[0].code},林区；学校,,,,\r\n"
    response = _import(client, admin, text.encode("utf-8"))
    assert response.json()["created"] == 1, response.text
    assert client.get("/api/v1/endpoints/X-1", headers=admin).json()["tags"] == ["forest", "school"]


def test_import_is_admin_only(client: TestClient, city: City, wang: dict[str, str]) -> None:
    assert _import(client, wang, HEADER + "\n").status_code == 403


def test_ten_thousand_rows_import_fast(session: Session, city: City) -> None:
    villages = [v.code for v in city.villages]
    lines = [HEADER] + [
        f"P{n:05d},终端{n},{villages[n % 4]},forest;river,{28 + n / 1e5},{113 + n / 1e5},{n % 101},offline"
        for n in range(10_000)
    ]
    data = "\n".join(lines).encode()
    started = time.perf_counter()
    result = csv_io.import_endpoints(session, data=data, partial=False, actor=CLI)
    session.commit()
    elapsed = time.perf_counter() - started
    assert (result.created, result.errors) == (10_000, [])
    assert elapsed < 10, f"10,000 rows took {elapsed:.1f}s"
    assert (
        session.exec(select(func.count()).select_from(EndpointTag).where(EndpointTag.tag == "forest")).one()
        == 10_003
    )
    session.expunge_all()
    started = time.perf_counter()
    again = csv_io.import_endpoints(
        session, data=data.replace(b",forest;river,", b",school,"), partial=False, actor=CLI
    )
    session.commit()
    assert (again.updated, time.perf_counter() - started < 10) == (10_000, True)
    assert (
        session.exec(select(Endpoint).where(Endpoint.code == "P00100")).one().status == EndpointStatus.offline
    )
    assert (
        session.exec(select(func.count()).select_from(EndpointTag).where(EndpointTag.tag == "forest")).one()
        == 3
    )
