from fastapi.testclient import TestClient


def test_health_names_database_and_broker(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok"
    assert body["database"] in {"sqlite", "postgresql"}
    assert body["broker"] == "memory"


def test_unknown_query_parameter_is_rejected(client: TestClient) -> None:
    response = client.get("/api/v1/health", params={"verbose": "1"})
    assert response.status_code == 422
    assert "verbose" in response.json()["error"]["message"]
