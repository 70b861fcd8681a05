"""A busy or unreachable database is a 503 the client can retry, never a 500."""

from __future__ import annotations

import sqlite3

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError


def test_a_locked_database_answers_503_with_retry_after(app: FastAPI) -> None:
    @app.get("/busy-probe")
    def busy() -> None:
        raise OperationalError(
            "INSERT INTO play_events ...", {}, sqlite3.OperationalError("database is locked")
        )

    with TestClient(app) as client:
        response = client.get("/busy-probe")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"]["code"] == "busy"
    assert "未保存" in response.json()["error"]["message"]
