from pathlib import Path

import pytest

from broadcast.app import UnsafeConfiguration, create_app
from broadcast.config import Settings


def test_production_refuses_default_secret_and_password(tmp_path: Path) -> None:
    settings = Settings(mode="production", data_dir=tmp_path)
    with pytest.raises(UnsafeConfiguration) as excinfo:
        create_app(settings)
    assert "BROADCAST_SECRET_KEY" in str(excinfo.value)
    assert "BROADCAST_ADMIN_PASSWORD" in str(excinfo.value)


def test_production_starts_with_real_secrets(tmp_path: Path) -> None:
    settings = Settings(
        mode="production", data_dir=tmp_path, secret_key="x" * 40, admin_password="a-real-password"
    )
    assert create_app(settings).state.database == "sqlite"


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'broadcast.db'}"
    assert settings.redis_url is None
    assert settings.timezone == "Asia/Shanghai"


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BROADCAST_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("BROADCAST_REDIS_URL", "redis://127.0.0.1:6379/0")
    settings = Settings(data_dir=tmp_path)
    assert settings.effective_database_url == "postgresql+psycopg://u@h/db"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_server_start_creates_the_bootstrap_admin_once(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    settings = Settings(data_dir=tmp_path, admin_password="first-admin-pass")
    for _ in range(2):
        with TestClient(create_app(settings)) as client:
            response = client.post(
                "/api/v1/auth/token", data={"username": "admin", "password": "first-admin-pass"}
            )
            assert response.status_code == 200
            token = response.json()["access_token"]
            users = client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"}).json()
            assert users["total"] == 1


def test_development_key_is_generated_once_per_data_dir(tmp_path: Path) -> None:
    from broadcast.config import with_secret_key

    first = with_secret_key(Settings(data_dir=tmp_path)).secret_key
    assert len(first) >= 32
    assert with_secret_key(Settings(data_dir=tmp_path)).secret_key == first
    assert with_secret_key(Settings(data_dir=tmp_path / "other")).secret_key != first
