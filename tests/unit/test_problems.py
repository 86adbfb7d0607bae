"""The shared problem handlers: a body nested past the JSON parser's limit is a 422, not a 500
or FastAPI's generic 400, on every service that installs them."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shared.problems import TOO_DEEP_DETAIL, install_problem_handlers


class Body(BaseModel):
    name: str


def test_a_body_nested_past_the_parser_limit_is_422_naming_the_body() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def things(body: Body) -> dict[str, str]:
        return {"name": body.name}

    client = TestClient(app)
    response = client.post(
        "/things",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "body", "message": TOO_DEEP_DETAIL}]
    assert client.post("/things", json={"name": "ok"}).json() == {"name": "ok"}
